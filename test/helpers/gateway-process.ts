import { type ChildProcess, spawn } from 'node:child_process';
import { mkdtempSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join, resolve } from 'node:path';
import { createInterface } from 'node:readline';
import { moduleId } from '../../src/core/ids.js';
import { ownerOf } from '../../src/fleet/rendezvous.js';

const mainScript = resolve('dist/src/main.js');

/** Children still running when the test process exits (a test that failed before stop()) are killed. */
const running = new Set<ChildProcess>();
process.on('exit', () => {
  for (const child of running) child.kill('SIGKILL');
});

export interface GatewayProcess {
  port: number;
  url: string;
  wsUrl: string;
  nodeId: string;
  /** Every JSON log line the process wrote so far, parsed. */
  logs: Array<Record<string, any>>;
  /** Resolves with the first log line (already written or to come) that matches. */
  waitForLog(match: (line: Record<string, any>) => boolean, timeoutMs?: number): Promise<Record<string, any>>;
  /** SIGTERM, then resolves with the exit code. */
  stop(): Promise<number | null>;
  readonly child: ChildProcess;
}

/**
 * Runs `node dist/src/main.js` as a separate process with a config file written from `config` (merged
 * over port 0 on loopback) and extra environment. Resolves once it logged "listening".
 */
export async function startGatewayProcess(config: Record<string, unknown>, env: Record<string, string> = {}): Promise<GatewayProcess> {
  const dir = mkdtempSync(join(tmpdir(), 'switchboard-'));
  const file = join(dir, 'config.json');
  const nodeId = String(config.nodeId ?? `proc-${process.pid}-${Math.random().toString(36).slice(2, 8)}`);
  writeFileSync(file, JSON.stringify({ port: 0, host: '127.0.0.1', logLevel: 'info', amqpStartTimeoutMs: 60_000, nodeId, ...config }));
  const child = spawn(process.execPath, [mainScript], {
    env: { ...process.env, PORT: '', AMQP_URL: '', REDIS_URL: '', LOG_FORMAT: 'json', ...env, SWITCHBOARD_CONFIG: file },
    stdio: ['ignore', 'pipe', 'pipe'],
  });
  running.add(child);
  child.once('exit', () => running.delete(child));
  const logs: Array<Record<string, any>> = [];
  const waiters: Array<{ match: (l: Record<string, any>) => boolean; resolve: (l: Record<string, any>) => void }> = [];
  let stderr = '';
  child.stderr!.on('data', (d: Buffer) => (stderr += d.toString()));
  createInterface({ input: child.stdout! }).on('line', (text) => {
    let line: Record<string, any>;
    try {
      line = JSON.parse(text);
    } catch {
      return;
    }
    logs.push(line);
    for (const w of [...waiters]) {
      if (w.match(line)) {
        waiters.splice(waiters.indexOf(w), 1);
        w.resolve(line);
      }
    }
  });
  const exited = new Promise<number | null>((resolve) => child.on('exit', (code) => resolve(code)));

  const waitForLog = (match: (line: Record<string, any>) => boolean, timeoutMs = 15_000) => {
    const found = logs.find(match);
    if (found) return Promise.resolve(found);
    return new Promise<Record<string, any>>((resolve, reject) => {
      const timer = setTimeout(() => reject(new Error(`no matching log line in ${timeoutMs} ms; stderr: ${stderr}`)), timeoutMs);
      waiters.push({ match, resolve: (l) => (clearTimeout(timer), resolve(l)) });
      void exited.then((code) => {
        clearTimeout(timer);
        reject(new Error(`gateway exited with ${code} before the log line; stderr: ${stderr}`));
      });
    });
  };
  const listening = await waitForLog((l) => l.msg === 'listening', 90_000);
  const port = Number(listening.port);
  return {
    port,
    url: `http://127.0.0.1:${port}`,
    wsUrl: `ws://127.0.0.1:${port}`,
    nodeId,
    logs,
    waitForLog,
    child,
    async stop() {
      if (child.exitCode === null) child.kill('SIGTERM');
      return exited;
    },
  };
}

/**
 * Resolves once gateway processes sharing one Redis are all live in the fleet and every module runs on the
 * node that rendezvous hashing ranks first among them, as the admin stats report it. That state is final
 * (nothing ranks higher, so nothing moves again), so no quiet period is needed.
 */
export async function processFleetSettled(gateways: ReadonlyArray<Pick<GatewayProcess, 'url'>>, apiKey = 'demo-admin-key', timeoutMs = 20_000): Promise<void> {
  const deadline = Date.now() + timeoutMs;
  for (;;) {
    const res = await fetch(`${gateways[0]!.url}/api/admin/v1/stats`, { headers: { 'X-API-Key': apiKey } });
    const stats = (await res.json()) as { fleet: { nodes: string[]; modules: Record<string, { node: string; running: boolean } | null> } | null };
    const nodes = stats.fleet?.nodes ?? [];
    const placed = Object.entries(stats.fleet?.modules ?? {});
    const settled =
      nodes.length === gateways.length &&
      placed.length > 0 &&
      placed.every(([module, p]) => p?.running === true && p.node === ownerOf(moduleId(module), nodes));
    if (settled) return;
    if (Date.now() > deadline) throw new Error(`fleet not settled in ${timeoutMs} ms: ${JSON.stringify(stats.fleet)}`);
    await new Promise((resolve) => setTimeout(resolve, 50));
  }
}
