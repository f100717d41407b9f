import { createServer, type IncomingMessage, type Server, type ServerResponse } from 'node:http';
import type { AddressInfo } from 'node:net';

/** How the fake answers a call: normally, or one of the failures the verifier must survive. */
export type FakeMode = 'ok' | 'slow' | 'error500' | 'garbage' | 'wrong-shape';

/**
 * A small stand-in for the Privicore API's two token endpoints, a real HTTP server on 127.0.0.1 port 0.
 * Tokens are registered with a profile and an expiry; `revoke` makes them answer 401 from then on.
 */
export class FakePrivicore {
  readonly tokens = new Map<string, { profileId: string; expiresAt: Date }>();
  /** Every request seen: method, URL and the token header (to check the token never travels in a URL). */
  readonly requests: Array<{ method: string; url: string; token: string | undefined }> = [];
  mode: FakeMode = 'ok';
  private readonly server: Server;
  private readonly waiters: Array<() => void> = [];
  private readonly stalled = new Set<ServerResponse>();

  /** `now`: the time expiries are counted from (a test's fake clock, so they pass when it moves). */
  private constructor(private readonly now: () => number) {
    this.server = createServer((req, res) => this.handle(req, res));
  }

  static async start(now: () => number = Date.now): Promise<FakePrivicore> {
    const fake = new FakePrivicore(now);
    await new Promise<void>((resolve) => fake.server.listen(0, '127.0.0.1', resolve));
    return fake;
  }

  get baseUrl(): string {
    return `http://127.0.0.1:${(this.server.address() as AddressInfo).port}/api`;
  }

  add(token: string, profileId: string, expiresInMs = 3600_000): void {
    this.tokens.set(token, { profileId, expiresAt: new Date(this.now() + expiresInMs) });
  }

  revoke(token: string): void {
    this.tokens.delete(token);
  }

  callsFor(token: string): number {
    return this.requests.filter((r) => r.token === token).length;
  }

  /** Resolves once `count` requests carrying `token` have been received in total. */
  async waitForCalls(token: string, count: number): Promise<void> {
    while (this.callsFor(token) < count) await new Promise<void>((resolve) => this.waiters.push(resolve));
  }

  async stop(): Promise<void> {
    for (const res of this.stalled) res.destroy();
    this.server.closeAllConnections();
    await new Promise<void>((resolve) => this.server.close(() => resolve()));
  }

  private handle(req: IncomingMessage, res: ServerResponse): void {
    const header = req.headers['x-dpt-authorization'];
    const token = typeof header === 'string' ? header : undefined;
    this.requests.push({ method: req.method ?? '', url: req.url ?? '', token });
    for (const wake of this.waiters.splice(0)) wake();
    req.resume();
    const send = (status: number, body: string) => {
      res.writeHead(status, { 'content-type': 'application/json' }).end(body);
    };
    if (this.mode === 'slow') {
      // Never answers; stop() ends it. The verifier's timeout must fire first.
      this.stalled.add(res);
      return;
    }
    if (this.mode === 'error500') return send(500, '{"error":"internal"}');
    const grant = token === undefined ? undefined : this.tokens.get(token);
    const route = `${req.method} ${req.url}`;
    if (route !== 'GET /api/profile/retrieve-profile-id' && route !== 'POST /api/profile/authorization-token/expiry') {
      return send(404, '{"error":"not found"}');
    }
    if (!grant) return send(401, '{"error":"Unauthorized"}');
    if (this.mode === 'garbage') return send(200, '<html>surprise</html>');
    if (this.mode === 'wrong-shape') return send(200, '{"profile":42}');
    if (route.startsWith('GET')) return send(200, JSON.stringify({ profileId: grant.profileId }));
    return send(200, JSON.stringify({ expiresAt: grant.expiresAt.toISOString() }));
  }
}
