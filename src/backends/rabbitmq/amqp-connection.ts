import * as amqp from 'amqplib';
import type { ChannelModel, RecoveringChannelModel } from 'amqplib';
import type { BackendState } from '../../core/backend-state.js';
import type { Logger } from '../../core/logger.js';
import type { GatewayMetrics } from '../../observability/metrics.js';
import { amqpSocketOptions, closeLinkChannels, errorText, openLink, setPrefetch, type Link } from './amqp-link.js';
import { coalesceFrameWrites } from './coalesced-writes.js';

/** What the broker does with each link the connection builds. */
export interface LinkHooks {
  /** Declares what the link needs before it serves (topology, a migration); a failure retries the connection. */
  prepare(link: Link): Promise<void>;
  /** The link is the live one: consume and attach on it. The state goes up after, if the link still lives. */
  serve(link: Link): Promise<void>;
  /** The live link dropped; the next one is served again from scratch. */
  dropped(): void;
}

export interface AmqpConnectionOptions {
  url: string;
  nodeId: string;
  prefetch: number;
  log: Logger;
  metrics?: GatewayMetrics;
  /** How long start() waits for the first connection before the gateway serves with the broker down. */
  startTimeoutMs?: number;
}

/**
 * One RabbitMQ connection with amqplib's recovery (reconnects with exponential backoff and jitter), the
 * backend state it implies, and the link (channel set) built on each new connection, rebuilt as a whole
 * when one of its channels is lost. Knows nothing of mailboxes or relays: LinkHooks does that.
 */
export class AmqpConnection {
  private backendState: BackendState = 'connecting';
  private readonly listeners = new Set<(state: BackendState) => void>();
  private connection: RecoveringChannelModel | undefined;
  private link: Link | undefined;
  private closing = false;
  /** Setups run one after the other: a relink waits for the setup it replaces. */
  private setupRun: Promise<void> = Promise.resolve();
  private connects = 0;

  constructor(
    private readonly options: AmqpConnectionOptions,
    private readonly hooks: LinkHooks,
  ) {}

  state(): BackendState {
    return this.backendState;
  }

  onStateChange(listener: (state: BackendState) => void): () => void {
    this.listeners.add(listener);
    return () => this.listeners.delete(listener);
  }

  /** The live link, if the broker is up. */
  liveLink(): Link | undefined {
    return this.link?.alive && this.backendState === 'up' ? this.link : undefined;
  }

  /** The current link, up or still being set up. */
  currentLink(): Link | undefined {
    return this.link;
  }

  get isClosing(): boolean {
    return this.closing;
  }

  async start(): Promise<void> {
    const { log } = this.options;
    const connection = await amqp.connect(this.options.url, {
      ...amqpSocketOptions(`switchboard ${this.options.nodeId}`),
      recovery: { initialDelay: 200, maxDelay: 10_000, factor: 2, jitter: 0.3, waitForConnect: false },
    });
    this.connection = connection;
    const firstUp = new Promise<void>((resolve) => {
      const onState = (state: BackendState) => {
        if (state === 'up') {
          resolve();
          this.listeners.delete(onState);
        }
      };
      this.listeners.add(onState);
    });
    connection.on('connect', (model: ChannelModel) => {
      // Reconnections are counted from state changes by app.ts (trackBackendState), like every backend's.
      this.connects += 1;
      log.info({ attempt: this.connects }, 'broker connected');
      this.setupRun = this.setupRun.then(() => this.setup(model));
    });
    connection.on('disconnect', (err: Error) => {
      this.dropLink();
      if (!this.closing) log.warn({ reason: err?.message }, 'broker connection lost; reconnecting');
    });
    connection.on('reconnect-scheduled', (info: { attempt: number; delay: number }) =>
      log.info({ attempt: info.attempt, delayMs: Math.round(info.delay) }, 'broker reconnect scheduled'),
    );
    connection.on('connect-failed', (err: Error) => {
      this.setState('down');
      log.warn({ reason: err.message }, 'broker connection failed');
    });
    connection.on('error', (err: Error) => log.warn({ reason: err.message }, 'broker connection error'));
    connection.on('blocked', (reason: string) => log.warn({ reason }, 'broker blocked publishing'));
    const timeoutMs = this.options.startTimeoutMs ?? 10_000;
    let timer: NodeJS.Timeout | undefined;
    const timedOut = new Promise<void>((resolve) => {
      timer = setTimeout(resolve, timeoutMs);
    });
    await Promise.race([firstUp, timedOut]);
    clearTimeout(timer);
    if (this.backendState !== 'up') log.error({ timeoutMs }, 'broker not reachable at start; serving with the broker down');
  }

  /** From now on a lost channel or connection is expected: no rebuild, no 'down' until close(). */
  beginClose(): void {
    this.closing = true;
  }

  async close(): Promise<void> {
    this.closing = true;
    await this.connection?.close().catch(() => {});
    this.setState('down');
  }

  /**
   * A channel died on a live connection: rebuild the whole link on the same connection. The old link's
   * other channels are closed first: left open, its mailbox consumers would stay the single active
   * consumers (their deliveries never settled, as the link is dead), its exclusive relay queue consumers
   * would refuse the new ones, and every relink would leak channels.
   */
  relink(link: Link): void {
    if (this.link !== link) return;
    this.dropLink();
    this.setupRun = this.setupRun.then(async () => {
      await closeLinkChannels(link, this.options.log);
      await this.setup(link.model);
    });
  }

  /** Builds the channels and topology on a fresh connection and serves on them. */
  private async setup(model: ChannelModel): Promise<void> {
    const { log, prefetch } = this.options;
    try {
      coalesceFrameWrites(model);
      const link = await openLink(model, log, (lost, channel) => {
        if (this.closing) return;
        log.error({ channel }, 'broker channel closed unexpectedly; rebuilding');
        this.relink(lost);
      });
      await this.hooks.prepare(link);
      await setPrefetch(link, prefetch);
      this.link = link;
      await this.hooks.serve(link);
      if (link.alive) this.setState('up');
    } catch (err) {
      log.error({ reason: errorText(err) }, 'broker setup failed; closing the connection to retry');
      this.dropLink();
      // Closing the underlying socket makes the recovery wrapper reconnect and run setup again.
      (model as unknown as { connection?: { stream?: { destroy(): void } } }).connection?.stream?.destroy();
    }
  }

  private dropLink(): void {
    if (this.link) this.link.alive = false;
    this.link = undefined;
    this.hooks.dropped();
    if (!this.closing) this.setState('down');
  }

  private setState(state: BackendState): void {
    if (this.backendState === state) return;
    this.backendState = state;
    this.options.metrics?.backendState.set({ backend: 'broker' }, state === 'up' ? 1 : 0);
    this.options.log.info({ state }, 'broker state');
    for (const listener of [...this.listeners]) listener(state);
  }
}
