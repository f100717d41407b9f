import { pathToFileURL } from 'node:url';
import { systemClock } from '../../core/clock.js';
import { GatewayError, isGatewayError } from '../../core/errors.js';
import { type ModuleId, moduleId } from '../../core/ids.js';
import { silentLogger } from '../../core/logger.js';
import type { ModuleRecord } from '../../core/system-directory.js';
import type { DeviceAddress, DriverDefinition, DriverRegistry } from '../../driver-api/driver-api.js';
import { bundledDrivers } from '../../drivers/bundled-drivers.js';
import { ModuleRuntime } from '../module-runtime.js';
import type { DriverSource, FromHost, HostError, ToHost } from './host-messages.js';

/**
 * A driver host: a child process of the gateway that runs the modules of one driver (README "Driver
 * hosts"). It loads drivers (bundled, or an ES module file), runs their methods, timers and device
 * connections, and sends status writes, log lines and answers back over IPC, in order. A heartbeat every
 * SWITCHBOARD_HOST_HEARTBEAT_MS tells the gateway its event loop is alive.
 */
const heartbeatMs = Number(process.env.SWITCHBOARD_HOST_HEARTBEAT_MS ?? 500);
const execTimeoutMs = Number(process.env.SWITCHBOARD_EXEC_TIMEOUT_MS ?? 10_000);
const maxStatusBytes = Number(process.env.SWITCHBOARD_MAX_STATUS_BYTES ?? 64 * 1024);

// Messages of one event-loop turn go out as one IPC write: each write costs a syscall and a parse on the
// other side, which at tens of thousands of execs a second is most of the cost.
let outbox: FromHost[] = [];
function post(message: FromHost): void {
  outbox.push(message);
  if (outbox.length === 1) setImmediate(flush);
}
function flush(): void {
  const batch = outbox;
  outbox = [];
  if (process.connected && batch.length > 0) process.send!(batch);
}

// Flow control: a driver can change status far faster than the gateway fans it out to sockets. At most
// `statusWindow` writes are in flight (sent, not yet stored by the gateway); past that, writes of one
// variable are coalesced to its latest value (a watcher may miss intermediate values, never the last),
// and every other message waits behind them, so an exec still answers after the writes it made.
const statusWindow = 200;
let inFlight = 0;
const coalesced = new Map<string, Extract<FromHost, { t: 'status' | 'delete' }>>();
const deferred: FromHost[] = [];

function send(message: FromHost): void {
  if (message.t === 'status' || message.t === 'delete') {
    if (inFlight < statusWindow && coalesced.size === 0) {
      inFlight += 1;
      post(message);
    } else {
      const key = `${message.module}\0${message.name}`;
      coalesced.delete(key);
      coalesced.set(key, message);
    }
    return;
  }
  if (coalesced.size > 0 && message.t !== 'hb') deferred.push(message);
  else post(message);
}

function acknowledged(n: number): void {
  inFlight = Math.max(0, inFlight - n);
  for (const [key, message] of coalesced) {
    if (inFlight >= statusWindow) return;
    coalesced.delete(key);
    inFlight += 1;
    post(message);
  }
  for (const message of deferred.splice(0)) post(message);
}

const records = new Map<ModuleId, ModuleRecord>();
const drivers: Record<string, DriverDefinition> = { ...(bundledDrivers as Record<string, DriverDefinition>) };
const devices = new Map<string, DeviceAddress>();

const runtime = new ModuleRuntime({
  directory: { module: (id) => records.get(id), modules: () => [...records.values()] },
  drivers: drivers as DriverRegistry,
  store: {
    set: async (module, name, json) => send({ t: 'status', module, name, json }),
    delete: async (module, name) => send({ t: 'delete', module, name }),
  },
  clock: systemClock,
  log: silentLogger,
  execTimeoutMs,
  devices: () => devices,
  publishLine: (line) => send({ t: 'log', line }),
  maxStatusBytes,
});

/** A driver file's default export (or its `driver` export). */
async function driverOf(source: DriverSource): Promise<DriverDefinition> {
  if (!source.file) {
    const bundled = drivers[source.key];
    if (!bundled) throw new GatewayError('bad_request', `unknown driver "${source.key}"`);
    return bundled;
  }
  if (drivers[source.key]) return drivers[source.key]!;
  const loaded = (await import(pathToFileURL(source.file).href)) as { default?: unknown; driver?: unknown };
  const candidate = (loaded.default ?? loaded.driver) as Partial<DriverDefinition> | undefined;
  if (!candidate || typeof candidate.load !== 'function' || typeof candidate.name !== 'string' || !candidate.settings?.safeParse) {
    throw new GatewayError('bad_request', `${source.file}: the default export is not a defineDriver(...) result`);
  }
  drivers[source.key] = candidate as DriverDefinition;
  return candidate as DriverDefinition;
}

const errorOf = (err: unknown): HostError =>
  isGatewayError(err) ? { code: err.code, message: err.message } : { code: 'request_failed', message: `module raised: ${(err as Error)?.message ?? String(err)}` };

async function handle(message: ToHost): Promise<void> {
  switch (message.t) {
    case 'load': {
      const id = moduleId(message.module.id);
      for (const [key, address] of message.devices) devices.set(key, address);
      try {
        await driverOf(message.driver);
      } catch (err) {
        send({ t: 'loaded', module: id, running: false, reason: `load failed: ${errorOf(err).message}` });
        return;
      }
      records.set(id, message.module);
      const outcome = await runtime.load(id, message.settings);
      const functions = runtime.functions(id);
      send({ t: 'loaded', module: id, ...outcome, ...(functions && { functions }) });
      return;
    }
    case 'unload': {
      const id = moduleId(message.module);
      await runtime.unload(id);
      records.delete(id);
      send({ t: 'unloaded', module: id });
      return;
    }
    case 'exec': {
      try {
        const { id, clearance } = message.caller;
        const caller = { id, clearance, kind: 'api-key' as const, canPublish: false, systems: [], zones: [], scopes: [] };
        const result = await runtime.exec(moduleId(message.module), message.method, message.args, caller);
        send({ t: 'reply', id: message.id, ok: true, json: result.json, code: result.code });
      } catch (err) {
        send({ t: 'reply', id: message.id, ok: false, error: errorOf(err) });
      }
      return;
    }
    case 'settings': {
      try {
        await runtime.updateSettings(moduleId(message.module), message.settings);
        send({ t: 'reply', id: message.id, ok: true });
      } catch (err) {
        send({ t: 'reply', id: message.id, ok: false, error: errorOf(err) });
      }
      return;
    }
    case 'ack':
      return;
    case 'describe': {
      // At the gateway's start: a driver file's name, and each module's settings checked by its schema.
      try {
        const driver = await driverOf(message.driver);
        const modules = message.modules.map(({ id, settings }) => {
          const parsed = driver.settings.safeParse(settings);
          return parsed.success
            ? { id, settings: parsed.data as unknown }
            : { id, problems: parsed.error.issues.map((i) => `${['settings', ...i.path.map(String)].join('.')}: ${i.message}`) };
        });
        send({ t: 'reply', id: message.id, ok: true, value: { name: driver.name, modules } });
      } catch (err) {
        send({ t: 'reply', id: message.id, ok: false, error: errorOf(err) });
      }
      return;
    }
  }
}

// Messages are handled concurrently (an exec never waits for another), as in the gateway.
process.on('message', (batch: ToHost[]) => {
  for (const message of batch) {
    if (message.t === 'ack') acknowledged(message.n);
    else void handle(message);
  }
});
// The gateway is gone: nothing of this host may outlive it. A gateway that stops while this host is still
// loading its imports disconnects before the listener exists, and the heartbeat below would then keep an
// orphan alive until the gateway's kill timer: so the channel is checked once the listener is in place.
process.on('disconnect', () => process.exit(0));
if (!process.connected) process.exit(0);
// A driver's stray throw leaves its modules in an unknown state: say so on their debug streams and exit,
// so the gateway restarts the host and reloads them.
process.on('uncaughtException', (err) => {
  for (const id of runtime.loadedModules()) send({ t: 'log', line: { module: id, level: 'error', message: `driver host crashed: ${err.message} (${err.name})` } });
  flush();
  process.exitCode = 70;
  setImmediate(() => process.exit(70));
});
setInterval(() => send({ t: 'hb' }), heartbeatMs);
send({ t: 'hb' });
