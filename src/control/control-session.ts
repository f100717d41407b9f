import type { Clock } from '../core/clock.js';
import type { Connection, Session } from '../core/connection.js';
import type { Principal } from '../core/credentials.js';
import type { DriverHost } from '../core/driver-host.js';
import { GatewayError } from '../core/errors.js';
import { RateLimiter } from '../core/rate-limiter.js';
import type { ModuleId } from '../core/ids.js';
import type { Logger } from '../core/logger.js';
import type { StatusStore } from '../core/status-store.js';
import type { SystemDirectory } from '../core/system-directory.js';
import type { GatewayMetrics } from '../observability/metrics.js';
import { toControlError } from '../protocol/control-errors.js';
import {
  type ControlMeta,
  type ControlRequest,
  debugFrame,
  errorFrame,
  execSuccessFrame,
  metaOf,
  notifyFrame,
  parseControlRequest,
  pingFrame,
  pongFrame,
  successFrame,
} from '../protocol/control.js';
import type { ControlCommands } from './control-commands.js';
import { resolveModule, resolveModuleByIdOrName } from './targets.js';

export interface ControlSessionOptions {
  /** Bindings this socket may hold (spec "Limits"). */
  maxBindingsPerSocket: number;
  /** Execs this socket may make per second (bursts of twice that). */
  execsPerSecondPerSocket: number;
  /** Period of the unsolicited `pong`. */
  pongIntervalMs: number;
}

export interface ControlSessionDeps {
  connection: Connection;
  principal: Principal;
  directory: SystemDirectory;
  store: StatusStore;
  /** exec goes through the command path shared with REST; debug streams come from the host. */
  commands: ControlCommands;
  host: DriverHost;
  clock: Clock;
  log: Logger;
  metrics: GatewayMetrics;
  options: ControlSessionOptions;
}

interface Binding {
  /** The id of the bind that created it: every notify carries it. */
  readonly id: number;
  readonly meta: ControlMeta;
  stop?: () => Promise<void>;
  cancelled: boolean;
}

interface DebugStream {
  readonly id: number;
  stop: () => void;
}

/**
 * One control-channel socket (spec: control-protocol.md). Requests are handled concurrently: each runs on
 * its own promise, so a slow exec never delays a bind; replies may come out of order and carry the request
 * id. A binding is keyed by what the client addressed (sys, mod, index, name), so a repeated bind is answered
 * without a second subscription. Everything the session holds (watches, debug streams, timers) is released
 * when the socket closes, also for requests still in flight.
 */
export class ControlSession implements Session {
  private readonly bindings = new Map<string, Binding>();
  private readonly debugStreams = new Map<ModuleId, DebugStream>();
  private readonly log: Logger;
  private cancelPong: () => void = () => {};
  private readonly execLimiter: RateLimiter;
  private closed = false;

  constructor(private readonly deps: ControlSessionDeps) {
    const { connection, principal } = deps;
    this.log = deps.log.child({ conn: connection.id, credential: principal.id, remote: connection.remoteAddress });
    this.execLimiter = new RateLimiter(deps.options.execsPerSecondPerSocket, deps.options.execsPerSecondPerSocket * 2, deps.clock);
    this.schedulePong();
  }

  onText(text: string): void {
    if (text === pingFrame) {
      this.send(pongFrame);
      return;
    }
    const parsed = parseControlRequest(text);
    if (!parsed.ok) {
      if (parsed.errorCode === 4) {
        this.log.warn({ id: parsed.id, reason: parsed.message }, 'unknown command: suspicious connection');
      } else {
        this.deps.metrics.badFrames.inc({ channel: 'control' });
        this.log.info({ id: parsed.id, reason: parsed.message }, 'bad request');
      }
      this.sendError(parsed.id, parsed.errorCode, parsed.message);
      return;
    }
    const request = parsed.request;
    this.handle(request).catch((err: unknown) => this.fail(request, err));
  }

  onBinary(): void {
    this.deps.metrics.badFrames.inc({ channel: 'control' });
    this.sendError(0, 0, 'binary frames are not supported; send JSON text');
  }

  onClose(): void {
    this.closed = true;
    this.cancelPong();
    for (const binding of this.bindings.values()) this.release(binding);
    this.bindings.clear();
    for (const stream of this.debugStreams.values()) stream.stop();
    this.debugStreams.clear();
  }

  private async handle(request: ControlRequest): Promise<void> {
    switch (request.cmd) {
      case 'bind':
        return this.bind(request);
      case 'unbind':
        return this.unbind(request);
      case 'exec':
        return this.exec(request);
      case 'debug':
        return this.debug(request);
      case 'ignore':
        return this.ignore(request);
    }
  }

  /** Spec "bind": success, then the current value if there is one, then every change. */
  private async bind(request: ControlRequest): Promise<void> {
    const key = bindingKey(request);
    const meta = metaOf(request);
    if (this.bindings.has(key)) {
      this.send(successFrame(request.id, meta));
      return;
    }
    const { directory, principal, store } = this.deps;
    const { moduleId } = resolveModule(directory, principal, request.sys, request.mod, request.index);
    if (this.bindings.size >= this.deps.options.maxBindingsPerSocket) {
      throw new GatewayError('bad_request', `too many bindings (at most ${this.deps.options.maxBindingsPerSocket} per socket)`);
    }
    const binding: Binding = { id: request.id, meta, cancelled: false };
    this.bindings.set(key, binding);

    // Changes that arrive before the current value was read are held, so the client never sees an older
    // value after a newer one; when there are any, they are at least as new as the read.
    let held: string[] | undefined = [];
    let stop: () => Promise<void>;
    try {
      stop = await store.watch(moduleId, request.name, (json) => {
        if (binding.cancelled) return;
        if (held) held.push(json);
        else this.send(notifyFrame(binding.id, json, binding.meta));
      });
    } catch (err) {
      if (this.bindings.get(key) === binding) this.bindings.delete(key);
      throw err;
    }
    binding.stop = stop;
    this.send(successFrame(request.id, meta));
    if (binding.cancelled || this.closed) {
      this.release(binding);
      return;
    }
    let current: string | undefined;
    try {
      current = await store.get(moduleId, request.name);
    } catch (err) {
      this.log.warn({ module: moduleId, name: request.name, reason: (err as Error).message }, 'bind: current value unavailable');
    }
    const changes = held;
    held = undefined;
    if (binding.cancelled) return;
    if (changes.length > 0) for (const json of changes) this.send(notifyFrame(binding.id, json, binding.meta));
    else if (current !== undefined) this.send(notifyFrame(binding.id, current, binding.meta));
  }

  /** Spec "unbind": always success without meta, also when nothing was bound. */
  private async unbind(request: ControlRequest): Promise<void> {
    const key = bindingKey(request);
    const binding = this.bindings.get(key);
    this.send(successFrame(request.id));
    if (!binding) return;
    this.bindings.delete(key);
    this.release(binding);
  }

  private async exec(request: ControlRequest): Promise<void> {
    if (!this.execLimiter.take()) throw new GatewayError('rate_limited', 'too many requests');
    // Counted (switchboard_control_execs_total, exec duration) by the meterExecs decorator of the DriverHost.
    const result = await this.deps.commands.exec(this.deps.principal, request, request.name, request.args);
    this.send(execSuccessFrame(request.id, result.json, metaOf(request), result.code));
  }

  /** Spec "debug": success, then the module's log lines as debug frames carrying this request's id. */
  private async debug(request: ControlRequest): Promise<void> {
    const { directory, principal, host } = this.deps;
    const { moduleId } = resolveModuleByIdOrName(directory, principal, request.sys, request.mod, request.index);
    if (this.debugStreams.has(moduleId) || this.closed) {
      this.send(successFrame(request.id));
      return;
    }
    const meta = metaOf(request);
    const id = request.id;
    // Held in the map while the stream starts, so a second debug of the module does not start another.
    const stream: DebugStream = { id, stop: () => {} };
    this.debugStreams.set(moduleId, stream);
    let stop: () => void;
    try {
      stop = await host.debug(moduleId, (line) => this.send(debugFrame(id, line.message, meta, moduleId, line.level)));
    } catch (err) {
      if (this.debugStreams.get(moduleId) === stream) this.debugStreams.delete(moduleId);
      throw err;
    }
    if (this.debugStreams.get(moduleId) !== stream || this.closed) {
      stop();
    } else {
      stream.stop = stop;
    }
    this.send(successFrame(request.id));
  }

  /** Spec "ignore": stops the module's debug stream; always success. */
  private async ignore(request: ControlRequest): Promise<void> {
    this.send(successFrame(request.id));
    let moduleId: ModuleId | undefined;
    try {
      moduleId = resolveModuleByIdOrName(this.deps.directory, this.deps.principal, request.sys, request.mod, request.index).moduleId;
    } catch {
      moduleId = request.mod as ModuleId;
    }
    const stream = this.debugStreams.get(moduleId);
    if (!stream) return;
    this.debugStreams.delete(moduleId);
    stream.stop();
  }

  private fail(request: ControlRequest, err: unknown): void {
    const { errorCode, message, expected } = toControlError(err);
    const target = { id: request.id, cmd: request.cmd, sys: request.sys, mod: request.mod, index: request.index, name: request.name };
    if (!expected) this.log.error({ ...target, err }, 'control request failed unexpectedly');
    else if (errorCode === 2) this.log.warn({ ...target, reason: message }, 'access denied');
    else this.log.info({ ...target, errorCode, reason: message }, 'control request refused');
    this.sendError(request.id, errorCode, message);
  }

  private sendError(id: number, errorCode: number, message: string): void {
    this.deps.metrics.controlErrors.inc({ code: String(errorCode) });
    this.send(errorFrame(id, errorCode, message));
  }

  private send(frame: string): void {
    if (!this.closed) this.deps.connection.send(frame);
  }

  private release(binding: Binding): void {
    binding.cancelled = true;
    binding.stop?.().catch((err: unknown) => this.log.warn({ reason: (err as Error).message }, 'unwatch failed'));
  }

  /** PlaceOS sends an unsolicited `pong` periodically; clients use it to tell a live server from a dead one. */
  private schedulePong(): void {
    this.cancelPong = this.deps.clock.schedule(this.deps.options.pongIntervalMs, () => {
      if (this.closed) return;
      this.send(pongFrame);
      this.schedulePong();
    });
  }
}

const bindingKey = (r: ControlRequest): string => JSON.stringify([r.sys, r.mod, r.index, r.name]);
