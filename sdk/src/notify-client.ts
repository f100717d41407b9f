import {
  type CommandStatusMessage,
  commandStatusType,
  type DataDownloadMessage,
  dataDownloadType,
  expiredMessage,
  type NotificationMessage,
  type NotifyReply,
} from '../../src/protocol/notify.js';
import { AckTracker, embeddedMessageText } from './ack-tracker.js';
import { backoffDelayMs } from './backoff.js';
import { messageIdentity, RecentKeys, RecentMap } from './dedupe.js';
import { callListener, Emitter } from './emitter.js';
import { ClientClosedError, CommandFailedError, ConnectionLostError, NotConnectedError, NotifyRequestError, SwitchboardError } from './errors.js';
import { type CloseInfo, type ConnectionOptions, ManagedSocket } from './managed-socket.js';
import type { StatusEvent, StatusStream } from './status.js';
import { type CallOptions, type OfflineOptions, type Settle, settling, sleep } from './timing.js';

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

/**
 * How the gateway delivers on the joined socket. `ack`: acknowledged delivery, the client acknowledges each
 * message once its listeners ran, and the gateway settles it with the broker only then (at least once).
 * `plain`: a message counts as delivered once the gateway wrote it to the socket.
 */
export type DeliveryMode = 'ack' | 'plain';

/** What a listener may return: a promise is awaited before the message is acknowledged (ack mode). */
type ListenerResult = unknown;

export interface NotificationClientOptions extends ConnectionOptions {
  /** Gateway base URL, e.g. `ws://127.0.0.1:8080/` (the notification channel is at `/`). */
  url: string;
  /**
   * Called when the gateway reports that the joined token expired (401 "Authorization token expired;
   * channel left."), or refuses a re-join with 401: returns a fresh token, which the client joins with.
   * A `leave()` or `join()` called while it runs wins: its result is then dropped.
   */
  refreshToken?: (context: { channelId?: string }) => Promise<string> | string;
  /**
   * Asked after every reconnection for each command still awaited, so a final status published while the
   * client was away is not missed (e.g. a call to the backend's command status API).
   */
  poll?: (commandId: string) => Promise<PolledCommandStatus> | PolledCommandStatus;
  /** Reply timeout of each join/leave frame, and default timeout of `leave()`. Default 10 s. */
  requestTimeoutMs?: number;
  /** Default timeout of `join()`, counted from the call (connecting and reconnecting included). Default 30 s. */
  joinTimeoutMs?: number;
  /** Default timeout of `command()` and `download()`, counted from the call. Default 120 s. */
  commandTimeoutMs?: number;
  /** How many recent message identities are remembered to drop redeliveries. Default 1000. */
  dedupeWindow?: number;
  /** Bound on the characters those identities hold (ids are chosen by backends). Default 256 Ki. */
  dedupeMaxChars?: number;
  /** A join answered 503 (broker unavailable) or 429 is retried this many times, with the backoff delays. Default 5. */
  joinRetries?: number;
  /**
   * Ask for acknowledged delivery at every join (default true): the client acknowledges each message once
   * the listeners of the events it causes returned (their promises settled, a throw or rejection counting
   * as done), and the gateway settles it with the broker only then, so a message in flight when the network
   * drops comes again instead of being lost. A gateway that does not grant it delivers plain; `deliveryMode`
   * says which. False: plain delivery, the Privicore proxy's frames byte for byte.
   */
  ack?: boolean;
}

export interface NotificationClientEvents {
  /**
   * Every notification (de-duplicated), whatever its type; `raw` is the text the backend published. In ack
   * mode the message is acknowledged once this and the listeners of the events below returned, and the
   * promises they returned settled.
   */
  message: (message: NotificationMessage, raw: string) => ListenerResult;
  commandStatus: (event: CommandStatusEvent) => ListenerResult;
  /** Command status 1 (a subset of commandStatus). */
  pending: (event: CommandStatusEvent) => ListenerResult;
  dataDownload: (event: DataDownloadEvent) => ListenerResult;
  /** Joined (also after each automatic re-join), with the delivery mode the gateway granted on this socket. */
  joined: (info: { channelId: string; deliveryMode: DeliveryMode }) => void;
  /** The gateway left the channel because the token expired or was revoked. */
  expired: (info: { channelId?: string }) => void;
  /**
   * The gateway closed the socket with 4008: this client read too slowly and was dropped. The client
   * reconnects and re-joins; messages still queued for the profile are delivered again (duplicates dropped).
   */
  slowConsumer: (info: { code: number; reason: string }) => void;
  /**
   * A background failure: a re-join, a token refresh or a poll that failed, an acknowledgement the gateway
   * refused. The client carries on.
   */
  error: (error: SwitchboardError) => void;
}

interface CommandWaiter {
  settle: Settle<CommandResult>;
  onPending?: ((event: CommandStatusEvent) => ListenerResult) | undefined;
}

interface DownloadWaiter {
  settle: Settle<string>;
  onStatus?: ((text: string) => ListenerResult) | undefined;
}

type Terminal = { ok: true; body: string } | { ok: false; reason: string };

/**
 * Client of the notification channel (spec: notify-protocol.md). It joins one profile channel, re-joins
 * after every reconnection, drops redelivered messages, and turns command status and data download
 * messages into promises (`command`, `download`) and events. Every awaited call settles: each has a
 * timeout counted from the call and takes an AbortSignal, and all reject once the client closes or gives up.
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
  private readonly replies = new Map<string, Settle<NotifyReply>>();
  /** Correlation ids of the join requests awaiting their reply: a 200 to one starts a delivery sequence. */
  private readonly joinRequests = new Set<string>();
  private nextCorrelation = 0;
  /** The delivery mode of the channel joined on the current socket; undefined when none is joined. */
  private mode: DeliveryMode | undefined;
  private readonly acks: AckTracker;
  /** The token the client should be joined with (survives reconnections); undefined after leave(). */
  private token: string | undefined;
  /**
   * Bumped by every join() and leave() (and when a join is given up): work started for an older intent
   * (a queued re-join, a token refresh) must not act on a token the application has since replaced or cleared.
   */
  private intent = 0;
  /** Joined with `token` on socket generation `generation`. */
  private joinedState: { token: string; generation: number; channelId: string } | undefined;
  private joinQueue: Promise<unknown> = Promise.resolve();
  /** The token the gateway reported expired: never re-sent by a queued re-join (the refresh joins instead). */
  private expiredToken: string | undefined;
  /**
   * Aborted (with a 409 NotifyRequestError) when the intent changes: a join or re-join waiting for a socket
   * during an outage settles at once instead of holding the queue, and is never sent.
   */
  private intentController = new AbortController();
  /** Aborted by close(): cancels the join retry sleeps. */
  private readonly lifetime = new AbortController();

  constructor(private readonly options: NotificationClientOptions) {
    super();
    this.seen = new RecentKeys(options.dedupeWindow ?? 1000, options.dedupeMaxChars ?? 256 * 1024);
    this.acks = new AckTracker({
      send: (seq) => {
        try {
          this.socket.send(JSON.stringify({ action: 'ack', seq }));
        } catch {
          // the socket is gone: its unacknowledged messages go back to the broker and come again
        }
      },
      defer: (fn) => this.socket.clock.schedule(0, fn, { weak: true }),
    });
    this.socket = new ManagedSocket(
      {
        url: () => options.url,
        onOpen: () => this.reopened(),
        onText: (text) => this.received(text),
        onDrop: (error) => this.dropped(error),
        onClosed: (info) => this.closedForGood(info),
        onSlowConsumer: (info) => this.emit('slowConsumer', info),
        // An unjoined socket is closed by the gateway (1008 after the join deadline): holding or reopening
        // one would only repeat that every deadline.
        wantsConnection: () => this.token !== undefined,
      },
      options,
    );
  }

  /** The status stream (connecting / connected / reconnecting / disconnected / closed); iterable with `for await`. */
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

  /**
   * How the gateway delivers to the channel joined on the current socket (undefined when none is, and
   * while reconnecting):
   * `ack` when it granted acknowledged delivery, `plain` when it did not (an older gateway, the Privicore
   * proxy) or the client did not ask (`ack: false`).
   */
  get deliveryMode(): DeliveryMode | undefined {
    return this.channelId !== undefined ? this.mode : undefined;
  }

  /** Frames received in ack mode and not acknowledged yet (processing, or waiting for the next ack). */
  get unacknowledged(): number {
    return this.acks.unacknowledged;
  }

  /** Commands, downloads and join/leave replies still awaited (0 when nothing is pending: nothing leaks). */
  get pendingCount(): number {
    return this.commands.size + this.downloads.size + this.replies.size;
  }

  /**
   * Connects; resolves once the socket is open. `join` connects by itself; a socket opened without a join is
   * closed by the gateway after its join deadline and then not reopened. Default timeout: `requestTimeoutMs`.
   */
  connect(options: CallOptions = {}): Promise<void> {
    return this.socket.connect(options, this.options.requestTimeoutMs ?? 10_000);
  }

  /**
   * Closes the socket and stops reconnecting, keeping the client usable: `join()` or `connect()` connects
   * again (and a join still wanted is re-sent then). Awaited commands keep waiting, within their timeouts.
   */
  disconnect(): void {
    this.acks.flush();
    this.socket.disconnect();
  }

  /**
   * Joins the profile channel of `token` and keeps it joined across reconnections. Resolves with the
   * channel (profile) id once joined, reconnecting first if the socket drops meanwhile; rejects with
   * NotifyRequestError (401 bad token, 409 joined elsewhere, 503 ...), TimeoutError (default `joinTimeoutMs`),
   * AbortError, NotConnectedError (`whenOffline: 'fail'` while reconnecting; default `queue`). When it
   * rejects, the client does not join with this token later by itself.
   */
  join(token: string, options: CallOptions & OfflineOptions = {}): Promise<{ channelId: string }> {
    // Failing fast leaves everything as it was: the channel joined (or wanted) before stays.
    if (options.whenOffline === 'fail' && this.socket.isReconnecting) return Promise.reject(new NotConnectedError('join not sent: the client is reconnecting'));
    // The same token again (a double click) joins the same intent rather than cancelling the join in progress.
    const intent = token === this.token && token !== this.expiredToken ? this.intent : this.newIntent();
    this.token = token;
    this.expiredToken = undefined;
    this.socket.start();
    return settling<{ channelId: string }>(
      this.socket.clock,
      'join',
      { timeoutMs: options.timeoutMs ?? this.options.joinTimeoutMs ?? 30_000, signal: [options.signal, this.intentController.signal] },
      ({ resolve, reject, onSettled }) => {
        const abort = new AbortController();
        let joined = false;
        onSettled(() => {
          abort.abort();
          // Given up (timeout, abort, refusal): the application was told "not joined", so no automatic
          // re-join may later make it true behind its back.
          // (A join refused while another channel stays joined has restored that channel's token: kept.)
          if (!joined && this.intent === intent) {
            if (this.token === token) {
              this.token = undefined;
              this.newIntent();
            }
            this.idleIfNothingToJoin();
          }
        });
        this.serialised(() => this.joinUntilDone(intent, abort.signal)).then((result) => {
          joined = true;
          resolve(result);
        }, reject);
      },
    );
  }

  /** Leaves the channel (if joined) and stops re-joining; the socket is then closed. Default timeout: `requestTimeoutMs`. */
  leave(options: CallOptions = {}): Promise<void> {
    this.token = undefined;
    this.expiredToken = undefined;
    this.newIntent();
    return settling<void>(this.socket.clock, 'leave', { timeoutMs: options.timeoutMs ?? this.options.requestTimeoutMs ?? 10_000, signal: options.signal }, ({ resolve, reject, onSettled }) => {
      const abort = new AbortController();
      onSettled(() => abort.abort());
      this.serialised(async () => {
        const joined = this.joinedState;
        this.joinedState = undefined;
        if (!joined || joined.generation !== this.socket.generation || !this.socket.isOpen) return;
        // What was processed is acknowledged first: the gateway hands back to the broker what was not.
        this.acks.flush();
        const reply = await this.request({ action: 'leaveChannel', data: { channelId: joined.channelId } }, abort.signal);
        this.endSequence();
        if (reply.status !== 200 && reply.status !== 409) throw new NotifyRequestError(reply.data.message, reply.status);
      })
        .finally(() => this.idleIfNothingToJoin())
        .then(resolve, reject);
    });
  }

  /**
   * Resolves with the body of command `commandId`'s success (status 2); rejects with CommandFailedError on
   * status 3, TimeoutError after `timeoutMs` (default `commandTimeoutMs`, 120 s; `Infinity` waits for ever),
   * AbortError, ClientClosedError on close, or the error the client gave up with. `onPending` sees status 1 updates.
   */
  command(commandId: string, options: CallOptions & { onPending?: (event: CommandStatusEvent) => void } = {}): Promise<CommandResult> {
    const done = this.finished.get(commandId);
    if (done) return done.ok ? Promise.resolve({ commandId, body: done.body }) : Promise.reject(new CommandFailedError(commandId, done.reason));
    if (this.socket.isStopped) return Promise.reject(new ClientClosedError('client is closed'));
    return settling<CommandResult>(
      this.socket.clock,
      `command ${commandId}`,
      { timeoutMs: options.timeoutMs ?? this.options.commandTimeoutMs ?? 120_000, signal: options.signal },
      (settle) => this.addWaiter(this.commands, commandId, { settle, onPending: options.onPending }),
    );
  }

  /**
   * Resolves with the download link of request `requestId` (output_type 1). `onStatus` sees textual
   * status messages (output_type 0). Settles like `command()`.
   */
  download(requestId: string, options: CallOptions & { onStatus?: (text: string) => void } = {}): Promise<string> {
    const link = this.links.get(requestId);
    if (link !== undefined) return Promise.resolve(link);
    if (this.socket.isStopped) return Promise.reject(new ClientClosedError('client is closed'));
    return settling<string>(
      this.socket.clock,
      `download ${requestId}`,
      { timeoutMs: options.timeoutMs ?? this.options.commandTimeoutMs ?? 120_000, signal: options.signal },
      (settle) => this.addWaiter(this.downloads, requestId, { settle, onStatus: options.onStatus }),
    );
  }

  /** Closes for good: every awaited call rejects with ClientClosedError. */
  close(): Promise<CloseInfo> {
    this.acks.flush();
    return this.socket.close();
  }

  /** Resolves when the client has closed for good (by `close()` or by giving up); never rejects. */
  closed(): Promise<CloseInfo> {
    return this.socket.closed();
  }

  // --- joining -------------------------------------------------------------------------------------------

  /** The application changed its mind (join, leave, a join given up): work for the old intent stops. */
  private newIntent(): number {
    this.intentController.abort(new NotifyRequestError('left (or joined again) before the join completed', 409));
    this.intentController = new AbortController();
    return ++this.intent;
  }

  private serialised<T>(task: () => Promise<T>): Promise<T> {
    const run = this.joinQueue.then(task, task);
    this.joinQueue = run.catch(() => {});
    return run;
  }

  /** Joins, and joins again on the next socket when this one drops with the request in flight (join is idempotent). */
  private async joinUntilDone(intent: number, signal: AbortSignal): Promise<{ channelId: string }> {
    for (;;) {
      try {
        return await this.ensureJoined(intent, signal);
      } catch (err) {
        const lost = err instanceof ConnectionLostError || (err instanceof NotConnectedError && this.socket.isActive);
        if (!lost || this.intent !== intent || signal.aborted || this.socket.isStopped) throw err;
      }
    }
  }

  private whenOpen(...signals: Array<AbortSignal | undefined>): Promise<void> {
    this.socket.start();
    return settling<void>(this.socket.clock, 'connect', { timeoutMs: Infinity, signal: signals }, ({ resolve, reject, onSettled }) =>
      onSettled(this.socket.onceOpen(resolve, reject)),
    );
  }

  private async ensureJoined(intent: number, signal?: AbortSignal, allowRefresh = true): Promise<{ channelId: string }> {
    const stale = () => this.intent !== intent;
    const left = () => new NotifyRequestError('left (or joined again) before the join completed', 409);
    if (stale() || this.token === undefined) throw left();
    await this.whenOpen(signal, this.intentController.signal);
    // The token is read after the wait: a leave() or join() during an outage must not see the old one sent.
    const token = this.token;
    if (stale() || token === undefined) throw left();
    const generation = this.socket.generation;
    const joined = this.joinedState;
    if (joined && joined.token === token && joined.generation === generation) return { channelId: joined.channelId };
    if (token === this.expiredToken) throw new NotifyRequestError('Authorization token expired.', 401);
    const joinData = { authorizationToken: token, ...(this.options.ack !== false && { ack: true }) };
    let reply = await this.request({ action: 'joinChannel', data: joinData }, signal);
    // 503 and 429 mean "try again": do so a few times before giving the error to the caller.
    for (let attempt = 1; (reply.status === 503 || reply.status === 429) && attempt <= (this.options.joinRetries ?? 5); attempt++) {
      await sleep(this.socket.clock, backoffDelayMs(attempt, this.options.reconnect || {}, this.options.random), signal, this.lifetime.signal);
      if (stale()) throw left();
      if (this.socket.generation !== generation) throw new ConnectionLostError('connection lost while retrying the join');
      reply = await this.request({ action: 'joinChannel', data: joinData }, signal);
    }
    if (reply.status === 401 && allowRefresh && this.options.refreshToken && !stale()) {
      const fresh = await this.options.refreshToken({});
      if (stale()) throw left();
      this.token = fresh;
      return this.ensureJoined(intent, signal, false);
    }
    if (reply.status !== 200 || !reply.data.channelId) {
      // A refused token is not retried on reconnect; a channel still joined (409 for another profile) stays.
      if (!stale() && reply.status >= 400 && reply.status < 500 && reply.status !== 429) {
        this.token = joined?.generation === generation ? joined.token : undefined;
      }
      throw new NotifyRequestError(reply.data.message, reply.status);
    }
    this.joinedState = { token, generation, channelId: reply.data.channelId };
    this.socket.markStable();
    this.emit('joined', { channelId: reply.data.channelId, deliveryMode: this.mode ?? 'plain' });
    return { channelId: reply.data.channelId };
  }

  /** One join/leave frame and its reply, within `requestTimeoutMs`. */
  private request(frame: { action: string; data: Record<string, unknown> }, signal?: AbortSignal): Promise<NotifyReply> {
    const correlationId = `sb-${++this.nextCorrelation}`;
    return settling<NotifyReply>(this.socket.clock, frame.action, { timeoutMs: this.options.requestTimeoutMs ?? 10_000, signal }, (settle) => {
      this.replies.set(correlationId, settle);
      if (frame.action === 'joinChannel') this.joinRequests.add(correlationId);
      settle.onSettled(() => {
        this.replies.delete(correlationId);
        this.joinRequests.delete(correlationId);
      });
      this.socket.send(JSON.stringify({ action: frame.action, correlationId, data: frame.data }));
    });
  }

  /** Nothing to join: close the socket rather than hold an unjoined one the gateway would close (1008). */
  private idleIfNothingToJoin(): void {
    if (this.token === undefined && !this.socket.isStopped) this.socket.disconnect(1000, 'nothing to join');
  }

  private reopened(): void {
    const token = this.token;
    const intent = this.intent;
    if (token === undefined || token === this.expiredToken) return;
    // A join() called meanwhile does its own joining; a leave() meanwhile cancels this one.
    this.serialised(async () => (this.intent === intent ? this.ensureJoined(intent) : undefined))
      .then(() => this.reconcile())
      .catch((err: unknown) => {
        // A re-join queued before an expiry report is skipped; the refresh joins with the fresh token.
        if (this.token !== undefined && this.token === this.expiredToken) return;
        if (err instanceof ConnectionLostError || err instanceof ClientClosedError || err instanceof NotConnectedError) return; // the next open tries again
        this.emit('error', asSdkError(err, 're-join failed'));
        this.idleIfNothingToJoin();
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
    const intent = this.intent;
    this.emit('expired', channelId !== undefined ? { channelId } : {});
    const refresh = this.options.refreshToken;
    if (this.token === undefined) return;
    if (!refresh) {
      this.token = undefined;
      this.newIntent();
      this.idleIfNothingToJoin();
      return;
    }
    try {
      const fresh = await refresh(channelId !== undefined ? { channelId } : {});
      // A leave() (or another join()) while the refresh ran is the application's latest word.
      if (this.intent !== intent) return;
      this.token = fresh;
      await this.serialised(() => this.ensureJoined(intent, undefined, false));
    } catch (err) {
      this.emit('error', asSdkError(err, 'token refresh failed'));
      if (this.intent === intent) {
        this.token = undefined;
        this.newIntent();
        this.idleIfNothingToJoin();
      }
    }
  }

  private dropped(error: SwitchboardError): void {
    // The socket's sequence ends with it: what it did not acknowledge goes back to the broker and comes again.
    this.endSequence();
    const reason = error instanceof ClientClosedError ? error : new ConnectionLostError(error.message);
    for (const settle of [...this.replies.values()]) settle.reject(reason);
  }

  private closedForGood(info: CloseInfo): void {
    this.lifetime.abort(new ClientClosedError('client closed'));
    const error = info.error ?? new ClientClosedError('client closed');
    for (const set of [...this.commands.values()]) for (const w of [...set]) w.settle.reject(error);
    for (const set of [...this.downloads.values()]) for (const w of [...set]) w.settle.reject(error);
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
    const message = record.message;
    if (this.mode === 'ack' && typeof record.seq === 'number' && message !== null && typeof message === 'object' && !Array.isArray(message)) {
      // Acknowledged once processed: a duplicate or a frame that is no notification at once, otherwise when
      // the listeners are done. Every frame is acknowledged, so no message can stall the stream.
      const done = this.acks.received(record.seq);
      const work = this.notification(message as Record<string, unknown>, embeddedMessageText(text) ?? JSON.stringify(message));
      if (work) void work.then(done);
      else done();
      return;
    }
    void this.notification(record, text);
  }

  /** Emits the events of one notification (unless a redelivery); resolves when the listeners' promises settled. */
  private notification(record: Record<string, unknown>, text: string): Promise<void> | undefined {
    const data = record.data as Record<string, unknown> | undefined;
    if (!data || typeof data.type !== 'string' || typeof data.id !== 'string') return undefined;
    const identity = messageIdentity(data as { type: string; id: string } & Record<string, unknown>, text);
    if (identity !== undefined && this.seen.seen(identity)) return undefined;
    const work: Array<Promise<void>> = [];
    this.emitCollecting('message', work, record as NotificationMessage, text);
    if (data.type === commandStatusType) this.commandStatus(record as unknown as CommandStatusMessage, work);
    else if (data.type === dataDownloadType) this.dataDownload(record as unknown as DataDownloadMessage, work);
    if (work.length === 0) return undefined;
    return work.length === 1 ? work[0] : Promise.all(work).then(() => {});
  }

  private reply(reply: NotifyReply): void {
    const correlationId = reply.correlationId;
    const pending = correlationId !== undefined ? this.replies.get(correlationId) : undefined;
    if (pending) {
      // Decided here, synchronously: the gateway may send the first frames right behind the reply.
      if (reply.status === 200 && this.joinRequests.has(correlationId!)) {
        this.startSequence(this.options.ack !== false && (reply.data as { ack?: unknown } | undefined)?.ack === true ? 'ack' : 'plain');
      }
      pending.resolve(reply);
      return;
    }
    if (reply.status === 401 && reply.data?.message === expiredMessage) {
      this.endSequence();
      void this.expired(reply.data.channelId);
      return;
    }
    // The only request sent without a correlation id is an acknowledgement: a 400 refuses one (a seq never sent).
    if (reply.status === 400 && this.mode === 'ack') this.emit('error', new NotifyRequestError(reply.data?.message ?? 'acknowledgement refused', reply.status));
  }

  /**
   * A join was granted: `seq` starts again at 1. A join on a socket already joined in that mode (a fresh
   * token for the same channel) continues the gateway's sequence, so nothing in flight is forgotten.
   */
  private startSequence(mode: DeliveryMode): void {
    if (this.mode === mode) return;
    this.acks.reset();
    this.mode = mode;
  }

  private endSequence(): void {
    this.acks.reset();
    this.mode = undefined;
  }

  private commandStatus(message: CommandStatusMessage, work: Array<Promise<void>>): void {
    const { id, command_status: status, body } = message.data;
    if (status !== 1 && status !== 2 && status !== 3) return;
    const event: CommandStatusEvent = { commandId: id, status, body: typeof body === 'string' ? body : String(body ?? ''), message };
    this.emitCollecting('commandStatus', work, event);
    if (status === 1) {
      this.emitCollecting('pending', work, event);
      for (const waiter of [...(this.commands.get(id) ?? [])]) {
        const running = waiter.onPending && callListener(waiter.onPending, event);
        if (running) work.push(running);
      }
      return;
    }
    this.finishCommand(id, status, event.body);
  }

  private finishCommand(commandId: string, status: 2 | 3, body: string): void {
    this.finished.set(commandId, status === 2 ? { ok: true, body } : { ok: false, reason: body });
    for (const waiter of [...(this.commands.get(commandId) ?? [])]) {
      if (status === 2) waiter.settle.resolve({ commandId, body });
      else waiter.settle.reject(new CommandFailedError(commandId, body));
    }
  }

  private dataDownload(message: DataDownloadMessage, work: Array<Promise<void>>): void {
    const { id, output_type: outputType, body, data_context: dataContext } = message.data;
    if (outputType !== 0 && outputType !== 1) return;
    const text = typeof body === 'string' ? body : String(body ?? '');
    this.emitCollecting('dataDownload', work, { requestId: id, outputType, body: text, ...(dataContext !== undefined && { dataContext }), message });
    const waiters = [...(this.downloads.get(id) ?? [])];
    if (outputType === 0) {
      for (const waiter of waiters) {
        const running = waiter.onStatus && callListener(waiter.onStatus, text);
        if (running) work.push(running);
      }
      return;
    }
    this.links.set(id, text);
    for (const waiter of waiters) waiter.settle.resolve(text);
  }

  /** Registers a waiter until its call settles (result, timeout, abort or close): then it is gone. */
  private addWaiter<W extends { settle: Settle<any> }>(map: Map<string, Set<W>>, id: string, waiter: W): void {
    let set = map.get(id);
    if (!set) map.set(id, (set = new Set()));
    set.add(waiter);
    waiter.settle.onSettled(() => {
      const current = map.get(id);
      if (!current) return;
      current.delete(waiter);
      if (current.size === 0) map.delete(id);
    });
  }
}

function asSdkError(err: unknown, context: string): SwitchboardError {
  if (err instanceof SwitchboardError) return err;
  return new SwitchboardError(`${context}: ${err instanceof Error ? err.message : String(err)}`);
}
