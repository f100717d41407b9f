import { type Clock, systemClock } from '../core/clock.js';
import { randomBytes } from 'node:crypto';
import type { IncomingMessage, Server } from 'node:http';
import type { Duplex } from 'node:stream';
import { WebSocket, WebSocketServer } from 'ws';
import type { Connection, Session } from '../core/connection.js';
import type { Logger } from '../core/logger.js';
import type { GatewayMetrics } from '../observability/metrics.js';
import { type Channel, type ConnectionContext, SocketConnection } from './socket-connection.js';

export type { Channel } from './socket-connection.js';
export { slowConsumerCloseCode } from './socket-connection.js';

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
  /** Whose credential a socket uses, for the per-credential connection cap (control channel). */
  credentialOf?(context: Context): string;
}

export interface WebSocketGatewayOptions {
  heartbeatIntervalMs: number;
  /** Drives the heartbeat, so a test can find a dead peer without waiting for real time. */
  clock?: Clock;
  /** A socket with more unsent bytes than this is closed with `slowConsumerCloseCode`. */
  maxBufferedBytes: number;
  log: Logger;
  metrics: GatewayMetrics;
  /** Open sockets one client address may hold (0: no cap; behind a load balancer every client shares its address). */
  maxConnectionsPerAddress?: number;
  /** Open sockets one credential may hold, on routes that name one (0: no cap). */
  maxConnectionsPerCredential?: number;
  /**
   * Sent as `X-Switchboard-Node` on every upgrade's 101 answer: behind a load balancer or with several
   * workers on one port, which node took the socket is otherwise invisible to the client and to whoever
   * reads its logs.
   */
  nodeId?: string;
}

export const shuttingDownCloseCode = 1001;

const statusText: Record<number, string> = {
  400: 'Bad Request',
  401: 'Unauthorized',
  403: 'Forbidden',
  404: 'Not Found',
  426: 'Upgrade Required',
  500: 'Internal Server Error',
  503: 'Service Unavailable',
};

/**
 * The WebSocket side of the one HTTP port: routes upgrades by path, authorizes before upgrading, pings idle
 * sockets and closes dead ones, closes slow consumers, and adapts `ws` to the Connection port.
 */
export class WebSocketGateway {
  private readonly routes = new Map<string, { route: UpgradeRoute<any>; wss: WebSocketServer }>();
  private readonly sockets = new Set<SocketConnection>();
  private readonly connectionContext: ConnectionContext;
  private cancelHeartbeat: () => void = () => {};
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
    this.connectionContext = {
      log: options.log,
      metrics: options.metrics,
      maxBufferedBytes: options.maxBufferedBytes,
      forget: (connection) => {
        this.sockets.delete(connection);
        this.release(connection);
      },
    };
    const clock = options.clock ?? systemClock;
    const beatEvery = () => {
      this.cancelHeartbeat = clock.schedule(options.heartbeatIntervalMs, () => {
        this.beat();
        if (this.accepting) beatEvery();
      });
    };
    beatEvery();
    options.metrics.probeBufferedBytes(() => {
      let bytes = 0;
      for (const { ws } of this.sockets) bytes += ws.bufferedAmount;
      return bytes;
    });
  }

  route<Context>(path: string, route: UpgradeRoute<Context>): void {
    const wss = new WebSocketServer({ noServer: true, maxPayload: route.maxPayloadBytes, perMessageDeflate: false, clientTracking: false });
    const node = this.options.nodeId;
    if (node !== undefined && /^[\x21-\x7e]+$/.test(node)) wss.on('headers', (headers) => headers.push(`X-Switchboard-Node: ${node}`));
    this.routes.set(path, { route, wss });
  }

  /** Open sockets per channel. */
  counts(): Record<Channel, number> {
    const counts: Record<Channel, number> = { notify: 0, control: 0 };
    for (const connection of this.sockets) counts[connection.channel] += 1;
    return counts;
  }

  /** Stops accepting upgrades and closes every socket with 1001; resolves when all are closed. */
  async close(graceMs = 3_000): Promise<void> {
    this.accepting = false;
    this.cancelHeartbeat();
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
    // A module-level listener: a closure here would keep `req` (and its headers) alive for the socket's life.
    socket.on('error', destroyEmitter);
    if (!this.accepting) return refuse(socket, { status: 503, body: { error: 'shutting down' } });
    const url = new URL(req.url ?? '/', 'http://gateway.invalid');
    const entry = this.routes.get(url.pathname);
    if (!entry) {
      this.options.log.info({ path: url.pathname, remote: req.socket.remoteAddress }, 'upgrade refused: unknown path');
      return refuse(socket, { status: 404, body: { error: 'no WebSocket endpoint at this path' } });
    }
    const address = req.socket.remoteAddress ?? 'unknown';
    const perAddress = this.options.maxConnectionsPerAddress ?? 0;
    if (perAddress > 0 && (this.byAddress.get(address) ?? 0) >= perAddress) {
      this.options.log.warn({ remote: address, cap: perAddress }, 'upgrade refused: too many connections from this address');
      return refuse(socket, { status: 429, body: { error: 'too many connections from this address' } });
    }
    const decision = await entry.route.authorize(req, url);
    if ('refusal' in decision) return refuse(socket, decision.refusal);
    const credential = entry.route.credentialOf?.(decision.context);
    const perCredential = this.options.maxConnectionsPerCredential ?? 0;
    if (credential !== undefined && perCredential > 0 && (this.byCredential.get(credential) ?? 0) >= perCredential) {
      this.options.log.warn({ credential, cap: perCredential }, 'upgrade refused: too many connections for this credential');
      return refuse(socket, { status: 429, body: { error: 'too many connections for this credential' } });
    }
    if (socket.destroyed) return;
    entry.wss.handleUpgrade(req, socket, head, (ws) => this.attach(ws, entry.route, decision.context, req, credential));
  }

  private readonly byAddress = new Map<string, number>();
  private readonly byCredential = new Map<string, number>();
  private readonly credentials = new WeakMap<SocketConnection, string>();

  private attach(ws: WebSocket, route: UpgradeRoute<unknown>, context: unknown, req: IncomingMessage, credential: string | undefined): void {
    const id = `${this.idPrefix}-${(this.nextId++).toString(36)}`;
    const connection = new SocketConnection(ws, req.socket, id, req.socket.remoteAddress ?? 'unknown', route.channel, this.connectionContext);
    this.sockets.add(connection);
    this.byAddress.set(connection.remoteAddress, (this.byAddress.get(connection.remoteAddress) ?? 0) + 1);
    if (credential !== undefined) {
      this.credentials.set(connection, credential);
      this.byCredential.set(credential, (this.byCredential.get(credential) ?? 0) + 1);
    }
    this.options.metrics.socketsOpen.inc({ channel: route.channel });
    this.options.log.info({ conn: id, channel: route.channel, remote: connection.remoteAddress }, 'connected');
    connection.serve(route.open(connection, context, req));
  }

  private release(connection: SocketConnection): void {
    const count = (map: Map<string, number>, key: string) => {
      const n = (map.get(key) ?? 1) - 1;
      if (n > 0) map.set(key, n);
      else map.delete(key);
    };
    count(this.byAddress, connection.remoteAddress);
    const credential = this.credentials.get(connection);
    if (credential !== undefined) count(this.byCredential, credential);
  }

  /** Dead-peer detection: a socket that did not answer the previous ping (nor sent anything) is closed. */
  private beat(): void {
    for (const connection of this.sockets) {
      if (!connection.alive) {
        this.options.log.info({ conn: connection.id }, 'dead peer: terminating');
        connection.ws.terminate();
        continue;
      }
      connection.alive = false;
      if (connection.ws.readyState === WebSocket.OPEN) connection.ws.ping();
    }
  }
}

function destroyEmitter(this: Duplex): void {
  this.destroy();
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
