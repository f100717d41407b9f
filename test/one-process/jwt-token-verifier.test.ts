import assert from 'node:assert/strict';
import { createServer, type Server } from 'node:http';
import type { AddressInfo } from 'node:net';
import { after, before, describe, it } from 'node:test';
import { exportJWK, exportSPKI, generateKeyPair, type JWK, SignJWT } from 'jose';
import { JwtTokenVerifier } from '../../src/backends/tokens/jwt-verifier.js';
import { tokenVerifierSchema } from '../../src/config/schema.js';
import { GatewayError } from '../../src/core/errors.js';

const rejectsWith = (promise: Promise<unknown>, code: string, message?: RegExp) =>
  assert.rejects(promise, (err: unknown) => err instanceof GatewayError && err.code === code && (!message || message.test(err.message)));

const jwtConfig = (extra: Record<string, unknown>) => {
  const parsed = tokenVerifierSchema.parse({ kind: 'jwt', ...extra });
  assert.equal(parsed.kind, 'jwt');
  return parsed as Extract<typeof parsed, { kind: 'jwt' }>;
};

const inSeconds = (s: number) => Math.floor(Date.now() / 1000) + s;

describe('jwt token verifier', () => {
  const secret = 'a-shared-secret-of-32-characters!';
  const hsKey = new TextEncoder().encode(secret);

  describe('HS256 shared secret', () => {
    const verifier = new JwtTokenVerifier(jwtConfig({ secret, issuer: 'privicore', audience: 'switchboard' }));
    const sign = (claims: Record<string, unknown>, key: Uint8Array = hsKey) =>
      new SignJWT(claims).setProtectedHeader({ alg: 'HS256' }).setIssuer('privicore').setAudience('switchboard').sign(key);

    it('resolves the sub claim and takes exp as the expiry', async () => {
      const exp = inSeconds(120);
      const grant = await verifier.verify(await sign({ sub: 'alice', exp }));
      assert.deepEqual(grant, { profileId: 'alice', expiresAt: exp * 1000 });
    });

    it('refuses an expired token as expired', async () => {
      await rejectsWith(verifier.verify(await sign({ sub: 'alice', exp: inSeconds(-10) })), 'unauthorized', /expired/);
    });

    it('refuses a wrong signature, a wrong issuer or audience, and garbage', async () => {
      await rejectsWith(verifier.verify(await sign({ sub: 'alice' }, new TextEncoder().encode('another-secret-of-32-characters!!'))), 'unauthorized');
      const otherIssuer = await new SignJWT({ sub: 'alice' }).setProtectedHeader({ alg: 'HS256' }).setIssuer('evil').setAudience('switchboard').sign(hsKey);
      await rejectsWith(verifier.verify(otherIssuer), 'unauthorized');
      const noAudience = await new SignJWT({ sub: 'alice' }).setProtectedHeader({ alg: 'HS256' }).setIssuer('privicore').sign(hsKey);
      await rejectsWith(verifier.verify(noAudience), 'unauthorized');
      await rejectsWith(verifier.verify('not.a.jwt'), 'unauthorized');
      await rejectsWith(verifier.verify('demo-token-alice'), 'unauthorized');
    });

    it('refuses a token whose profile claim is missing or not a valid profile id', async () => {
      await rejectsWith(verifier.verify(await sign({ name: 'alice', exp: inSeconds(60) })), 'unauthorized', /no valid profile/);
      await rejectsWith(verifier.verify(await sign({ sub: 'has spaces', exp: inSeconds(60) })), 'unauthorized', /no valid profile/);
    });

    it('refuses a token without exp (it would never expire) unless allowNoExpiry is set', async () => {
      await rejectsWith(verifier.verify(await sign({ sub: 'alice' })), 'unauthorized');
      const lenient = new JwtTokenVerifier(jwtConfig({ secret, issuer: 'privicore', audience: 'switchboard', allowNoExpiry: true }));
      const grant = await lenient.verify(await sign({ sub: 'alice' }));
      assert.deepEqual(grant, { profileId: 'alice' }, 'allowed, and then it does not expire');
    });

    it('reads the profile id from the configured claim', async () => {
      const custom = new JwtTokenVerifier(jwtConfig({ secret, profileClaim: 'profileId' }));
      const token = await new SignJWT({ profileId: 'bob', sub: 'someone-else' }).setProtectedHeader({ alg: 'HS256' }).setExpirationTime('5m').sign(hsKey);
      assert.equal((await custom.verify(token)).profileId, 'bob');
    });

    it('refuses an unsigned (alg none) token', async () => {
      const header = Buffer.from('{"alg":"none"}').toString('base64url');
      const payload = Buffer.from(JSON.stringify({ sub: 'alice' })).toString('base64url');
      await rejectsWith(verifier.verify(`${header}.${payload}.`), 'unauthorized');
    });
  });

  for (const alg of ['RS256', 'ES256'] as const) {
    describe(`${alg} PEM public key`, () => {
      let verifier: JwtTokenVerifier;
      let privateKey: CryptoKey;
      let strangerKey: CryptoKey;
      before(async () => {
        const pair = await generateKeyPair(alg, { extractable: true });
        privateKey = pair.privateKey;
        strangerKey = (await generateKeyPair(alg)).privateKey;
        verifier = new JwtTokenVerifier(jwtConfig({ publicKeyPem: await exportSPKI(pair.publicKey) }));
      });

      it('resolves a token signed by the matching private key', async () => {
        const exp = inSeconds(60);
        const token = await new SignJWT({ sub: 'carol' }).setProtectedHeader({ alg }).setExpirationTime(exp).sign(privateKey);
        assert.deepEqual(await verifier.verify(token), { profileId: 'carol', expiresAt: exp * 1000 });
      });

      it('refuses a token signed by another key, an expired one and an HS256 token', async () => {
        await rejectsWith(verifier.verify(await new SignJWT({ sub: 'carol' }).setProtectedHeader({ alg }).sign(strangerKey)), 'unauthorized');
        const expired = await new SignJWT({ sub: 'carol' }).setProtectedHeader({ alg }).setExpirationTime(inSeconds(-5)).sign(privateKey);
        await rejectsWith(verifier.verify(expired), 'unauthorized', /expired/);
        await rejectsWith(verifier.verify(await new SignJWT({ sub: 'carol' }).setProtectedHeader({ alg: 'HS256' }).sign(hsKey)), 'unauthorized');
      });
    });
  }

  it('refuses a configuration whose publicKeyPem is not a key', () => {
    assert.throws(() => new JwtTokenVerifier(jwtConfig({ publicKeyPem: 'not a pem' })), /publicKeyPem/);
  });

  describe('JWKS URL', () => {
    let server: Server;
    let jwks: { keys: JWK[] } = { keys: [] };
    let answer: 'ok' | 'error500' | 'garbage' = 'ok';
    let privateKey: CryptoKey;
    let url: string;
    let jwksRequests = 0;

    before(async () => {
      const pair = await generateKeyPair('RS256', { extractable: true });
      privateKey = pair.privateKey;
      jwks = { keys: [{ ...(await exportJWK(pair.publicKey)), kid: 'k1', alg: 'RS256', use: 'sig' }] };
      server = createServer((req, res) => {
        jwksRequests += 1;
        if (answer === 'error500') return void res.writeHead(500).end('oops');
        if (answer === 'garbage') return void res.writeHead(200, { 'content-type': 'application/json' }).end('{not json');
        res.writeHead(200, { 'content-type': 'application/json' }).end(JSON.stringify(jwks));
      });
      await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
      url = `http://127.0.0.1:${(server.address() as AddressInfo).port}/.well-known/jwks.json`;
    });
    after(async () => {
      server.closeAllConnections();
      await new Promise<void>((resolve) => server.close(() => resolve()));
    });

    it('verifies with a key fetched from the JWKS URL, fetching the set once', async () => {
      answer = 'ok';
      const verifier = new JwtTokenVerifier(jwtConfig({ jwksUrl: url }));
      const exp = inSeconds(60);
      const sign = (sub: string) => new SignJWT({ sub }).setProtectedHeader({ alg: 'RS256', kid: 'k1' }).setExpirationTime(exp).sign(privateKey);
      const before = jwksRequests;
      assert.deepEqual(await verifier.verify(await sign('dave')), { profileId: 'dave', expiresAt: exp * 1000 });
      assert.equal((await verifier.verify(await sign('erin'))).profileId, 'erin');
      assert.equal(jwksRequests - before, 1);
    });

    it('refuses a token signed by a key that is not in the set', async () => {
      answer = 'ok';
      const verifier = new JwtTokenVerifier(jwtConfig({ jwksUrl: url }));
      const stranger = (await generateKeyPair('RS256')).privateKey;
      await rejectsWith(verifier.verify(await new SignJWT({ sub: 'dave' }).setProtectedHeader({ alg: 'RS256', kid: 'k1' }).sign(stranger)), 'unauthorized');
      await rejectsWith(verifier.verify(await new SignJWT({ sub: 'dave' }).setProtectedHeader({ alg: 'RS256', kid: 'k9' }).sign(stranger)), 'unauthorized');
    });

    it('answers unavailable when the JWKS URL fails, answers garbage, or refuses connections', async () => {
      const token = await new SignJWT({ sub: 'dave' }).setProtectedHeader({ alg: 'RS256', kid: 'k1' }).sign(privateKey);
      answer = 'error500';
      await rejectsWith(new JwtTokenVerifier(jwtConfig({ jwksUrl: url })).verify(token), 'unavailable');
      answer = 'garbage';
      await rejectsWith(new JwtTokenVerifier(jwtConfig({ jwksUrl: url })).verify(token), 'unavailable');
      answer = 'ok';
      const closed = createServer();
      await new Promise<void>((resolve) => closed.listen(0, '127.0.0.1', resolve));
      const deadUrl = `http://127.0.0.1:${(closed.address() as AddressInfo).port}/jwks`;
      await new Promise<void>((resolve) => closed.close(() => resolve()));
      await rejectsWith(new JwtTokenVerifier(jwtConfig({ jwksUrl: deadUrl })).verify(token), 'unavailable');
    });
  });
});
