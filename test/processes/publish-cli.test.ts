import assert from 'node:assert/strict';
import { execFile } from 'node:child_process';
import { fileURLToPath } from 'node:url';
import { after, before, describe, it } from 'node:test';
import { connectPublisher } from '../../src/publish/connect-publisher.js';
import { startGateway, uniqueId, type RunningGateway } from '../helpers/gateway.js';
import { amqpUrl, testRetention } from '../helpers/rabbitmq.js';
import { startJoinedGateway } from '../helpers/joined-gateway.js';
import { join, TestClient } from '../helpers/ws-client.js';

const bin = fileURLToPath(new URL('../../../bin/switchboard.js', import.meta.url));

/** Runs `switchboard <args>` as a real child process with only the given environment (plus PATH). */
function cli(args: string[], env: Record<string, string> = {}, stdin?: string): Promise<{ code: number; stdout: string; stderr: string }> {
  return new Promise((resolve) => {
    const child = execFile(process.execPath, [bin, ...args], { env: { PATH: process.env.PATH ?? '', ...env }, timeout: 30_000 }, (err, stdout, stderr) => {
      const code = err ? (typeof err.code === 'number' ? err.code : 1) : 0;
      resolve({ code, stdout, stderr });
    });
    if (stdin !== undefined) child.stdin!.end(stdin);
    else child.stdin!.end();
  });
}

describe('switchboard CLI', () => {
  it('prints its help with --help (exit 0) and refuses bad usage with exit 2', async () => {
    const help = await cli(['publish', '--help']);
    assert.equal(help.code, 0);
    assert.match(help.stdout, /Usage: switchboard publish/);
    assert.match(help.stdout, /Exit codes/);

    const none = await cli([]);
    assert.equal(none.code, 2);
    assert.match(none.stderr, /Usage/);

    const cases: Array<[string[], RegExp]> = [
      [['frobnicate'], /unknown command/],
      [['publish', '--command-status', '2', '--id', 'x', '--body', 'b', '--gateway', 'http://127.0.0.1:1', '--api-key', 'k'], /--profile is required/],
      [['publish', '--profile', 'alice', '--gateway', 'http://127.0.0.1:1', '--api-key', 'k'], /exactly one of --command-status, --download, --json/],
      [['publish', '--profile', 'alice', '--command-status', '2', '--download', '--id', 'x'], /exactly one of/],
      [['publish', '--profile', 'alice', '--command-status', '7', '--id', 'x', '--body', 'b', '--gateway', 'http://127.0.0.1:1', '--api-key', 'k'], /must be 1 \(pending\)/],
      [['publish', '--profile', 'alice', '--command-status', '2', '--id', 'x', '--body', 'b'], /no target/],
      [['publish', '--profile', 'alice', '--download', '--id', 'x', '--gateway', 'http://127.0.0.1:1', '--api-key', 'k'], /exactly one of --link/],
      [['publish', '--profile', 'alice', '--json', '{"data":{"type":"X"}}', '--gateway', 'http://127.0.0.1:1', '--api-key', 'k'], /data\.id/],
      [['publish', '--profile', 'bad profile', '--json', '{"data":{"type":"X","id":"1"}}', '--gateway', 'http://127.0.0.1:1', '--api-key', 'k'], /profile id/],
      [['publish', '--profile', 'alice', '--bogus'], /Unknown option '--bogus'/],
    ];
    for (const [args, message] of cases) {
      const run = await cli(args);
      assert.equal(run.code, 2, `${args.join(' ')}: ${run.stderr}`);
      assert.match(run.stderr, message, args.join(' '));
      assert.doesNotMatch(run.stderr, /at .*\.js:\d+/, 'no stack trace');
    }
  });

  it('a missing API key exits 3 like a refused one, as --help says', async () => {
    const help = await cli(['publish', '--help']);
    assert.match(help.stdout, /3 refused \(API key missing/);
    const run = await cli(['publish', '--profile', 'alice', '--command-status', '2', '--id', 'x', '--body', 'b', '--gateway', 'http://127.0.0.1:1']);
    assert.equal(run.code, 3, run.stderr);
    assert.match(run.stderr, /needs an API key/);
  });

  describe('through a gateway (memory broker)', () => {
    let gw: RunningGateway;
    let client: TestClient;
    const profile = uniqueId('cli');

    before(async () => {
      ({ gw, client } = await startJoinedGateway(profile));
    });
    after(async () => {
      await client.close();
      await gw.close();
    });

    it('publishes a command status, a download link and raw JSON that the joined client receives', async () => {
      const target = ['--gateway', gw.url, '--api-key', 'demo-admin-key'];
      const status = await cli(['publish', '--profile', profile, '--command-status', '2', '--id', '23f7978a-5561-4718-84ca-c38d7db0843c', '--body', 'Command completed successfully', ...target]);
      assert.equal(status.code, 0, status.stderr);
      assert.match(status.stdout, /published command status 2/);
      assert.equal(await client.next(), '{"data":{"type":"X-DPT-CAB-ID","id":"23f7978a-5561-4718-84ca-c38d7db0843c","command_status":2,"body":"Command completed successfully"}}');

      const download = await cli(['publish', '--profile', profile, '--download', '--id', 'b24b', '--data-context', 'ctx', '--link', 'https://download.example/p?auth=t', ...target]);
      assert.equal(download.code, 0, download.stderr);
      assert.equal(await client.next(), '{"data":{"type":"X-DPT-CAB-REQUEST-ID","id":"b24b","data_context":"ctx","output_type":1,"body":"https://download.example/p?auth=t"}}');

      const raw = '{ "data": {"type":"CUSTOM","id":"r1","x":[1, 2]} }';
      const json = await cli(['publish', '--profile', profile, '--json', raw, '--gateway', gw.url], { SWITCHBOARD_API_KEY: 'demo-admin-key' });
      assert.equal(json.code, 0, json.stderr);
      assert.equal(await client.next(), raw);

      const piped = await cli(['publish', '--profile', profile, '--json', '-'], { SWITCHBOARD_GATEWAY: gw.url, SWITCHBOARD_API_KEY: 'demo-admin-key' }, '{"data":{"type":"CUSTOM","id":"r2"}}\n');
      assert.equal(piped.code, 0, piped.stderr);
      assert.equal(await client.next(), '{"data":{"type":"CUSTOM","id":"r2"}}');
    });

    it('exits 3 when the gateway refuses the key and 4 when no gateway answers, without echoing the key', async () => {
      const args = ['publish', '--profile', profile, '--command-status', '1', '--id', 'x', '--body', 'b'];
      const wrong = await cli([...args, '--gateway', gw.url, '--api-key', 'wrong-key-4711']);
      assert.equal(wrong.code, 3);
      assert.match(wrong.stderr, /HTTP 401/);
      assert.doesNotMatch(wrong.stderr + wrong.stdout, /wrong-key-4711/);
      const user = await cli([...args, '--gateway', gw.url, '--api-key', 'demo-user-key']);
      assert.equal(user.code, 3);
      assert.match(user.stderr, /HTTP 403/);
      const down = await cli([...args, '--gateway', 'http://127.0.0.1:1', '--api-key', 'demo-admin-key']);
      assert.equal(down.code, 4);
      assert.match(down.stderr, /cannot be reached/);
      client.send('ping');
      assert.equal(await client.next(), 'pong', 'nothing was delivered');
    });
  });

  describe('through RabbitMQ', () => {
    let gw: RunningGateway;
    let client: TestClient;
    const profile = uniqueId('cliq');
    const retentionEnv = {
      RETENTION_MAX_LENGTH: String(testRetention.maxLength),
      RETENTION_MESSAGE_TTL_MS: String(testRetention.messageTtlMs),
      RETENTION_QUEUE_EXPIRES_MS: String(testRetention.queueExpiresMs),
    };

    before(async () => {
      ({ gw, client } = await startJoinedGateway(profile, { amqpUrl, notify: { retention: testRetention } }));
    });
    after(async () => {
      await client.close();
      await gw.close();
    });

    it('publishes with --amqp-url (and AMQP_URL) what the joined client receives, in order', async () => {
      const first = await cli(['publish', '--profile', profile, '--command-status', '1', '--id', 'q1', '--body', 'pending', '--amqp-url', amqpUrl], retentionEnv);
      assert.equal(first.code, 0, first.stderr);
      assert.match(first.stdout, /via RabbitMQ at 127\.0\.0\.1:5672/);
      assert.doesNotMatch(first.stdout, /guest/, 'no credentials in the output');
      const second = await cli(['publish', '--profile', profile, '--download', '--id', 'q2', '--body', 'preparing'], { ...retentionEnv, AMQP_URL: amqpUrl });
      assert.equal(second.code, 0, second.stderr);
      assert.equal(await client.next(), '{"data":{"type":"X-DPT-CAB-ID","id":"q1","command_status":1,"body":"pending"}}');
      assert.equal(await client.next(), '{"data":{"type":"X-DPT-CAB-REQUEST-ID","id":"q2","output_type":0,"body":"preparing"}}');
    });

    it('publishes through the typed API on RabbitMQ, including for a profile nobody has joined yet', async () => {
      const later = uniqueId('later');
      const publisher = connectPublisher({ amqpUrl, retention: testRetention });
      try {
        await publisher.publishCommandStatus(profile, { id: 'q3', status: 2, body: 'done' });
        await publisher.publishCommandStatus(later, { id: 'w1', status: 2, body: 'waited' });
      } finally {
        await publisher.close();
      }
      assert.equal(await client.next(), '{"data":{"type":"X-DPT-CAB-ID","id":"q3","command_status":2,"body":"done"}}');

      const lateGw = await startGateway({ amqpUrl, notify: { retention: testRetention }, tokens: { kind: 'static', tokens: { [`tok-${later}`]: later } } });
      const lateClient = await TestClient.connect(lateGw.wsUrl);
      try {
        assert.equal((await lateClient.request(join(`tok-${later}`))).status, 200);
        assert.equal(await lateClient.next(), '{"data":{"type":"X-DPT-CAB-ID","id":"w1","command_status":2,"body":"waited"}}');
      } finally {
        await lateClient.close();
        await lateGw.close();
      }
    });

    it('exits 4 when RabbitMQ cannot be reached', async () => {
      const down = await cli(['publish', '--profile', profile, '--command-status', '1', '--id', 'x', '--body', 'b', '--amqp-url', 'amqp://127.0.0.1:1'], retentionEnv);
      assert.equal(down.code, 4, down.stderr);
      assert.match(down.stderr, /RabbitMQ is unavailable/);
    });
  });
});
