import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { CachingTokenVerifier } from '../../src/backends/tokens/caching-verifier.js';
import { GatewayError } from '../../src/core/errors.js';
import { profileId } from '../../src/core/ids.js';
import type { TokenGrant, TokenVerifier } from '../../src/core/token-verifier.js';
import { FakeClock } from '../helpers/fake-clock.js';

/** An inner verifier whose answers the test sets per token; it counts its calls. */
class ScriptedVerifier implements TokenVerifier {
  readonly kind = 'scripted';
  readonly calls: string[] = [];
  answers = new Map<string, () => Promise<TokenGrant>>();
  closed = false;
  verify(token: string): Promise<TokenGrant> {
    this.calls.push(token);
    const answer = this.answers.get(token);
    return answer ? answer() : Promise.reject(new GatewayError('unauthorized', 'Invalid authorization token.'));
  }
  async close(): Promise<void> {
    this.closed = true;
  }
}

const grant = (profile: string, expiresAt?: number): TokenGrant => ({ profileId: profileId(profile), ...(expiresAt !== undefined && { expiresAt }) });

function setup(ttlMs = 1_000, maxEntries = 100) {
  const clock = new FakeClock();
  const inner = new ScriptedVerifier();
  const cache = new CachingTokenVerifier(inner, { ttlMs, maxEntries, clock });
  return { clock, inner, cache };
}

describe('caching token verifier', () => {
  it('answers from the cache within ttlMs and asks again after it', async () => {
    const { clock, inner, cache } = setup();
    inner.answers.set('t1', async () => grant('alice'));
    assert.equal((await cache.verify('t1')).profileId, 'alice');
    clock.advance(999);
    assert.equal((await cache.verify('t1')).profileId, 'alice');
    assert.equal(inner.calls.length, 1);
    clock.advance(1);
    await cache.verify('t1');
    assert.equal(inner.calls.length, 2);
    assert.equal(cache.kind, 'scripted');
  });

  it('never serves a grant past its expiresAt', async () => {
    const { clock, inner, cache } = setup(10_000);
    inner.answers.set('t1', async () => grant('alice', clock.now() + 100));
    await cache.verify('t1');
    clock.advance(100);
    await cache.verify('t1');
    assert.equal(inner.calls.length, 2, 'the expired grant was not reused');
  });

  it('caches unauthorized refusals but not unavailable or unexpected failures', async () => {
    const { inner, cache } = setup();
    await assert.rejects(cache.verify('bad'), (e: unknown) => e instanceof GatewayError && e.code === 'unauthorized');
    await assert.rejects(cache.verify('bad'), (e: unknown) => e instanceof GatewayError && e.code === 'unauthorized');
    assert.equal(inner.calls.filter((t) => t === 'bad').length, 1);

    inner.answers.set('down', () => Promise.reject(new GatewayError('unavailable', 'down')));
    await assert.rejects(cache.verify('down'));
    await assert.rejects(cache.verify('down'));
    assert.equal(inner.calls.filter((t) => t === 'down').length, 2);

    inner.answers.set('boom', () => Promise.reject(new Error('bug')));
    await assert.rejects(cache.verify('boom'));
    inner.answers.set('boom', async () => grant('bob'));
    assert.equal((await cache.verify('boom')).profileId, 'bob');
  });

  it('shares one inner call among concurrent verifications of a token', async () => {
    const { inner, cache } = setup();
    let release!: (g: TokenGrant) => void;
    inner.answers.set('t1', () => new Promise((resolve) => (release = resolve)));
    const all = Promise.all([cache.verify('t1'), cache.verify('t1'), cache.verify('t1')]);
    release(grant('alice'));
    assert.deepEqual((await all).map((g) => g.profileId), ['alice', 'alice', 'alice']);
    assert.equal(inner.calls.length, 1);
  });

  it('keeps at most maxEntries, dropping the least recently used', async () => {
    const { inner, cache } = setup(60_000, 2);
    for (const t of ['a', 'b', 'c']) inner.answers.set(t, async () => grant(t));
    await cache.verify('a');
    await cache.verify('b');
    await cache.verify('a'); // a is now the most recently used
    await cache.verify('c'); // evicts b
    assert.equal(cache.size, 2);
    inner.calls.length = 0;
    await cache.verify('a');
    await cache.verify('c');
    assert.deepEqual(inner.calls, []);
    await cache.verify('b');
    assert.deepEqual(inner.calls, ['b']);
  });

  it('keys the cache by a hash, never by the token text', async () => {
    const { inner, cache } = setup();
    const token = 'T-very-secret-token-value';
    inner.answers.set(token, async () => grant('alice'));
    await cache.verify(token);
    const keys = [...(cache as unknown as { entries: Map<string, unknown> }).entries.keys()];
    assert.equal(keys.length, 1);
    assert.ok(!keys[0]!.includes(token) && !keys[0]!.includes('secret'));
  });

  it('with ttlMs 0 asks the inner verifier every time, and close() closes it', async () => {
    const { inner, cache } = setup(0);
    inner.answers.set('t1', async () => grant('alice'));
    await cache.verify('t1');
    await cache.verify('t1');
    assert.equal(inner.calls.length, 2);
    await cache.close();
    assert.ok(inner.closed);
  });
});
