import assert from 'node:assert/strict';
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, describe, it } from 'node:test';
import type { z } from 'zod';
import { ConfigError, loadConfig } from '../../src/config/load.js';
import { configSchema } from '../../src/config/schema.js';
import { closestKey } from '../../src/config/unknown-keys.js';

const dir = mkdtempSync(join(tmpdir(), 'switchboard-keys-'));

/** The problems loadConfig reports for a config file (and extra environment), or [] when it loads. */
function problemsOf(config: unknown, env: Record<string, string> = {}): string[] {
  const file = join(dir, `${Math.random().toString(36).slice(2)}.json`);
  writeFileSync(file, JSON.stringify(config));
  try {
    loadConfig({ SWITCHBOARD_CONFIG: file, ...env });
    return [];
  } catch (err) {
    assert.ok(err instanceof ConfigError, String(err));
    return err.problems;
  }
}

describe('unknown configuration keys', () => {
  after(() => rmSync(dir, { recursive: true, force: true }));

  it('refuses a misspelt top-level key and names the nearest known one', () => {
    assert.deepEqual(problemsOf({ prot: 19708 }), ['prot: unknown key (did you mean "port"?)']);
  });

  it('refuses nested keys with their full path, case slips included', () => {
    assert.deepEqual(problemsOf({ notify: { joinDeadlineMS: 5000, retention: { maxLenght: 5 } } }).sort(), [
      'notify.joinDeadlineMS: unknown key (did you mean "joinDeadlineMs"?)',
      'notify.retention.maxLenght: unknown key (did you mean "maxLength"?)',
    ]);
  });

  it('looks inside arrays and the control section', () => {
    const problems = problemsOf({
      control: { execTimeoutMS: 100, systems: [{ id: 's', name: 'S', modles: [] }], jwt: { secret: 'x'.repeat(16), isuser: 'me' } },
    });
    assert.deepEqual(problems.sort(), [
      'control.execTimeoutMS: unknown key (did you mean "execTimeoutMs"?)',
      'control.jwt.isuser: unknown key (did you mean "issuer"?)',
      'control.systems.0.modles: unknown key (did you mean "modules"?)',
    ]);
  });

  it('suggests from the token verifier kind that was picked, also from TOKEN_VERIFIER', () => {
    assert.ok(
      problemsOf({}, { TOKEN_VERIFIER: '{"kind":"http","baseUrl":"http://127.0.0.1:1/api","timeoutMS":100}' }).includes(
        'tokens.timeoutMS: unknown key (did you mean "timeoutMs"?) (from TOKEN_VERIFIER)',
      ),
    );
    assert.ok(problemsOf({ tokens: { kind: 'static', tokenz: {} } }).includes('tokens.tokenz: unknown key (did you mean "tokens"?)'));
  });

  it('lists the keys known there when none is near', () => {
    assert.deepEqual(problemsOf({ notify: { retention: { wholly: 1 } } }), [
      'notify.retention.wholly: unknown key (known here: maxLength, messageTtlMs, queueExpiresMs)',
    ]);
  });

  it('suggests only plausible typos', () => {
    assert.equal(closestKey('prot', ['port', 'host']), 'port');
    assert.equal(closestKey('hots', ['port', 'host']), 'host');
    assert.equal(closestKey('zzzzzzzz', ['port', 'host']), undefined);
  });

  it('the demo configuration has no unknown key', () => {
    assert.doesNotThrow(() => loadConfig({}));
  });

  it('every object in the schema is strict (keys added later are covered too)', () => {
    const loose: string[] = [];
    const seen = new Set<unknown>();
    const visit = (schema: z.core.$ZodType, path: string) => {
      if (seen.has(schema)) return;
      seen.add(schema);
      const def = schema._zod.def as unknown as Record<string, any>;
      if (def.type === 'object') {
        if (def.catchall?._zod.def.type !== 'never') loose.push(path || '(root)');
        for (const [key, child] of Object.entries(def.shape as Record<string, z.core.$ZodType>)) visit(child, path ? `${path}.${key}` : key);
      }
      for (const child of [def.innerType, def.in, def.out, def.element, def.valueType]) if (child) visit(child, path);
      for (const option of (def.options as z.core.$ZodType[] | undefined) ?? []) visit(option, path);
    };
    visit(configSchema, '');
    assert.ok(seen.size > 40, `walked ${seen.size} schemas`);
    assert.deepEqual(loose, [], 'use z.strictObject for these');
  });
});
