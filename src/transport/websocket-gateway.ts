import { randomBytes } from 'node:crypto';
import type { IncomingMessage, Server } from 'node:http';
import type { Duplex } from 'node:stream';
import { WebSocket, WebSocketServer } from 'ws';
import type { Connection, Session } from '../core/connection.js';
import type { Logger } from '../core/logger.js';
import type { GatewayMetrics } from '../observability/metrics.js';

export type Channel = 'notify' | 'control';

/** Refusal of an upgrade: an HTTP status with a JSON body, never a WebSocket close. */
export interface UpgradeRefusal {
  status: number;
  body: Record<string, unknown>;
}

export interface UpgradeRoute<Context = unknown> {
  channel: Channel;
  /** Largest frame accepted; a larger one closes the socket with 1009. */
  maxPayloadBytes: number;
  /** Runs before the upgrade (control channel authentication); resolve a refusal to answer with HTTP. */
  authorize(req: IncomingMessage, url: URL): Promise<{ context: Context } | { refusal: UpgradeRefusal }>;
  open(connection: Connection, context: Context, req: IncomingMessage): Session;
}

export interface WebSocketGatewayOptions {
  heartbeatIntervalMs: number;
  /** A socket with more unsent bytes than this is closed with `slowConsumerCloseCode`. */
  maxBufferedBytes: number;
  log: Logger;
  metrics: GatewayMetrics;
}

/** Close code for a socket whose unsent buffer passed the high-water mark (documented in README). */
export const slowConsumerCloseCode = 4008;
export const shuttingDownCloseCode = 1001;
/** How long a slow consumer has to read its backlog and the close frame before its socket is destroyed. */
const slowConsumerGraceMs = 1_000;
const textFrame = { binary: false } as const;

const statusText: Record<number, string> = {
  400: 'Bad Request',
  401: 'Unauthorized',
  403: 'Forbidden',
  404: 'Not Found',
  426: 'Upgrade Required',
  500: 'Internal Server Error',
  503: 'Service Unavailable',
};

interface Tracked {
  ws: WebSocket;
  alive: boolean;
}

/**
 * The WebSocket side of the one HTTP port: routes upgrades by path, authorizes before upgrading, pings idle
 * sockets and closes dead ones, closes slow consumers, and adapts `ws` to the Connection port.
 */
export class WebSocketGateway {
  private readonly routes = new Map<string, { route: UpgradeRoute<any>; wss: WebSocketServer }>();
  private readonly sockets = new Set<Tracked>();
  private readonly heartbeat: NodeJS.Timeout;
  private accepting = true;
  private nextId = 0;
  private readonly idPrefix = randomBytes(3).toString('hex');

  constructor(
    server: Server,
    private readonly options: WebSocketGatewayOptions,
  ) {
    server.on('upgrade', (req: IncomingMessage, socket: Duplex, head: Buffer) => {
      this.handleUpgrade(req, socket, head).catch((err: unknown) => {
        options.log.error({ err }, 'upgrade failed');
        refuse(socket, { status: 500, body: { error: 'internal error' } });
      });
    });
    this.heartbeat = setInterval(() => this.beat(), options.heartbeatIntervalMs);
    this.heartbeat.unref();
    options.metrics.probeBufferedBytes(() => {
      let bytes = 0;
      for (const { ws } of this.sockets) bytes += ws.bufferedAmount;
      return bytes;
    });
  }

  route<Context>(path: string, route: UpgradeRoute<Context>): void {
    const wss = new WebSocketServer({ noServer: true, maxPayload: route.maxPayloadBytes, perMessageDeflate: false, clientTracking: false });
    this.routes.set(path, { route, wss });
  }

  /** Open sockets per channel. */
  counts(): Record<Channel, number> {
    const counts: Record<Channel, number> = { notify: 0, control: 0 };
    for (const { ws } of this.sockets) counts[(ws as WebSocket & { channel: Channel }).channel] += 1;
    return counts;
  }

  /** Stops accepting upgrades and closes every socket with 1001; resolves when all are closed. */
  async close(graceMs = 3_000): Promise<void> {
    this.accepting = false;
    clearInterval(this.heartbeat);
    const closing = [...this.sockets].map(
      ({ ws }) =>
        new Promise<void>((resolve) => {
          if (ws.readyState === WebSocket.CLOSED) return resolve();
          ws.once('close', () => resolve());
          ws.close(shuttingDownCloseCode, 'server shutting down');
          setTimeout(() => ws.terminate(), graceMs).unref();
        }),
    );
    await Promise.all(closing);
    for (const { wss } of this.routes.values()) wss.close();
  }

  private async handleUpgrade(req: IncomingMessage, socket: Duplex, head: Buffer): Promise<void> {
    socket.on('error', () => socket.destroy());
    if (!this.accepting) return refuse(socket, { status: 503, body: { error: 'shutting down' } });
    const url = new URL(req.url ?? '/', 'http://gateway.invalid');
    const entry = this.routes.get(url.pathname);
    if (!entry) {
      this.options.log.info({ path: url.pathname, remote: req.socket.remoteAddress }, 'upgrade refused: unknown path');
      return refuse(socket, { status: 404, body: { error: 'no WebSocket endpoint at this path' } });
    }
    const decision = await entry.route.authorize(req, url);
    if ('refusal' in decision) return refuse(socket, decision.refusal);
    if (socket.destroyed) return;
    entry.wss.handleUpgrade(req, socket, head, (ws) => this.attach(ws, entry.route, decision.context, req));
  }

  private attach(ws: WebSocket, route: UpgradeRoute<unknown>, context: unknown, req: IncomingMessage): void {
    const tracked: Tracked = { ws, alive: true };
    (ws as WebSocket & { channel: Channel }).channel = route.channel;
    this.sockets.add(tracked);
    const { log, metrics, maxBufferedBytes } = this.options;
    const id = `${this.idPrefix}-${(this.nextId++).toString(36)}`;
    const remoteAddress = req.socket.remoteAddress ?? 'unknown';
    metrics.socketsOpen.inc({ channel: route.channel });
    log.info({ conn: id, channel: route.channel, remote: remoteAddress }, 'connected');

    // The peer does not read: stop writing, tell it why (queued behind its unread bytes), and cut it off if
    // it does not drain in time. Frames still queued fail, so their messages go back to the broker.
    const closeSlowConsumer = () => {
      metrics.backpressureCloses.inc();
      log.warn({ conn: id, bufferedBytes: ws.bufferedAmount, maxBufferedBytes }, 'slow consumer: closing');
      ws.close(slowConsumerCloseCode, 'slow consumer');
      setTimeout(() => ws.terminate(), slowConsumerGraceMs).unref();
    };
    const connection: Connection = {
      id,
      remoteAddress,
      get bufferedAmount() {
        return ws.bufferedAmount;
      },
      get isOpen() {
        return ws.readyState === WebSocket.OPEN;
      },
      send(data, onWritten) {
        if (ws.readyState !== WebSocket.OPEN) return false;
        ws.send(data, textFrame, onWritten);
        if (ws.bufferedAmount > maxBufferedBytes) closeSlowConsumer();
        return true;
      },
      close(code, reason) {
        ws.close(code, reason);
      },
    };

    const session = route.open(connection, context, req);
    ws.on('pong', () => {
      tracked.alive = true;
    });
    ws.on('message', (data: Buffer | ArrayBuffer | Buffer[], isBinary: boolean) => {
      tracked.alive = true;
      try {
        if (isBinary) session.onBinary();
        else session.onText(Array.isArray(data) ? Buffer.concat(data).toString('utf8') : Buffer.from(data as Buffer).toString('utf8'));
      } catch (err) {
        log.error({ conn: id, err }, 'session failed on a frame');
      }
    });
    ws.on('error', (err) => log.info({ conn: id, reason: err.message }, 'socket error'));
    ws.on('close', (code: number) => {
      this.sockets.delete(tracked);
      metrics.socketsOpen.dec({ channel: route.channel });
      log.info({ conn: id, channel: route.channel, code }, 'disconnected');
      try {
        session.onClose();
      } catch (err) {
        log.error({ conn: id, err }, 'session failed on close');
      }
    });
  }

  /** Dead-peer detection: a socket that did not answer the previous ping (nor sent anything) is closed. */
  private beat(): void {
    for (const tracked of this.sockets) {
      if (!tracked.alive) {
        this.options.log.info('dead peer: terminating');
        tracked.ws.terminate();
        continue;
      }
      tracked.alive = false;
      if (tracked.ws.readyState === WebSocket.OPEN) tracked.ws.ping();
    }
  }
}

function refuse(socket: Duplex, refusal: UpgradeRefusal): void {
  if (socket.destroyed) return;
  const body = JSON.stringify(refusal.body);
  socket.end(
    `HTTP/1.1 ${refusal.status} ${statusText[refusal.status] ?? 'Error'}\r\n` +
      'Connection: close\r\nContent-Type: application/json\r\n' +
      `Content-Length: ${Buffer.byteLength(body)}\r\n\r\n${body}`,
  );
}
