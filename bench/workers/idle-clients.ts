import { RawJoinClient } from '../lib/raw-join-client.js';

/**
 * Opens `count` notification sockets from one loopback source address and joins each (tokens round robin),
 * at most `concurrency` joins in flight; reports when all are joined, then holds them idle (answering the
 * gateway's pings) until told to close. One process holds < 20,000 sockets (the open-files cap). The
 * sockets are RawJoinClient's, not `ws`'s, so that the client is not what paces the joins.
 */
export interface IdleStart {
  cmd: 'start';
  url: string;
  tokens: string[];
  count: number;
  localAddress: string;
  concurrency: number;
}

let client: RawJoinClient | undefined;

async function open(start: IdleStart): Promise<void> {
  const joiner = RawJoinClient.forUrl(start.url, start.localAddress);
  client = joiner;
  let next = 0;
  const startedAt = performance.now();
  const cpuAtStart = process.cpuUsage();
  const openOne = async () => {
    while (next < start.count) {
      const token = start.tokens[next++ % start.tokens.length]!;
      await joiner.join(token);
    }
  };
  await Promise.all(Array.from({ length: start.concurrency }, openOne));
  const cpu = process.cpuUsage(cpuAtStart);
  process.send!({ type: 'ready', joined: start.count, elapsedMs: performance.now() - startedAt, cpuMicros: cpu.user + cpu.system });
}

process.on('message', (raw: unknown) => {
  const msg = raw as { cmd: string };
  if (msg.cmd === 'start') {
    open(msg as IdleStart).catch((err: unknown) => process.send!({ type: 'error', message: (err as Error).message }));
  } else if (msg.cmd === 'close') {
    client?.closeAll();
    setTimeout(() => process.exit(0), 100);
  }
});
process.on('disconnect', () => process.exit(0));
