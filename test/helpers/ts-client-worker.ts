/**
 * Runs the stock `@placeos/ts-client` in a worker thread (it keeps module-level state and timers that
 * would keep a test process alive; terminating the worker ends them). It installs the browser globals the
 * client needs, then plays the scenario of issue 3 "Must show 1" and posts what the client saw.
 */
import { parentPort, workerData } from 'node:worker_threads';
import { WebSocket } from 'ws';

export interface TsClientScenario {
  host: string;
  sys: string;
  apiKey?: string;
  jwt?: string;
  /** Instead of the channel scenario: the module lifecycle functions on this module (issue 15). */
  lifecycleModule?: string;
}

/** What showModule, stopModule, startModule, updateModule, moduleState and lookupModuleState returned. */
export interface TsClientLifecycle {
  shown: Record<string, unknown>;
  afterStop: Record<string, unknown>;
  afterStart: Record<string, unknown>;
  updated: Record<string, unknown>;
  state: Record<string, unknown>;
  connected: unknown;
}

export interface TsClientObservations {
  initial: unknown;
  execResult: unknown;
  notified: unknown;
  volumeError: unknown;
  /** `querySystems()` over REST: X-Total-Count and the ids. */
  systems: { total: number; ids: string[] };
}

class MemoryStorage {
  private readonly items = new Map<string, string>();
  get length() {
    return this.items.size;
  }
  key(i: number) {
    return [...this.items.keys()][i] ?? null;
  }
  getItem(k: string) {
    return this.items.get(k) ?? null;
  }
  setItem(k: string, v: string) {
    this.items.set(k, String(v));
  }
  removeItem(k: string) {
    this.items.delete(k);
  }
  clear() {
    this.items.clear();
  }
}

const scenario = workerData as TsClientScenario;
const g = globalThis as Record<string, unknown>;
g.window = globalThis;
g.localStorage = new MemoryStorage();
g.sessionStorage = new MemoryStorage();
g.location = {
  protocol: 'http:',
  host: scenario.host,
  hostname: scenario.host.split(':')[0],
  origin: `http://${scenario.host}`,
  href: `http://${scenario.host}/`,
  pathname: '/',
  hash: '',
  search: '',
  assign() {},
  reload() {},
};
g.WebSocket = WebSocket;

const spec = '@placeos/ts-client/dist/index.es.js';
/** The part of ts-client's API this scenario uses (its bundled .d.ts files do not resolve under NodeNext). */
interface TsClient {
  setup(options: Record<string, unknown>): Promise<void>;
  setAPI_Key(key: string): void;
  setToken(token: string, expiresAt: number): void;
  getModule(sys: string, mod: string, index?: number): {
    binding<T>(name: string): { listen(): { subscribe(next: (v: T) => void): unknown }; bind(): () => void };
    execute<T = unknown>(method: string, args?: unknown[]): Promise<T>;
  };
  showModule(id: string): Observable<Record<string, unknown>>;
  stopModule(id: string): Observable<unknown>;
  startModule(id: string): Observable<unknown>;
  updateModule(id: string, form: Record<string, unknown>): Observable<Record<string, unknown>>;
  moduleState(id: string): Observable<Record<string, unknown>>;
  lookupModuleState(id: string, key: string): Observable<unknown>;
  querySystems(params?: Record<string, unknown>): {
    subscribe(o: { next: (v: { total: number; data: Array<{ id: string }> }) => void; error: (e: unknown) => void }): unknown;
  };
}
interface Observable<T> {
  subscribe(o: { next: (v: T) => void; error: (e: unknown) => void }): unknown;
}
const client = (await import(spec)) as TsClient;
const once = <T>(observable: Observable<T>, what = 'request') =>
  new Promise<T>((resolve, reject) =>
    observable.subscribe({
      next: resolve,
      error: (e) => reject(new Error(`${what}: ${e instanceof Error ? e.message : `HTTP ${(e as { status?: number })?.status} ${JSON.stringify(e)}`}`)),
    }),
  );
/** The client's model objects as plain data (it adds class instances and defaults). */
const plain = (v: unknown) => JSON.parse(JSON.stringify(v)) as Record<string, unknown>;

/** Values a subscription delivered, in order; `waitFor` resolves on the first match, already seen or to come. */
class Seen<T> {
  readonly values: T[] = [];
  private readonly waiters = new Set<(v: T) => boolean>();

  push(value: T): void {
    this.values.push(value);
    for (const waiter of [...this.waiters]) if (waiter(value)) this.waiters.delete(waiter);
  }

  waitFor(match: (v: T) => boolean, what: string, timeoutMs = 10_000): Promise<T> {
    const found = this.values.find(match);
    if (found !== undefined) return Promise.resolve(found);
    return new Promise((resolve, reject) => {
      const waiter = (v: T) => {
        if (!match(v)) return false;
        clearTimeout(timer);
        resolve(v);
        return true;
      };
      const timer = setTimeout(() => {
        this.waiters.delete(waiter);
        reject(new Error(`ts-client never saw ${what}; saw ${JSON.stringify(this.values)}`));
      }, timeoutMs);
      this.waiters.add(waiter);
    });
  }
}

try {
  await client.setup({
    host: scenario.host,
    secure: false,
    token_header: true,
    handle_login: false,
    auth_uri: '/auth/oauth/authorize',
    token_uri: '/auth/token',
    redirect_uri: `http://${scenario.host}/oauth-resp.html`,
    scope: 'public',
  });
  if (scenario.apiKey) client.setAPI_Key(scenario.apiKey);
  if (scenario.jwt) client.setToken(scenario.jwt, Date.now() + 3600_000);

  if (scenario.lifecycleModule) {
    const id = scenario.lifecycleModule;
    const shown = plain(await once(client.showModule(id), 'showModule'));
    await once(client.stopModule(id), 'stopModule');
    const afterStop = plain(await once(client.showModule(id), 'showModule'));
    await once(client.startModule(id), 'startModule');
    const afterStart = plain(await once(client.showModule(id), 'showModule'));
    const updated = plain(await once(client.updateModule(id, { settings: { pollMs: 400 } }), 'updateModule'));
    const state = plain(await once(client.moduleState(id), 'moduleState'));
    const connected = await once(client.lookupModuleState(id, 'connected'), 'lookupModuleState');
    const lifecycle: TsClientLifecycle = { shown, afterStop, afterStart, updated, state, connected };
    parentPort!.postMessage({ ok: true, observations: lifecycle });
  } else {
  const mod = client.getModule(scenario.sys, 'Display', 1);
  const power = mod.binding<boolean>('power');
  const seen = new Seen<boolean | null>();
  power.listen().subscribe((v) => {
    if (v !== undefined) seen.push(v);
  });
  power.bind();
  const initial = await seen.waitFor(() => true, 'the current value');
  const execResult = await mod.execute('power', [true]);
  const notified = await seen.waitFor((v) => v === true, 'the notify of power=true');
  let volumeError: unknown;
  try {
    await mod.execute('volume', [500]);
    volumeError = 'no error';
  } catch (err) {
    volumeError = err;
  }
  const page = await new Promise<{ total: number; data: Array<{ id: string }> }>((resolve, reject) =>
    client.querySystems().subscribe({ next: resolve, error: reject }),
  );
  const systems = { total: page.total, ids: page.data.map((s) => s.id) };
  const observations: TsClientObservations = { initial, execResult, notified, volumeError, systems };
  parentPort!.postMessage({ ok: true, observations });
  }
} catch (err) {
  parentPort!.postMessage({ ok: false, error: err instanceof Error ? err.message : JSON.stringify(err) });
}
