import {
  type CommandStatusMessage,
  commandStatusType,
  type DataDownloadMessage,
  dataDownloadType,
  expiredMessage,
  type NotificationMessage,
  type NotifyReply,
} from '../../src/protocol/notify.js';
import { backoffDelayMs } from './backoff.js';
import { RecentKeys, RecentMap } from './dedupe.js';
import { Emitter } from './emitter.js';
import { ClientClosedError, CommandFailedError, ConnectionLostError, NotifyRequestError, SwitchboardError, TimeoutError } from './errors.js';
import { type CloseInfo, type ConnectionOptions, ManagedSocket } from './managed-socket.js';
import type { StatusEvent, StatusStream } from './status.js';

export type { CommandStatusMessage, DataDownloadMessage, NotificationMessage };

/** A command status update (`type` X-DPT-CAB-ID). */
export interface CommandStatusEvent {
  commandId: string;
  /** 1 pending (may repeat), 2 success, 3 failed. */
  status: 1 | 2 | 3;
  body: string;
  message: CommandStatusMessage;
}

/** A data download message (`type` X-DPT-CAB-REQUEST-ID). */
export interface DataDownloadEvent {
  requestId: string;
  /** 0 textual status message, 1 time-limited download link in `body`. */
  outputType: 0 | 1;
  body: string;
  dataContext?: string;
  message: DataDownloadMessage;
}

export interface CommandResult {
  commandId: string;
  /** The backend's `body` of the success message. */
  body: string;
}

/** What a `poll` hook reports about a command whose updates may have been missed while disconnected. */
export type PolledCommandStatus = { status: 1 | 2 | 3; body?: string } | undefined | null;

export interface NotificationClientOptions extends ConnectionOptions {
  /** Gateway base URL, e.g. `ws://127.0.0.1:8080/` (the notification channel is at `/`). */
  url: string;
  /**
   * Called when the gateway reports that the joined token expired (401 "Authorization token expired;
   * channel left."), or refuses a re-join with 401: returns a fresh token, which the client joins with.
   */
  refreshToken?: (context: { channelId?: string }) => Promise<string> | string;
  /**
   * Asked after every reconnection for each command still awaited, so a final status published while the
   * client was away is not missed (e.g. a call to the backend's command status API).
   */
  poll?: (commandId: string) => Promise<PolledCommandStatus> | PolledCommandStatus;
  /** Join/leave reply timeout. Default 10 s. */
  requestTimeoutMs?: number;
  /** How many recent messages are remembered to drop redeliveries. Default 1000. */
  dedupeWindow?: number;
  /** A join answered 503 (broker unavailable) or 429 is retried this many times, with the backoff delays. Default 5. */
  joinRetries?: number;
}

export interface NotificationClientEvents {
  [event: string]: (...args: any[]) => void;
  /** Every notification (de-duplicated), whatever its type. */
  message: (message: NotificationMessage, raw: string) => void;
  commandStatus: (event: CommandStatusEvent) => void;
  /** Command status 1 (a subset of commandStatus). */
  pending: (event: CommandStatusEvent) => void;
  dataDownload: (event: DataDownloadEvent) => void;
  /** Joined (also after each automatic re-join). */
  joined: (info: { channelId: string }) => void;
  /** The gateway left the channel because the token expired or was revoked. */
  expired: (info: { channelId?: string }) => void;
  /** A background failure: a re-join, a token refresh or a poll that failed. The client carries on. */
  error: (error: SwitchboardError) => void;
}

interface CommandWaiter {
  resolve: (result: CommandResult) => void;
  reject: (error: Error) => void;
  onPending?: ((event: CommandStatusEvent) => void) | undefined;
  timer?: ReturnType<typeof setTimeout>;
}

interface DownloadWaiter {
  resolve: (link: string) => void;
  reject: (error: Error) => void;
  onStatus?: ((text: string) => void) | undefined;
  timer?: ReturnType<typeof setTimeout>;
}

type Terminal = { ok: true; body: string } | { ok: false; reason: string };

/**
 * Client of the notification channel (spec: notify-protocol.md). It joins one profile channel, re-joins
 * after every reconnection, drops redelivered messages, and turns command status and data download
 * messages into promises (`command`, `download`) and events.
 *
 * ```ts
 * const client = new NotificationClient({ url: 'ws://127.0.0.1:8080/' });
 * await client.join('demo-token-alice');
 * const { body } = await client.command(commandId, { timeoutMs: 30_000 });
 * ```
 */
export class NotificationClient extends Emitter<NotificationClientEvents> {
  private readonly socket: ManagedSocket;
  private readonly seen: RecentKeys;
  private readonly commands = new Map<string, Set<CommandWaiter>>();
  private readonly downloads = new Map<string, Set<DownloadWaiter>>();
  /** Final outcomes recently seen, so `command(id)` called after the result arrived still resolves. */
  private readonly finished = new RecentMap<Terminal>(1000);
  private readonly links = new RecentMap<string>(1000);
  private readonly replies = new Map<string, { resolve: (reply: NotifyReply) => void; reject: (err: Error) => void }>();
  private nextCorrelation = 0;
  /** The token the client should be joined with (survives reconnections); undefined after leave(). */
  private token: string | undefined;
  /** Joined with `token` on socket generation `generation`. */
  private joinedState: { token: string; generation: number; channelId: string } | undefined;
  private joinQueue: Promise<unknown> = Promise.resolve();
  /** The token the gateway reported expired: never re-sent by a queued re-join (the refresh joins instead). */
  private expiredToken: string | undefined;

  constructor(private readonly options: NotificationClientOptions) {
    super();
    this.seen = new RecentKeys(options.dedupeWindow ?? 1000);
    this.socket = new ManagedSocket(
      {
        url: () => options.url,
        onOpen: () => this.reopened(),
        onText: (text) => this.received(text),
        onDrop: (error) => this.dropped(error),
      },
      options,
    );
  }

  /** The status stream (connecting / connected / reconnecting / closed); iterable with `for await`. */
  get status(): StatusStream {
    return this.socket.status;
  }

  onStatus(listener: (event: StatusEvent) => void): () => void {
    return this.socket.status.on('status', listener);
  }

  /** The profile channel joined on the current socket, if any. */
  get channelId(): string | undefined {
    return this.joinedState?.generation === this.socket.generation ? this.joinedState.channelId : undefined;
  }

  /** Commands and downloads still awaited (0 when nothing is pending: nothing leaks). */
  get pendingCount(): number {
    return this.commands.size + this.downloads.size + this.replies.size;
  }

  /** Connects; resolves once the socket is open. Called by `join` when needed. */
  connect(): Promise<void> {
    return this.socket.start();
  }

  /**
   * Joins the profile channel of `token` and keeps it joined across reconnections. Resolves with the
   * channel (profile) id; rejects with NotifyRequestError (401 bad token, 409 joined elsewhere, 503 ...).
   */
  join(token: string): Promise<{ channelId: string }> {
    this.token = token;
    this.expiredToken = undefined;
    void this.connect().catch(() => {});
    return this.serialised(() => this.ensureJoined());
  }

  /** Leaves the channel (if joined) and stops re-joining. */
  leave(): Promise<void> {
    this.token = undefined;
    return this.serialised(async () => {
      const joined = this.joinedState;
      this.joinedState = undefined;
      if (!joined || joined.generation !== this.socket.generation || !this.socket.isOpen) return;
      const reply = await this.request({ action: 'leaveChannel', data: { channelId: joined.channelId } });
      if (reply.status !== 200 && reply.status !== 409) throw new NotifyRequestError(reply.data.message, reply.status);
    });
  }

  /**
   * Resolves with the body of command `commandId`'s success (status 2); rejects with CommandFailedError on
   * status 3, TimeoutError after `timeoutMs`, ClientClosedError on close. `onPending` sees status 1 updates.
   */
  command(
    commandId: string,
    options: { timeoutMs?: number; onPending?: (event: CommandStatusEvent) => void } = {},
  ): Promise<CommandResult> {
    const done = this.finished.get(commandId);
    if (done) return done.ok ? Promise.resolve({ commandId, body: done.body }) : Promise.reject(new CommandFailedError(commandId, done.reason));
    if (this.socket.isStopped) return Promise.reject(new ClientClosedError('client is closed'));
    return new Promise((resolve, reject) => {
      const waiter: CommandWaiter = { resolve, reject, onPending: options.onPending };
      let set = this.commands.get(commandId);
      if (!set) this.commands.set(commandId, (set = new Set()));
      set.add(waiter);
      if (options.timeoutMs !== undefined) {
        waiter.timer = setTimeout(() => {
          this.removeWaiter(this.commands, commandId, waiter);
          reject(new TimeoutError(`no final status for command ${commandId} within ${options.timeoutMs} ms`, options.timeoutMs!));
        }, options.timeoutMs);
      }
    });
  }

  /**
   * Resolves with the download link of request `requestId` (output_type 1). `onStatus` sees textual
   * status messages (output_type 0).
   */
  download(requestId: string, options: { timeoutMs?: number; onStatus?: (text: string) => void } = {}): Promise<string> {
    const link = this.links.get(requestId);
    if (link !== undefined) return Promise.resolve(link);
    if (this.socket.isStopped) return Promise.reject(new ClientClosedError('client is closed'));
    return new Promise((resolve, reject) => {
      const waiter: DownloadWaiter = { resolve, reject, onStatus: options.onStatus };
      let set = this.downloads.get(requestId);
      if (!set) this.downloads.set(requestId, (set = new Set()));
      set.add(waiter);
      if (options.timeoutMs !== undefined) {
        waiter.timer = setTimeout(() => {
          this.removeWaiter(this.downloads, requestId, waiter);
          reject(new TimeoutError(`no download link for request ${requestId} within ${options.timeoutMs} ms`, options.timeoutMs!));
        }, options.timeoutMs);
      }
    });
  }

  /** Closes for good: pending commands and downloads reject with ClientClosedError. */
  close(): Promise<CloseInfo> {
    const info = this.socket.close();
    const error = new ClientClosedError('client closed');
    for (const [id, set] of [...this.commands]) for (const w of [...set]) this.settle(this.commands, id, w, () => w.reject(error));
    for (const [id, set] of [...this.downloads]) for (const w of [...set]) this.settle(this.downloads, id, w, () => w.reject(error));
    return info;
  }

  /** Resolves when the client has closed for good (by `close()` or by giving up); never rejects. */
  closed(): Promise<CloseInfo> {
    return this.socket.closed();
  }

  // --- joining -------------------------------------------------------------------------------------------

  private serialised<T>(task: () => Promise<T>): Promise<T> {
    const run = this.joinQueue.then(task, task);
    this.joinQueue = run.catch(() => {});
    return run;
  }

  private async ensureJoined(allowRefresh = true): Promise<{ channelId: string }> {
    const token = this.token;
    if (token === undefined) throw new NotifyRequestError('left before the join completed', 409);
    await this.socket.whenOpen();
    const generation = this.socket.generation;
    const joined = this.joinedState;
    if (joined && joined.token === token && joined.generation === generation) return { channelId: joined.channelId };
    if (token === this.expiredToken) throw new NotifyRequestError('Authorization token expired.', 401);
    let reply = await this.request({ action: 'joinChannel', data: { authorizationToken: token } });
    // 503 and 429 mean "try again": do so a few times before giving the error to the caller.
    for (let attempt = 1; (reply.status === 503 || reply.status === 429) && attempt <= (this.options.joinRetries ?? 5); attempt++) {
      await new Promise((resolve) => setTimeout(resolve, backoffDelayMs(attempt, this.options.reconnect || {}, this.options.random)));
      if (this.token !== token || this.socket.generation !== generation) throw new NotifyRequestError(reply.data.message, reply.status);
      reply = await this.request({ action: 'joinChannel', data: { authorizationToken: token } });
    }
    if (reply.status === 401 && allowRefresh && this.options.refreshToken && this.token === token) {
      this.token = await this.options.refreshToken({});
      return this.ensureJoined(false);
    }
    if (reply.status !== 200 || !reply.data.channelId) {
      // A refused token is not retried on reconnect; a channel still joined (409 for another profile) stays.
      if (this.token === token && reply.status >= 400 && reply.status < 500 && reply.status !== 429) {
        this.token = joined?.generation === generation ? joined.token : undefined;
      }
      throw new NotifyRequestError(reply.data.message, reply.status);
    }
    this.joinedState = { token, generation, channelId: reply.data.channelId };
    this.emit('joined', { channelId: reply.data.channelId });
    return { channelId: reply.data.channelId };
  }

  private request(frame: { action: string; data: Record<string, string> }): Promise<NotifyReply> {
    const correlationId = `sb-${++this.nextCorrelation}`;
    const timeoutMs = this.options.requestTimeoutMs ?? 10_000;
    return new Promise((resolve, reject) => {
      const timer = setTimeout(() => {
        this.replies.delete(correlationId);
        reject(new TimeoutError(`no reply to ${frame.action} within ${timeoutMs} ms`, timeoutMs));
      }, timeoutMs);
      this.replies.set(correlationId, {
        resolve: (reply) => {
          clearTimeout(timer);
          resolve(reply);
        },
        reject: (err) => {
          clearTimeout(timer);
          reject(err);
        },
      });
      try {
        this.socket.send(JSON.stringify({ action: frame.action, correlationId, data: frame.data }));
      } catch (err) {
        this.replies.get(correlationId)?.reject(err as Error);
        this.replies.delete(correlationId);
      }
    });
  }

  private reopened(): void {
    const token = this.token;
    if (token === undefined || token === this.expiredToken) return;
    // A join() called meanwhile with another token does its own joining.
    this.serialised(async () => (this.token === token ? this.ensureJoined() : undefined))
      .then(() => this.reconcile())
      .catch((err: unknown) => {
        // A re-join queued before an expiry report is skipped; the refresh joins with the fresh token.
        if (this.token !== undefined && this.token === this.expiredToken) return;
        this.emit('error', asSdkError(err, 're-join failed'));
      });
  }

  /** Asks the poll hook about every command still awaited. */
  private async reconcile(): Promise<void> {
    const poll = this.options.poll;
    if (!poll) return;
    await Promise.all(
      [...this.commands.keys()].map(async (commandId) => {
        try {
          const polled = await poll(commandId);
          if (polled && (polled.status === 2 || polled.status === 3)) this.finishCommand(commandId, polled.status, polled.body ?? '');
        } catch (err) {
          this.emit('error', asSdkError(err, `poll(${commandId}) failed`));
        }
      }),
    );
  }

  private async expired(channelId: string | undefined): Promise<void> {
    this.joinedState = undefined;
    this.expiredToken = this.token;
    this.emit('expired', channelId !== undefined ? { channelId } : {});
    const refresh = this.options.refreshToken;
    if (!refresh || this.token === undefined) return;
    try {
      this.token = await refresh(channelId !== undefined ? { channelId } : {});
      await this.serialised(() => this.ensureJoined(false));
    } catch (err) {
      this.emit('error', asSdkError(err, 'token refresh failed'));
    }
  }

  private dropped(error: SwitchboardError): void {
    for (const [id, pending] of [...this.replies]) {
      this.replies.delete(id);
      pending.reject(error instanceof ClientClosedError ? error : new ConnectionLostError(error.message));
    }
  }

  // --- inbound -------------------------------------------------------------------------------------------

  private received(text: string): void {
    let frame: unknown;
    try {
      frame = JSON.parse(text);
    } catch {
      return; // not ours to judge: the gateway only sends JSON, a backend's odd payload is skipped
    }
    if (frame === null || typeof frame !== 'object') return;
    const record = frame as Record<string, unknown>;
    if (typeof record.status === 'number') {
      this.reply(record as unknown as NotifyReply);
      return;
    }
    const data = record.data as Record<string, unknown> | undefined;
    if (!data || typeof data.type !== 'string' || typeof data.id !== 'string') return;
    if (this.seen.seen(text)) return;
    this.emit('message', record as NotificationMessage, text);
    if (data.type === commandStatusType) this.commandStatus(record as unknown as CommandStatusMessage);
    else if (data.type === dataDownloadType) this.dataDownload(record as unknown as DataDownloadMessage);
  }

  private reply(reply: NotifyReply): void {
    const pending = reply.correlationId !== undefined ? this.replies.get(reply.correlationId) : undefined;
    if (pending) {
      this.replies.delete(reply.correlationId!);
      pending.resolve(reply);
      return;
    }
    if (reply.status === 401 && reply.data?.message === expiredMessage) void this.expired(reply.data.channelId);
  }

  private commandStatus(message: CommandStatusMessage): void {
    const { id, command_status: status, body } = message.data;
    if (status !== 1 && status !== 2 && status !== 3) return;
    const event: CommandStatusEvent = { commandId: id, status, body: typeof body === 'string' ? body : String(body ?? ''), message };
    this.emit('commandStatus', event);
    if (status === 1) {
      this.emit('pending', event);
      for (const waiter of [...(this.commands.get(id) ?? [])]) waiter.onPending?.(event);
      return;
    }
    this.finishCommand(id, status, event.body);
  }

  private finishCommand(commandId: string, status: 2 | 3, body: string): void {
    this.finished.set(commandId, status === 2 ? { ok: true, body } : { ok: false, reason: body });
    for (const waiter of [...(this.commands.get(commandId) ?? [])]) {
      this.settle(this.commands, commandId, waiter, () =>
        status === 2 ? waiter.resolve({ commandId, body }) : waiter.reject(new CommandFailedError(commandId, body)),
      );
    }
  }

  private dataDownload(message: DataDownloadMessage): void {
    const { id, output_type: outputType, body, data_context: dataContext } = message.data;
    if (outputType !== 0 && outputType !== 1) return;
    const text = typeof body === 'string' ? body : String(body ?? '');
    this.emit('dataDownload', { requestId: id, outputType, body: text, ...(dataContext !== undefined && { dataContext }), message });
    const waiters = [...(this.downloads.get(id) ?? [])];
    if (outputType === 0) {
      for (const waiter of waiters) waiter.onStatus?.(text);
      return;
    }
    this.links.set(id, text);
    for (const waiter of waiters) this.settle(this.downloads, id, waiter, () => waiter.resolve(text));
  }

  private settle<W extends { timer?: ReturnType<typeof setTimeout> }>(map: Map<string, Set<W>>, id: string, waiter: W, action: () => void): void {
    this.removeWaiter(map, id, waiter);
    action();
  }

  private removeWaiter<W extends { timer?: ReturnType<typeof setTimeout> }>(map: Map<string, Set<W>>, id: string, waiter: W): void {
    if (waiter.timer !== undefined) clearTimeout(waiter.timer);
    const set = map.get(id);
    if (!set) return;
    set.delete(waiter);
    if (set.size === 0) map.delete(id);
  }
}

function asSdkError(err: unknown, context: string): SwitchboardError {
  if (err instanceof SwitchboardError) return err;
  return new SwitchboardError(`${context}: ${err instanceof Error ? err.message : String(err)}`);
}
