import { type ChildProcess, fork } from 'node:child_process';
import { fileURLToPath } from 'node:url';
import type { Clock } from '../../core/clock.js';
import { GatewayError } from '../../core/errors.js';
import type { Logger } from '../../core/logger.js';
import { type FromHost, parseFromHost, type ToHost } from './host-messages.js';

const hostEntry = fileURLToPath(new URL('./driver-host-main.js', import.meta.url));

export interface DriverHostProcessOptions {
  /** For logs and the process title: the driver key. */
  name: string;
  heartbeatIntervalMs: number;
  /** No heartbeat for this long: the host's event loop is blocked; it is killed. */
  heartbeatTimeoutMs: number;
  /** V8 heap cap of the host (`--max-old-space-size`). */
  maxOldSpaceMb: number;
  execTimeoutMs: number;
  /** control.maxStatusBytes, enforced in the host where drivers set status. */
  maxStatusBytes?: number;
  clock: Clock;
  log: Logger;
  /** Every well-formed message but heartbeats and replies. */
  onMessage(message: Exclude<FromHost, { t: 'hb' } | { t: 'reply' }>): void;
  /** Once, when the process is gone (exited, crashed, killed by the watchdog), with why. */
  onExit(reason: string): void;
}

type Reply = Extract<FromHost, { t: 'reply' }>;

/**
 * One driver host child process, from the gateway's side: forks it, sends it work, matches replies to
 * requests, and kills it when its heartbeat stops (a blocked event loop). It never restarts itself: the
 * owner (HostedModuleRuntime) decides, with backoff.
 */
export class DriverHostProcess {
  private child: ChildProcess | undefined;
  private readonly pending = new Map<number, { resolve: (reply: Reply) => void; reject: (err: Error) => void }>();
  private nextId = 1;
  private lastBeat = 0;
  private cancelWatchdog: () => void = () => {};
  private exitReason: string | undefined;
  private exited: Promise<void> = Promise.resolve();
  private outbox: ToHost[] = [];

  constructor(private readonly options: DriverHostProcessOptions) {}

  get alive(): boolean {
    return this.child !== undefined && this.exitReason === undefined;
  }

  get pid(): number | undefined {
    return this.child?.pid;
  }

  start(): void {
    const { options } = this;
    const child = fork(hostEntry, [options.name], {
      execArgv: [`--max-old-space-size=${options.maxOldSpaceMb}`],
      env: {
        ...process.env,
        SWITCHBOARD_HOST_HEARTBEAT_MS: String(options.heartbeatIntervalMs),
        SWITCHBOARD_EXEC_TIMEOUT_MS: String(options.execTimeoutMs),
        ...(options.maxStatusBytes !== undefined && { SWITCHBOARD_MAX_STATUS_BYTES: String(options.maxStatusBytes) }),
      },
      stdio: ['ignore', 'inherit', 'inherit', 'ipc'],
      serialization: 'json',
    });
    this.child = child;
    this.lastBeat = options.clock.now();
    this.exited = new Promise((resolve) => {
      child.once('exit', (code, signal) => {
        this.cancelWatchdog();
        const reason = this.exitReason ?? (signal ? `killed by ${signal}` : `exited with code ${code}`);
        this.exitReason = reason;
        for (const [id, waiter] of this.pending) {
          this.pending.delete(id);
          // A deliberate stop leaves the outcome unknown (error 7); a crash is the driver's failure (3).
          waiter.reject(
            reason === 'stopped'
              ? new GatewayError('unavailable', 'the module stopped while the request was running')
              : new GatewayError('request_failed', `driver host stopped: ${reason}`),
          );
        }
        options.onExit(reason);
        resolve();
      });
    });
    child.on('error', (err) => options.log.warn({ driver: options.name, err: err.message }, 'driver host process error'));
    child.on('message', (raw: unknown) => {
      if (!Array.isArray(raw)) {
        options.log.warn({ driver: options.name }, 'driver host sent a malformed message; dropped');
        return;
      }
      for (const message of raw) this.receive(message);
    });
    this.armWatchdog();
  }

  /** Queues a message; the messages of one event-loop turn go to the host as one IPC write. */
  send(message: ToHost): boolean {
    if (!this.alive || !this.child!.connected) return false;
    this.outbox.push(message);
    if (this.outbox.length === 1) setImmediate(() => this.flush());
    return true;
  }

  private flush(): void {
    const batch = this.outbox;
    this.outbox = [];
    if (batch.length > 0 && this.alive && this.child!.connected) this.child!.send(batch);
  }

  /** Sends the request `build` makes with a fresh id and resolves with the host's reply to it. */
  request(build: (id: number) => ToHost): Promise<Reply> {
    const id = this.nextId++;
    return new Promise<Reply>((resolve, reject) => {
      if (!this.send(build(id))) {
        reject(new GatewayError('request_failed', `driver host not running (${this.exitReason ?? 'starting'})`));
        return;
      }
      this.pending.set(id, { resolve, reject });
    });
  }

  /** Asks the host to exit (it exits when its IPC channel closes); kills it if it does not within 2 s. */
  async stop(): Promise<void> {
    const child = this.child;
    if (!child || !this.alive) return this.exited;
    this.flush();
    this.exitReason = 'stopped';
    child.disconnect();
    const cancelKill = this.options.clock.schedule(2_000, () => child.kill('SIGKILL'));
    await this.exited;
    cancelKill();
  }

  private receive(raw: unknown): void {
    const message = parseFromHost(raw);
    if (!message) {
      this.options.log.warn({ driver: this.options.name }, 'driver host sent a malformed message; dropped');
      return;
    }
    this.lastBeat = this.options.clock.now();
    if (message.t === 'hb') return;
    if (message.t === 'reply') {
      const waiter = this.pending.get(message.id);
      if (!waiter) return;
      this.pending.delete(message.id);
      waiter.resolve(message);
      return;
    }
    this.options.onMessage(message);
  }

  private armWatchdog(): void {
    const { clock, heartbeatIntervalMs, heartbeatTimeoutMs } = this.options;
    const due = clock.now() + heartbeatIntervalMs;
    this.cancelWatchdog = clock.schedule(heartbeatIntervalMs, () => {
      if (!this.alive) return;
      // Timers run before pending IPC is read: if this process was itself stalled, the host's heartbeats
      // may be waiting unread. Judge only after one poll phase (setImmediate runs after it), and never on
      // a round where this process was late by more than a period.
      if (clock.now() - due > heartbeatIntervalMs) {
        this.armWatchdog();
        return;
      }
      setImmediate(() => {
        if (!this.alive) return;
        const silentMs = clock.now() - this.lastBeat;
        if (silentMs > heartbeatTimeoutMs) {
          this.exitReason = `event loop blocked: no heartbeat for ${silentMs} ms`;
          this.child!.kill('SIGKILL');
          return;
        }
        this.armWatchdog();
      });
    });
  }
}
