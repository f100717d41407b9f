import { EventEmitter } from 'node:events';
import { createServer, type Server, type Socket, connect } from 'node:net';

/**
 * A loopback TCP proxy in front of a local service, which a test can cut (every connection dropped and new
 * ones refused) and restore on the same port: a network partition between one client and the service.
 */
export interface TcpProxy {
  readonly port: number;
  /**
   * From now on, bytes from the service to the clients are read and thrown away (a client in a tunnel: the
   * service's writes succeed, nothing arrives). Client-to-service bytes still pass.
   */
  blackholeDownstream(): void;
  /** Resolves once at least `bytes` bytes were thrown away since blackholeDownstream. */
  swallowed(bytes: number): Promise<void>;
  cut(): Promise<void>;
  restore(): Promise<void>;
  close(): Promise<void>;
}

export async function startTcpProxy(targetPort: number, targetHost = '127.0.0.1'): Promise<TcpProxy> {
  const open = new Set<Socket>();
  const pairs: Array<{ client: Socket; upstream: Socket }> = [];
  const progress = new EventEmitter();
  let swallowedBytes = 0;
  const swallow = (chunk: Buffer) => {
    swallowedBytes += chunk.length;
    progress.emit('swallowed');
  };
  const server: Server = createServer((client) => {
    const upstream = connect(targetPort, targetHost);
    pairs.push({ client, upstream });
    for (const socket of [client, upstream]) {
      open.add(socket);
      socket.on('close', () => open.delete(socket));
      socket.on('error', () => socket.destroy());
    }
    client.on('close', () => upstream.destroy());
    upstream.on('close', () => client.destroy());
    client.pipe(upstream);
    upstream.pipe(client);
  });
  const listen = (port: number) => new Promise<void>((resolve, reject) => server.once('error', reject).listen(port, '127.0.0.1', () => resolve()));
  await listen(0);
  const { port } = server.address() as { port: number };
  const stopListening = () => new Promise<void>((resolve) => (server.listening ? server.close(() => resolve()) : resolve()));
  const dropAll = () => {
    for (const socket of open) socket.destroy();
  };
  return {
    port,
    blackholeDownstream() {
      for (const { client, upstream } of pairs) {
        upstream.unpipe(client);
        upstream.on('data', swallow);
        upstream.resume();
      }
    },
    swallowed: (bytes) =>
      new Promise<void>((resolve) => {
        const check = () => {
          if (swallowedBytes < bytes) return;
          progress.off('swallowed', check);
          resolve();
        };
        progress.on('swallowed', check);
        check();
      }),
    async cut() {
      const closed = stopListening();
      dropAll();
      await closed;
    },
    async restore() {
      if (!server.listening) await listen(port);
    },
    async close() {
      const closed = stopListening();
      dropAll();
      await closed;
    },
  };
}
