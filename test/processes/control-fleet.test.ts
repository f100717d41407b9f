import assert from 'node:assert/strict';
import { once } from 'node:events';
import { WebSocket } from 'ws';
import { after, before, describe, it } from 'node:test';
import { moduleId } from '../../src/core/ids.js';
import { ownerOf } from '../../src/fleet/rendezvous.js';
import { PjlinkSimulator } from '../../src/simulators/pjlink-simulator.js';
import { demoApiKeys, demoControl, uniqueId } from '../helpers/gateway.js';
import { type GatewayProcess, startGatewayProcess } from '../helpers/gateway-process.js';
import { controlPath } from '../helpers/control-gateway.js';
import { scrape, value } from '../helpers/prometheus.js';
import { deleteKeysWithPrefix, redisUrl } from '../helpers/redis.js';
import { startTcpProxy, type TcpProxy } from '../helpers/tcp-proxy.js';
import { TestClient } from '../helpers/ws-client.js';

/**
 * Issue 9 "Must show" 1-4: three gateway processes on one Redis and a PJLink device (a simulator this test
 * runs): one connection to the device, commands from every node reach it, debug lines everywhere, and the
 * device never driven from two nodes at once through a kill -9, a rolling restart and a Redis cut.
 */
const projector = 'mod-projector-1';
const execTimeoutMs = 4_000;
const leaseTtlMs = 5_000; // the default
const admin = { 'X-API-Key': 'demo-admin-key' };

/** The device side: connections over time, and every command it received. */
class Device {
  readonly sim: PjlinkSimulator;
  open = 0;
  maxOpen = 0;
  /** Time with two or more connections open at once, summed, and its longest stretch. */
  overlapMs = 0;
  longestOverlapMs = 0;
  private overlapSince: number | undefined;
  private readonly waiters: Array<{ count: number; resolve: () => void }> = [];

  constructor() {
    this.sim = new PjlinkSimulator({ onConnections: (open) => this.count(open), onCommand: (c) => this.command(c) });
    this.sim.power = '1';
    // Every valid PJLink input code, so each exec in a run can name a code of its own.
    for (let a = 1; a <= 5; a++) for (let b = 1; b <= 9; b++) if (!this.sim.inputs.includes(`${a}${b}`)) this.sim.inputs.push(`${a}${b}`);
  }

  /** Resolves when exactly `count` connections are open (now or later). */
  until(count: number, timeoutMs: number): Promise<void> {
    if (this.open === count) return Promise.resolve();
    return new Promise((resolve, reject) => {
      const timer = setTimeout(() => reject(new Error(`device: ${this.open} connections, not ${count}, after ${timeoutMs} ms`)), timeoutMs);
      this.waiters.push({ count, resolve: () => (clearTimeout(timer), resolve()) });
    });
  }

  private readonly commandWaiters: Array<{ match: string; left: number; resolve: () => void }> = [];

  /** Resolves once `count` more `command`s arrived (polls, for example). */
  nextCommands(command: string, count: number): Promise<void> {
    return new Promise((resolve) => this.commandWaiters.push({ match: command, left: count, resolve }));
  }

  private command(command: string): void {
    for (const w of [...this.commandWaiters]) {
      if (w.match !== command || --w.left > 0) continue;
      this.commandWaiters.splice(this.commandWaiters.indexOf(w), 1);
      w.resolve();
    }
  }

  inputsSet(code: string): number {
    return this.sim.received.filter((line) => line === `INPT ${code}`).length;
  }

  private count(open: number): void {
    this.open = open;
    this.maxOpen = Math.max(this.maxOpen, open);
    const now = performance.now();
    if (open >= 2 && this.overlapSince === undefined) this.overlapSince = now;
    if (open < 2 && this.overlapSince !== undefined) {
      const stretch = now - this.overlapSince;
      this.overlapMs += stretch;
      this.longestOverlapMs = Math.max(this.longestOverlapMs, stretch);
      this.overlapSince = undefined;
    }
    for (const w of [...this.waiters]) {
      if (w.count === open) {
        this.waiters.splice(this.waiters.indexOf(w), 1);
        w.resolve();
      }
    }
  }
}

/** Input codes in turn, so a command that ran twice shows at the device (there are 45: they come round again). */
const codes = (() => {
  const all: string[] = [];
  for (let a = 1; a <= 5; a++) for (let b = 1; b <= 9; b++) all.push(`${a}${b}`);
  let next = 0;
  return () => all[next++ % all.length]!;
})();

describe('control fleet: three nodes on one Redis, one PJLink device', { timeout: 240_000 }, () => {
  const keyPrefix = `${uniqueId('fleet')}:`;
  const device = new Device();
  const nodes = new Map<string, GatewayProcess>();
  const clients: TestClient[] = [];
  const sockets: WebSocket[] = [];
  let config: Record<string, unknown>;

  const start = async (name: string, redis = redisUrl) => {
    const gw = await startGatewayProcess({ ...config, nodeId: `${keyPrefix}${name}` }, { REDIS_URL: redis });
    nodes.set(name, gw);
    return gw;
  };
  const connect = async (gw: GatewayProcess) => {
    const client = await TestClient.connect(`${gw.wsUrl}${controlPath}?api-key=demo-admin-key`);
    clients.push(client);
    return client;
  };
  /** A control socket for execs in flight at once: answers matched by id, not by order. */
  const execClient = async (gw: GatewayProcess) => {
    const ws = new WebSocket(`${gw.wsUrl}${controlPath}?api-key=demo-admin-key`);
    await once(ws, 'open');
    const waiting = new Map<number, (frame: Record<string, unknown>) => void>();
    ws.on('message', (data) => {
      const frame = JSON.parse(String(data)) as Record<string, unknown>;
      waiting.get(frame.id as number)?.(frame);
    });
    sockets.push(ws);
    return {
      exec(code: string): Promise<{ type: string; error_code?: number }> {
        const id = execId++;
        ws.send(JSON.stringify({ id, cmd: 'exec', sys: 'sys-lab', mod: 'Projector', index: 1, name: 'input', args: [code] }));
        return new Promise((resolve) => waiting.set(id, (frame) => resolve(frame as { type: string; error_code?: number })));
      },
    };
  };
  /** Where the projector runs, as a node's stats say, once it runs somewhere. */
  const owner = async (via: GatewayProcess, timeoutMs = 15_000): Promise<string> => {
    const deadline = Date.now() + timeoutMs;
    for (;;) {
      const stats = (await (await fetch(`${via.url}/api/admin/v1/stats`, { headers: admin })).json()) as {
        fleet: { modules: Record<string, { node: string; running: boolean } | null> };
      };
      const placed = stats.fleet.modules[projector];
      if (placed?.running) return [...nodes].find(([, gw]) => gw.nodeId === placed.node)?.[0] ?? placed.node;
      if (Date.now() > deadline) throw new Error(`${projector} runs nowhere after ${timeoutMs} ms`);
      await via.waitForLog((l) => l.msg === 'module placed on this node', 200).catch(() => {});
    }
  };
  /**
   * A hand-over closes the old connection before the new owner opens one, but the test process may see the
   * new connection first when both land in one turn of its event loop (0-few ms). Anything longer is two
   * nodes driving the device.
   */
  const assertNeverDrivenTwice = () =>
    assert.ok(device.longestOverlapMs < 100, `two connections open for ${device.longestOverlapMs.toFixed(1)} ms (max open ${device.maxOpen})`);
  let execId = 100;
  const exec = async (client: TestClient, code: string) => {
    const id = execId++;
    client.send({ id, cmd: 'exec', sys: 'sys-lab', mod: 'Projector', index: 1, name: 'input', args: [code] });
    return JSON.parse(await client.nextMatching((f) => f.startsWith(`{"id":${id},`), execTimeoutMs + 5_000)) as { type: string; error_code?: number; msg?: string };
  };

  before(async () => {
    const address = await device.sim.start();
    const demo = demoControl() as { modules: Array<Record<string, unknown>> };
    config = {
      logLevel: 'info',
      apiKeys: demoApiKeys,
      control: {
        ...demo,
        simulators: [],
        modules: demo.modules.map((m) =>
          m.id === projector ? { ...m, settings: { host: '127.0.0.1', port: address.port, pollMs: 500, reconnectInitialMs: 50 } } : m,
        ),
        execTimeoutMs,
        redisKeyPrefix: keyPrefix,
      },
    };
    await Promise.all(['a', 'b', 'c'].map((name) => start(name)));
  });

  after(async () => {
    await Promise.all(clients.map((c) => c.close()));
    for (const ws of sockets) ws.terminate();
    await Promise.all([...nodes.values()].map((gw) => gw.stop()));
    await device.sim.stop();
    await deleteKeysWithPrefix(keyPrefix);
  });

  it('runs the projector on one node: one device connection; an exec through each node reaches it; debug on C sees them all', async () => {
    await owner(nodes.get('a')!);
    await device.until(1, 15_000);
    const [onA, onB, onC, debugOnC] = await Promise.all(['a', 'b', 'c', 'c'].map((n) => connect(nodes.get(n)!)));
    debugOnC!.send({ id: 1, cmd: 'debug', sys: 'sys-lab', mod: projector });
    assert.equal(await debugOnC!.next(), '{"id":1,"type":"success"}');

    const sent: string[] = [];
    for (const client of [onA!, onB!, onC!]) {
      const code = codes();
      sent.push(code);
      assert.equal((await exec(client, code)).type, 'success');
      assert.equal(device.inputsSet(code), 1, `INPT ${code} reached the device once`);
    }
    for (const code of sent) {
      const line = JSON.parse(await debugOnC!.nextMatching((f) => f.includes(`input changed to ${code}`))) as Record<string, unknown>;
      assert.equal(line.type, 'debug');
      assert.equal(line.mod, projector);
    }
    // REST through a node that does not run it: the same command path, routed.
    const runsOn = await owner(nodes.get('a')!);
    const elsewhere = [...nodes].find(([n]) => n !== runsOn)![1];
    const code = codes();
    const rest = await fetch(`${elsewhere.url}/api/engine/v2/systems/sys-lab/Projector_1/input`, {
      method: 'POST',
      headers: { ...admin, 'Content-Type': 'application/json' },
      body: JSON.stringify([code]),
    });
    assert.equal(rest.status, 200);
    assert.equal(await rest.text(), JSON.stringify(code));
    assert.equal(device.inputsSet(code), 1);
    const functions = (await (await fetch(`${elsewhere.url}/api/engine/v2/systems/sys-lab/functions/Projector_1`, { headers: admin })).json()) as Record<string, unknown>;
    assert.deepEqual(Object.keys(functions).sort(), ['input', 'inputs', 'mute', 'power', 'refresh']);
    const routed = await scrape(elsewhere.url);
    assert.ok(value(routed, 'switchboard_fleet_routed_execs_total{outcome="success"}') >= 2, 'routed execs counted');
    assert.equal(value(routed, 'switchboard_fleet_nodes'), 3);
    assert.ok(value(await scrape(nodes.get(runsOn)!.url), 'switchboard_fleet_modules_running') >= 1);

    assert.equal(device.open, 1);
    assertNeverDrivenTwice();
  });

  it('kill -9 of the owner: one connection again from another node within 10 s; every exec through a survivor answers in time, none runs twice', async () => {
    const victim = await owner(nodes.get('a')!);
    const survivor = nodes.get(victim === 'a' ? 'b' : 'a')!;
    const client = await execClient(survivor);
    const killedAt = Date.now();
    nodes.get(victim)!.child.kill('SIGKILL');
    nodes.delete(victim);
    await device.until(0, 5_000);

    // Codes are reused across the file's cases (PJLink has 45 of them), so each exec counts from what the
    // device had seen of its code when it was sent.
    const answers: Array<Promise<{ code: string; before: number; type: string; errorCode?: number; ms: number }>> = [];
    let reconnectedAt: number | undefined;
    void device.until(1, 10_000).then(() => (reconnectedAt = Date.now()), () => {});
    // An exec every 200 ms through the failover, until a second after the device is driven again; bounded.
    for (let i = 0; i < 44 && !(reconnectedAt !== undefined && Date.now() - reconnectedAt > 1_000); i++) {
      const code = codes();
      const before = device.inputsSet(code);
      const sentAt = Date.now();
      answers.push(client.exec(code).then((r) => ({ code, before, type: r.type, ...(r.error_code !== undefined && { errorCode: r.error_code }), ms: Date.now() - sentAt })));
      await new Promise((resolve) => setTimeout(resolve, 200));
    }
    await device.until(1, Math.max(0, 10_000 - (Date.now() - killedAt)));
    const settled = await Promise.all(answers);
    for (const answer of settled) {
      assert.ok(answer.ms <= execTimeoutMs + 1_000, `exec ${answer.code} answered after ${answer.ms} ms`);
      assert.ok(answer.type === 'success' || answer.errorCode === 7, `exec ${answer.code}: ${JSON.stringify(answer)}`);
      const ran = device.inputsSet(answer.code) - answer.before;
      assert.ok(ran <= 1, `INPT ${answer.code} ran ${ran} times`);
      if (answer.type === 'success') assert.equal(ran, 1);
    }
    assert.ok(settled.some((a) => a.type === 'success'), 'execs succeed again after the failover');
    assertNeverDrivenTwice();
    await owner(survivor);
  });

  it('rolling restart under exec load: never two device connections for longer than the lease', async () => {
    // Back to three nodes first (the killed one replaced).
    for (const name of ['a', 'b', 'c']) if (!nodes.has(name)) await start(name);
    for (const name of ['a', 'b', 'c']) {
      const other = [...nodes].find(([n]) => n !== name)![1];
      const client = await connect(other);
      const load = (async () => {
        for (let i = 0; i < 10; i++) {
          const answer = await exec(client, codes());
          assert.ok(answer.type === 'success' || answer.error_code === 7, JSON.stringify(answer));
          await new Promise((resolve) => setTimeout(resolve, 200));
        }
      })();
      assert.equal(await nodes.get(name)!.stop(), 0, `node ${name} drained and exited 0`);
      nodes.delete(name);
      await start(name);
      await load;
    }
    await owner(nodes.get('a')!);
    await device.until(1, 10_000);
    assert.ok(device.longestOverlapMs < leaseTtlMs, `two connections for ${device.longestOverlapMs} ms`);
  });

  it('module lifecycle across nodes: stopped through one node, it stays stopped when its node dies; started through another, it runs there', async () => {
    await device.until(1, 10_000);
    const runsOn = await owner(nodes.get('a')!);
    const [via] = [...nodes].find(([n]) => n !== runsOn)!;
    const api = (gw: GatewayProcess, path: string, init: RequestInit = {}) => fetch(`${gw.url}/api/engine/v2${path}`, { ...init, headers: { ...admin, 'Content-Type': 'application/json' } });

    // A new poll interval applies without a reload: the device sees the polls come faster.
    const slow = performance.now();
    await device.nextCommands('POWR ?', 3);
    const slowMs = performance.now() - slow;
    const patched = await api(nodes.get(via)!, `/modules/${projector}`, { method: 'PATCH', body: JSON.stringify({ settings: { pollMs: 100 } }) });
    assert.equal(patched.status, 200);
    const fast = performance.now();
    await device.nextCommands('POWR ?', 3);
    const fastMs = performance.now() - fast;
    assert.ok(fastMs < slowMs / 2, `3 polls took ${slowMs.toFixed(0)} ms at 500 ms, ${fastMs.toFixed(0)} ms at 100 ms`);
    assert.equal(device.open, 1, 'the same connection: no reload');
    const refused = await api(nodes.get(via)!, `/modules/${projector}`, { method: 'PATCH', body: JSON.stringify({ settings: { pollMs: 5 } }) });
    assert.equal(refused.status, 400);
    assert.match(((await refused.json()) as { error: string }).error, /settings\.pollMs/);

    assert.equal((await api(nodes.get(via)!, `/modules/${projector}/stop`, { method: 'POST' })).status, 200);
    await device.until(0, 10_000);
    const victim = nodes.get(runsOn)!;
    const survivor = nodes.get(via)!;
    const logsBefore = survivor.logs.length;
    victim.child.kill('SIGKILL');
    nodes.delete(runsOn);
    // The survivors see the dead node leave (a line logged after the kill); the module stays stopped.
    await survivor.waitForLog(
      (l) => l.msg === 'fleet membership changed' && Array.isArray(l.nodes) && !l.nodes.includes(victim.nodeId) && survivor.logs.indexOf(l) >= logsBefore,
      15_000,
    );
    const shown = (await (await api(nodes.get(via)!, `/modules/${projector}`)).json()) as Record<string, unknown>;
    assert.equal(shown.running, false, JSON.stringify(shown));
    assert.equal(shown.stopped, true);
    assert.equal(device.open, 0);
    const client = await connect(nodes.get(via)!);
    const answer = await exec(client, codes());
    assert.equal(answer.error_code, 6);
    assert.match(answer.msg ?? '', /stopped by demo-admin/);

    assert.equal((await api(nodes.get(via)!, `/modules/${projector}/start`, { method: 'POST' })).status, 200);
    await device.until(1, 10_000);
    assert.notEqual(await owner(nodes.get(via)!), runsOn);
    const started = (await (await api(nodes.get(via)!, `/modules/${projector}`)).json()) as { settings: { pollMs: number } };
    assert.equal(started.settings.pollMs, 100, 'the operator’s settings hold on the new node');
    assertNeverDrivenTwice();
  });

  it('a node cut off from Redis stops its modules before another node takes them over', async () => {
    // Two fresh nodes: the cut one reaches Redis through a proxy the test cuts and ranks first for the projector.
    for (const [name, gw] of [...nodes]) {
      await gw.stop();
      nodes.delete(name);
    }
    await device.until(0, 10_000);
    const id = (name: string) => `${keyPrefix}${name}`;
    // Both names are chosen so that `cut` always ranks first: the top of a few candidates is cut, any other
    // candidate survives. (Searching for a survivor below a fixed `cut` fails whenever `cut` itself ranks low.)
    const candidates = Array.from({ length: 4 }, (_, i) => `candidate-${i}`);
    const cut = ownerOf(moduleId(projector), candidates.map(id))!.slice(keyPrefix.length);
    const other = candidates.find((name) => name !== cut)!;
    const proxy: TcpProxy = await startTcpProxy(6379);
    try {
      const cutNode = await start(cut, `redis://127.0.0.1:${proxy.port}`);
      const survivor = await start(other);
      assert.equal(await owner(survivor), cut);
      await device.until(1, 10_000);
      await proxy.cut();
      // The cut node stops the projector (its device connection closes) first; then the survivor takes it.
      await device.until(0, leaseTtlMs + 2_000);
      await device.until(1, leaseTtlMs + 10_000);
      assert.equal(await owner(survivor), other);
      assertNeverDrivenTwice();
      assert.ok(cutNode.logs.some((l) => l.msg === 'module stopped: lease lost' && l.module === projector), 'the cut node says why it stopped');
      assert.ok(value(await scrape(cutNode.url), 'switchboard_fleet_lease_losses_total') >= 1);
      assert.ok(value(await scrape(survivor.url), 'switchboard_fleet_placements_total') >= 1);
    } finally {
      await proxy.close();
    }
  });
});
