import assert from 'node:assert/strict';
import { generateKeyPairSync } from 'node:crypto';
import { createServer } from 'node:http';
import { describe, it } from 'node:test';
import { exportJWK, SignJWT } from 'jose';
import { PlaceJwtAuthenticator, clearanceFromPermissions, scopesOf } from '../../src/backends/credentials/jwt-authenticator.js';
import { ConfigCredentialStore } from '../../src/backends/credentials/config-credential-store.js';
import { controlJwtSchema } from '../../src/config/control-jwt-schema.js';
import { apiKeySchema } from '../../src/config/schema.js';
import { hasControlScope } from '../../src/control/access.js';
import { authenticateControl, parseCookies } from '../../src/control/control-auth.js';
import { GatewayError } from '../../src/core/errors.js';

const secret = 'test-secret-0123456789abcdef';
const hs = (claims: Record<string, unknown>, expiresIn = '1h') =>
  new SignJWT(claims).setProtectedHeader({ alg: 'HS256' }).setIssuedAt().setExpirationTime(expiresIn).sign(new TextEncoder().encode(secret));

const credentials = new ConfigCredentialStore([
  apiKeySchema.parse({ id: 'k-admin', key: 'admin-key-123', clearance: 'admin', systems: ['*'], scopes: ['public', 'control'] }),
  apiKeySchema.parse({ id: 'k-noscope', key: 'noscope-key-1', scopes: ['guest'] }),
]);
const jwt = new PlaceJwtAuthenticator(controlJwtSchema.parse({ secret, systems: [], zones: ['zone-demo'] }));
const auth = (headers: Record<string, string>, query = '', allowedOrigins: string[] = []) =>
  authenticateControl({ headers, query: new URLSearchParams(query) }, { credentials, jwt, allowedOrigins });

async function rejects(p: Promise<unknown>, code: string, pattern?: RegExp) {
  await assert.rejects(p, (err: unknown) => {
    assert.ok(err instanceof GatewayError);
    assert.equal(err.code, code);
    if (pattern) assert.match(err.message, pattern);
    return true;
  });
}

describe('control authentication', () => {
  it('takes the API key from the header, the query or the cookie', async () => {
    assert.equal((await auth({ 'x-api-key': 'admin-key-123' })).id, 'k-admin');
    assert.equal((await auth({}, 'api-key=admin-key-123')).id, 'k-admin');
    assert.equal((await auth({ cookie: 'other=1; api-key=admin-key-123' })).id, 'k-admin');
  });

  it('refuses an unknown key, a missing credential, and a credential without the control scope', async () => {
    await rejects(auth({ 'x-api-key': 'wrong-key' }), 'unauthorized', /unknown API key/);
    await rejects(auth({}), 'unauthorized', /missing credential/);
    await rejects(auth({ 'x-api-key': 'noscope-key-1' }), 'forbidden');
  });

  it('verifies a PlaceOS JWT from the header, query or cookie and maps u.p to clearance', async () => {
    const token = await hs({ sub: 'user-1', scope: ['public'], u: { n: 'U', e: 'u@x', p: 1, r: [] } });
    const p = await auth({ authorization: `Bearer ${token}` });
    assert.deepEqual({ id: p.id, kind: p.kind, clearance: p.clearance, zones: p.zones, systems: p.systems }, {
      id: 'user-1',
      kind: 'jwt',
      clearance: 'support',
      zones: ['zone-demo'],
      systems: [],
    });
    assert.equal((await auth({}, `bearer_token=${token}`)).id, 'user-1');
    assert.equal((await auth({ cookie: `bearer_token=${token}` })).id, 'user-1');
    const admin = await auth({ authorization: `Bearer ${await hs({ sub: 'a', scope: 'public control', u: { p: 2 } })}` });
    assert.equal(admin.clearance, 'admin');
    assert.deepEqual(admin.systems, ['*']);
  });

  it('refuses expired, badly signed and scope-less JWTs', async () => {
    await rejects(auth({ authorization: `Bearer ${await hs({ sub: 'x', scope: 'public' }, '-10min')}` }), 'unauthorized', /expired/);
    const other = await new SignJWT({ sub: 'x', scope: 'public' }).setProtectedHeader({ alg: 'HS256' }).sign(new TextEncoder().encode('another-secret-0123456789'));
    await rejects(auth({ authorization: `Bearer ${other}` }), 'unauthorized', /invalid token/);
    await rejects(auth({ authorization: 'Bearer not.a.jwt' }), 'unauthorized');
    await rejects(auth({ authorization: `Bearer ${await hs({ sub: 'x', scope: ['public.read'] })}` }), 'forbidden');
  });

  it('verifies RS256 with a PEM public key', async () => {
    const { privateKey, publicKey } = generateKeyPairSync('rsa', { modulusLength: 2048 });
    const rs = new PlaceJwtAuthenticator(controlJwtSchema.parse({ publicKeyPem: publicKey.export({ type: 'spki', format: 'pem' }).toString() }));
    const token = await new SignJWT({ sub: 'rs-user', scope: ['control'], u: { p: 0 } }).setProtectedHeader({ alg: 'RS256' }).setExpirationTime('5m').sign(privateKey);
    const p = await rs.verify(token);
    assert.equal(p.id, 'rs-user');
    assert.equal(p.clearance, 'user');
  });

  it('verifies RS256 against a JWKS URL', async () => {
    const { privateKey, publicKey } = generateKeyPairSync('rsa', { modulusLength: 2048 });
    const jwk = { ...(await exportJWK(publicKey)), kid: 'k1', alg: 'RS256', use: 'sig' };
    const server = createServer((_req, res) => res.setHeader('Content-Type', 'application/json').end(JSON.stringify({ keys: [jwk] })));
    await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
    try {
      const port = (server.address() as { port: number }).port;
      const jwks = new PlaceJwtAuthenticator(controlJwtSchema.parse({ jwksUrl: `http://127.0.0.1:${port}/jwks.json` }));
      const token = await new SignJWT({ sub: 'jwks-user', scope: 'public', u: { p: 3 } }).setProtectedHeader({ alg: 'RS256', kid: 'k1' }).setExpirationTime('5m').sign(privateKey);
      const p = await jwks.verify(token);
      assert.deepEqual([p.id, p.clearance], ['jwks-user', 'admin']);
    } finally {
      server.close();
    }
  });

  it('maps PlaceOS permissions and scopes', () => {
    assert.deepEqual([0, 1, 2, 3, undefined, 'Admin'].map(clearanceFromPermissions), ['user', 'support', 'admin', 'admin', 'user', 'admin']);
    assert.deepEqual(scopesOf('public  control'), ['public', 'control']);
    assert.equal(hasControlScope(['public.write']), true);
    assert.equal(hasControlScope(['control']), true);
    assert.equal(hasControlScope(['public.read', 'guest']), false);
    assert.deepEqual([...parseCookies('a=1; b="x%20y"')], [['a', '1'], ['b', 'x y']]);
  });

  it('refuses cookie and query credentials from a foreign Origin (403); headers, the own origin and allowed origins pass', async () => {
    const evil = { origin: 'https://evil.example', host: 'gw.example:8080' };
    await rejects(auth({ ...evil, cookie: 'api-key=admin-key-123' }), 'forbidden', /cross-site request refused/);
    await rejects(auth(evil, 'api-key=admin-key-123'), 'forbidden', /cross-site/);
    await rejects(auth({ ...evil, cookie: `bearer_token=${await hs({ sub: 'u', scope: 'public' })}` }), 'forbidden', /cross-site/);
    assert.equal((await auth({ ...evil, 'x-api-key': 'admin-key-123' })).id, 'k-admin', 'a header is never sent cross-site unasked');
    assert.equal((await auth({ origin: 'http://gw.example:8080', host: 'gw.example:8080', cookie: 'api-key=admin-key-123' })).id, 'k-admin');
    assert.equal((await auth({ cookie: 'api-key=admin-key-123' })).id, 'k-admin', 'no Origin: not a cross-site page');
    assert.equal((await auth({ ...evil, cookie: 'api-key=admin-key-123' }, '', ['https://evil.example'])).id, 'k-admin');
    assert.equal((await auth({ ...evil }, 'api-key=admin-key-123', ['*'])).id, 'k-admin');
  });
});
