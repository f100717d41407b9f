import { WebSocket } from 'ws';
import { LatencyRecorder, wallMs } from '../lib/percentiles.js';

/**
 * Control-channel load (spec control-protocol.md). `bind`: `count` sockets bound to Ticker_1.tick; every
 * notify's value is the driver's wall-clock ms, so latency = receive time - value. `exec`: `count` sockets,
 * each a closed loop of `exec Ticker_1.echo(n)` round trips; latency = the round trip.
 */
export interface ControlStart {
  cmd: 'start';
  mode: 'bind' | 'exec';
  url: string;
  count: number;
  sys: string;
}

const latency = new LatencyRecorder();
const sockets: WebSocket[] = [];
let looping = false;

function openSocket(url: string): Promise<WebSocket> {
  return new Promise((resolve, reject) => {
    const ws = new WebSocket(url, { perMessageDeflate: false });
    sockets.push(ws);
    ws.once('open', () => resolve(ws));
    ws.once('error', reject);
  });
}

async function startBind(start: ControlStart): Promise<void> {
  for (let i = 0; i < start.count; i += 50) {
    await Promise.all(
      Array.from({ length: Math.min(50, start.count - i) }, async () => {
        const ws = await openSocket(start.url);
        await new Promise<void>((resolve, reject) => {
          ws.on('message', (data) => {
            const text = String(data);
            if (text.includes('"type":"notify"')) {
              if (latency.arrive()) {
                // The value is the driver's wall-clock ms; reading it without JSON.parse keeps this process light.
                const at = text.indexOf('"value":');
                latency.sample(wallMs() - Number.parseFloat(text.slice(at + 8)));
              }
            } else if (text.includes('"type":"success"')) resolve();
            else if (text.includes('"type":"error"')) reject(new Error(`bind refused: ${text}`));
          });
          ws.send(JSON.stringify({ id: 1, cmd: 'bind', sys: start.sys, mod: 'Ticker', index: 1, name: 'tick' }));
        });
      }),
    );
  }
}

async function startExec(start: ControlStart): Promise<void> {
  for (let i = 0; i < start.count; i++) await openSocket(start.url);
}

function runExecLoops(sys: string): void {
  looping = true;
  for (const ws of sockets) {
    let id = 0;
    let sentAt = 0;
    const sendOne = () => {
      if (!looping) return;
      id += 1;
      sentAt = wallMs();
      ws.send(`{"id":${id},"cmd":"exec","sys":"${sys}","mod":"Ticker","index":1,"name":"echo","args":[${id}]}`);
    };
    ws.on('message', (data) => {
      const text = String(data);
      if (!text.includes('"type":"success"') && !text.includes('"type":"error"')) return;
      if (latency.arrive()) latency.sample(wallMs() - sentAt);
      sendOne();
    });
    sendOne();
  }
}

process.on('message', (raw: unknown) => {
  const msg = raw as { cmd: string };
  void (async () => {
    try {
      if (msg.cmd === 'start') {
        const start = msg as ControlStart;
        if (start.mode === 'bind') await startBind(start);
        else await startExec(start);
        process.send!({ type: 'ready' });
        if (start.mode === 'exec') runExecLoops(start.sys);
      } else if (msg.cmd === 'measure') {
        latency.begin();
      } else if (msg.cmd === 'stop') {
        looping = false;
        process.send!({ type: 'result', ...latency.end() });
      } else if (msg.cmd === 'close') {
        for (const ws of sockets) ws.terminate();
        setTimeout(() => process.exit(0), 100);
      }
    } catch (err) {
      process.send!({ type: 'error', message: (err as Error).message });
    }
  })();
});
process.on('disconnect', () => process.exit(0));
