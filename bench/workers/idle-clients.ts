import { WebSocket } from 'ws';

/**
 * Opens `count` notification sockets from one loopback source address and joins each (tokens round robin),
 * at most `concurrency` joins in flight; reports when all are joined, then holds them idle (answering the
 * gateway's pings) until told to close. One process holds < 20,000 sockets (the open-files cap).
 */
export interface IdleStart {
  cmd: 'start';
  url: string;
  tokens: string[];
  count: number;
  localAddress: string;
  concurrency: number;
}

const sockets: WebSocket[] = [];

async function open(start: IdleStart): Promise<void> {
  let next = 0;
  const startedAt = performance.now();
  const openOne = async () => {
    while (next < start.count) {
      const token = start.tokens[next++ % start.tokens.length]!;
      const ws = new WebSocket(start.url, { perMessageDeflate: false, localAddress: start.localAddress });
      sockets.push(ws);
      await new Promise<void>((resolve, reject) => {
        ws.once('open', () => ws.send(JSON.stringify({ action: 'joinChannel', data: { authorizationToken: token } })));
        ws.once('error', reject);
        ws.once('message', (data) => {
          const reply = JSON.parse(String(data)) as { status: number };
          if (reply.status === 200) resolve();
          else reject(new Error(`join refused: ${String(data)}`));
        });
      });
    }
  };
  await Promise.all(Array.from({ length: start.concurrency }, openOne));
  process.send!({ type: 'ready', joined: start.count, elapsedMs: performance.now() - startedAt });
}

process.on('message', (raw: unknown) => {
  const msg = raw as { cmd: string };
  if (msg.cmd === 'start') {
    open(msg as IdleStart).catch((err: unknown) => process.send!({ type: 'error', message: (err as Error).message }));
  } else if (msg.cmd === 'close') {
    for (const ws of sockets) ws.terminate();
    setTimeout(() => process.exit(0), 100);
  }
});
process.on('disconnect', () => process.exit(0));
