import assert from 'node:assert/strict';
import { spawn } from 'node:child_process';
import { resolve } from 'node:path';
import { after, describe, it } from 'node:test';
import { uniqueId } from '../helpers/gateway.js';
import { type GatewayProcess, startGatewayProcess } from '../helpers/gateway-process.js';
import { parsePrometheus } from '../helpers/prometheus.js';
import { amqpUrl, testRetention } from '../helpers/rabbitmq.js';
import { deleteKeysWithPrefix, redisUrl } from '../helpers/redis.js';
import { join, TestClient } from '../helpers/ws-client.js';

/**
 * `workers: 3` on the real RabbitMQ and Redis (issue 13, must show 1): one port, three worker processes
 * under a primary, each its own fleet node. Which worker took a socket is read from the 101 answer's
 * `X-Switchboard-Node` header; sockets are opened until every worker holds some (the primary hands
 * connections round-robin, so three in a row usually do; the loop is bounded).
 */
describe('several workers behind one port', () => {
  const run = uniqueId('wk');
  const publishKey = `publish-key-${run}`;
  const shared = `shared-${run}`;
  const solo = (i: number) => `solo-${i}-${run}`;
  const tokens: Record<string, string> = { [`tok-${shared}`]: shared };
  for (let i = 0; i < 30; i++) tokens[`tok-${solo(i)}`] = solo(i);
  const clients: TestClient[] = [];
  let gw: GatewayProcess | undefined;

  after(async () => {
    await Promise.all(clients.map((c) => c.close()));
    await gw?.stop();
    await deleteKeysWithPrefix(`${run}:`);
  });

  const nodeOf = (client: TestClient) => String(client.upgradeHeaders['x-switchboard-node']);
  const joinAs = async (profile: string) => {
    const client = await TestClient.connect(`${gw!.wsUrl}/`);
    clients.push(client);
    const reply = await client.request(join(`tok-${profile}`));
    assert.equal(reply.status, 200, JSON.stringify(reply));
    return client;
  };
  /** Joins `profileOf(i)` for i = 0, 1, ... until every worker holds at least one of these sockets. */
  const joinOnEveryWorker = async (nodes: string[], profileOf: (i: number) => string) => {
    const joined: TestClient[] = [];
    for (let i = 0; i < 30 && !nodes.every((n) => joined.some((c) => nodeOf(c) === n)); i++) joined.push(await joinAs(profileOf(i)));
    assert.deepEqual([...new Set(joined.map(nodeOf))].sort(), nodes, 'sockets landed on every worker');
    return joined;
  };
  const publish = async (profile: string, id: string) => {
    const send = () =>
      fetch(`${gw!.url}/api/notify/v1/profiles/${profile}/messages`, {
        method: 'POST',
        headers: { 'X-API-Key': publishKey, 'Content-Type': 'application/json' },
        body: JSON.stringify({ data: { type: 'X-DPT-CAB-ID', id, command_status: 2, body: `body of ${id}` } }),
      });
    // fetch keeps connections alive, and one of them may have been accepted by the worker the test killed:
    // that request fails without an answer, and a publisher sends it again, as it would behind any load
    // balancer (at least once: the delivery checks below allow a duplicate, never a gap).
    const res = await send().catch((err: unknown) => {
      if (err instanceof TypeError) return send();
      throw err;
    });
    assert.equal(res.status, 202, await res.text());
  };
  const idOf = (frame: string) => (JSON.parse(frame) as { data?: { id?: string } }).data?.id;

  it('delivers a message published once to sockets joined on every worker; a worker killed with -9 is restarted and its clients lose nothing', async () => {
    gw = await startGatewayProcess(
      {
        workers: 3,
        tokens: { kind: 'static', tokens },
        apiKeys: [{ id: 'publisher', key: publishKey, publish: true }],
        notify: { retention: testRetention },
        control: { redisKeyPrefix: `${run}:` },
      },
      { AMQP_URL: amqpUrl, REDIS_URL: redisUrl },
    );
    await gw.waitForLog((l) => l.msg === 'all workers listening', 90_000);
    const nodes = [1, 2, 3].map((n) => `${gw!.nodeId}-w${n}`);

    // One profile, joined on all three workers: one publish reaches each socket once.
    const sharedClients = await joinOnEveryWorker(nodes, () => shared);
    await publish(shared, 'once');
    for (const client of sharedClients) assert.equal(idOf(await client.nextMatching((f) => idOf(f) !== undefined)), 'once');

    // One profile per socket, spread over the workers; then worker 2 is killed with SIGKILL.
    const soloClients = await joinOnEveryWorker(nodes, solo);
    const profiles = soloClients.map((_, i) => solo(i));
    const victimNode = nodes[1]!;
    const victim = await gw.waitForLog((l) => l.msg === 'worker started' && l.workerNode === victimNode);
    const onVictim = soloClients.flatMap((c, i) => (nodeOf(c) === victimNode ? [i] : []));
    assert.ok(onVictim.length > 0);
    process.kill(Number(victim.pid), 'SIGKILL');
    await Promise.all(onVictim.map((i) => soloClients[i]!.closed));

    // Published while the victim's clients are gone: their messages wait in the profiles' mailboxes.
    for (const profile of profiles) await publish(profile, `during-${profile}`);

    // The primary starts worker 2 again (same node id); its clients reconnect (wherever the port hands
    // them) and join again.
    const restarted = await gw.waitForLog((l) => l.msg === 'worker started' && l.workerNode === victimNode && l.pid !== victim.pid, 30_000);
    assert.ok(gw.logs.some((l) => l.msg === 'worker exited; restarting' && l.worker === 2 && l.signal === 'SIGKILL'));
    const reconnected = new Map<number, TestClient>();
    for (const i of onVictim) reconnected.set(i, await joinAs(profiles[i]!));
    for (const profile of profiles) await publish(profile, `after-${profile}`);

    for (const [i, profile] of profiles.entries()) {
      const client = reconnected.get(i) ?? soloClients[i]!;
      const seen = new Set<string>();
      // At least once: duplicates are allowed, gaps are not. Bounded by the two expected ids' arrival.
      while (!seen.has(`during-${profile}`) || !seen.has(`after-${profile}`)) {
        const id = idOf(await client.nextMatching((f) => idOf(f) !== undefined, 20_000));
        assert.ok(id === `during-${profile}` || id === `after-${profile}`, `unexpected ${id} on ${profile}`);
        seen.add(id);
      }
    }

    // The restarted worker serves again once it listens: a socket lands on it and gets a message.
    await gw.waitForLog((l) => l.msg === 'worker listening' && l.pid === restarted.pid, 30_000);
    const again = await joinOnEveryWorker(nodes, () => shared);
    const onRestarted = again.find((c) => nodeOf(c) === victimNode)!;
    await publish(shared, 'after-restart');
    assert.equal(idOf(await onRestarted.nextMatching((f) => idOf(f) !== undefined)), 'after-restart');
    assert.notEqual(restarted.pid, victim.pid);
  });

  it('answers /health for the worker that took the connection and /metrics for every worker and the primary', async () => {
    assert.ok(gw, 'the first test started the workers');
    const health = (await (await fetch(`${gw.url}/health`)).json()) as { status: string; node: string; worker: { index: number; of: number } };
    assert.equal(health.status, 'ok');
    assert.equal(health.worker.of, 3);
    assert.equal(health.node, `${gw.nodeId}-w${health.worker.index}`);

    const res = await fetch(`${gw.url}/metrics`);
    assert.equal(res.status, 200);
    const samples = parsePrometheus(await res.text());
    for (const worker of ['1', '2', '3']) {
      assert.ok([...samples.keys()].some((k) => k.startsWith('switchboard_notify_joins_total{') && k.includes(`worker="${worker}"`)), `joins of worker ${worker}`);
    }
    const joins = [...samples.entries()].filter(([k]) => k.startsWith('switchboard_notify_joins_total{')).reduce((sum, [, v]) => sum + v, 0);
    assert.ok(joins >= clients.length - 3, `joins summed over the workers (${joins}) count the sockets of the first test`);
    assert.equal(samples.get('switchboard_worker_restarts_total{worker="2"}'), 1);
    assert.equal(samples.get('switchboard_workers_live{worker="primary"}'), 3);

    const own = parsePrometheus(await (await fetch(`${gw.url}/metrics?scope=worker`)).text());
    const labels = new Set([...own.keys()].filter((k) => k.startsWith('switchboard_notify_joins_total')).map((k) => /worker="([^"]+)"/.exec(k)?.[1]));
    assert.equal(labels.size, 1, 'scope=worker: one worker only');
  });

  it('drains every worker on SIGTERM and exits 0', async () => {
    assert.ok(gw, 'the first test started the workers');
    const client = await joinAs(shared);
    const code = gw.stop();
    assert.equal(await client.closed, 1001);
    assert.equal(await code, 0);
    assert.ok(gw.logs.some((l) => l.msg === 'all workers stopped'));
  });
});

describe('several workers need RabbitMQ and Redis', () => {
  /** Runs the real entry point with WORKERS and the given backends; resolves with its exit code and stderr. */
  const startWith = (env: Record<string, string>) => {
    const child = spawn(process.execPath, [resolve('dist/src/main.js')], {
      env: { ...process.env, PORT: '0', HOST: '127.0.0.1', LOG_LEVEL: 'silent', AMQP_URL: '', REDIS_URL: '', ...env },
      stdio: ['ignore', 'ignore', 'pipe'],
    });
    let stderr = '';
    child.stderr.on('data', (d: Buffer) => (stderr += d.toString()));
    return new Promise<{ code: number | null; stderr: string }>((done) => child.on('exit', (code) => done({ code, stderr })));
  };

  it('refuses the memory broker or memory state with one line and exit code 2', async () => {
    const memoryBoth = await startWith({ WORKERS: '3' });
    assert.equal(memoryBoth.code, 2);
    assert.equal(
      memoryBoth.stderr,
      'switchboard: workers 3 needs RabbitMQ (AMQP_URL) and Redis (REDIS_URL): the in-memory broker and state are per process; set them or run one worker\n',
    );
    const memoryState = await startWith({ WORKERS: '2', AMQP_URL: amqpUrl });
    assert.equal(memoryState.code, 2);
    assert.match(memoryState.stderr, /^switchboard: workers 2 needs Redis \(REDIS_URL\): [^\n]*\n$/);
    const bad = await startWith({ WORKERS: 'many' });
    assert.equal(bad.code, 2);
    assert.match(bad.stderr, /workers \(from WORKERS\): /);
  });
});
