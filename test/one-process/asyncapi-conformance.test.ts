import assert from 'node:assert/strict';
import { after, before, describe, it } from 'node:test';
import { ControlClient, NotificationClient, RequestFailedError, type WebSocketConstructor } from '../../sdk/src/index.js';
import { type Contract, type ContractChannel, loadContract, type RecordedFrame, recordingWebSocket } from '../helpers/asyncapi-contract.js';
import { connectControl } from '../helpers/control-gateway.js';
import { FakeClock } from '../helpers/fake-clock.js';
import { publishOverHttp, startGateway, uniqueId, type RunningGateway } from '../helpers/gateway.js';
import { join, leave, TestClient } from '../helpers/ws-client.js';

/**
 * The frames the gateway really sends, on both channels, validate against docs/asyncapi.yaml; so do the
 * frames the SDK sends. Sessions are driven through the SDK (recording its socket) and raw sockets (for the
 * error paths the SDK never provokes), and every gateway message of the document must be seen at least once.
 */
describe('AsyncAPI conformance of real frames', () => {
  const run = uniqueId('aa');
  const profile = `p-${run}`;
  const tokens = { [`tok-${run}`]: profile, [`tok-other-${run}`]: `q-${run}`, [`tok-short-${run}`]: profile };
  let gw: RunningGateway;
  let contract: Contract;
  const frames: RecordedFrame[] = [];
  const raw: Array<{ channel: ContractChannel; client: TestClient }> = [];
  /** Gateway messages this session cannot provoke: the seq frame when the gateway did not grant ack mode. */
  const publish = (body: unknown) => publishOverHttp(gw, profile, JSON.stringify(body));

  before(async () => {
    contract = await loadContract();
    gw = await startGateway({ tokens: { kind: 'static', tokens } });
  });
  after(async () => {
    await Promise.all(raw.map((r) => r.client.close()));
    await gw.close();
  });

  /** One SDK session through every notification kind, in the mode asked for; returns the mode granted. */
  async function sdkSession(ack: boolean): Promise<string | undefined> {
    const sdk = new NotificationClient({ url: `${gw.wsUrl}/`, ack, WebSocket: recordingWebSocket(frames) as unknown as WebSocketConstructor });
    await sdk.join(`tok-${run}`);
    const mode = sdk.deliveryMode;
    const done = sdk.command('c1', { timeoutMs: 10_000 });
    const failed = sdk.command('c2', { timeoutMs: 10_000 }).catch((err: Error) => err);
    const link = sdk.download('r1', { timeoutMs: 10_000 });
    const other = new Promise((resolve) => {
      const off = sdk.on('message', (m) => {
        if (m.data.type !== 'X-CUSTOM') return;
        off();
        resolve(m);
      });
    });
    await publish({ data: { type: 'X-DPT-CAB-ID', id: 'c1', command_status: 1, body: 'pending' } });
    await publish({ data: { type: 'X-DPT-CAB-ID', id: 'c1', command_status: 2, body: 'Command completed successfully' } });
    await publish({ data: { type: 'X-DPT-CAB-ID', id: 'c2', command_status: 3, body: 'refused' } });
    await publish({ data: { type: 'X-DPT-CAB-REQUEST-ID', id: 'r1', data_context: 'ctx', output_type: 0, body: 'preparing' } });
    await publish({ data: { type: 'X-DPT-CAB-REQUEST-ID', id: 'r1', data_context: 'ctx', output_type: 1, body: 'https://download.example/x' } });
    await publish({ data: { type: 'X-CUSTOM', id: 'x1', extra: [1, 2] } });
    await done;
    await link;
    await other;
    assert.ok((await failed) instanceof Error);
    await sdk.leave();
    await sdk.close();
    return mode;
  }

  it('notification channel: SDK sessions in both modes and raw error paths', async () => {
    assert.equal(await sdkSession(false), 'plain');
    assert.equal(await sdkSession(true), 'ack', 'the SDK asks for acknowledged delivery and the gateway grants it');

    const c = await TestClient.connect(`${gw.wsUrl}/`);
    raw.push({ channel: 'notify', client: c });
    c.send('ping');
    await c.next();
    c.send('{not json');
    await c.next();
    await c.request({ action: 'dance', correlationId: 'x' });
    await c.request(join('no-such-token', 'bad'));
    await c.request(leave(profile, 'not-joined'));
    await c.request(join(`tok-${run}`, 'j'));
    await c.request(join(`tok-other-${run}`, 'conflict'));
    await c.request(leave(`q-${run}`, 'forbidden'));
    await c.request({ action: 'ack', seq: 1 });

    // Acknowledged delivery's error path: an ack for a frame never sent.
    const a = await TestClient.connect(`${gw.wsUrl}/`);
    raw.push({ channel: 'notify', client: a });
    assert.equal((await a.request({ action: 'joinChannel', correlationId: 'ja', data: { authorizationToken: `tok-${run}`, ack: true } })).data.ack, true);
    await publish({ data: { type: 'X-CUSTOM', id: 'x2' } });
    assert.equal((await a.nextJson()).seq, 1);
    assert.equal((await a.request({ action: 'ack', seq: 5 })).status, 400);
    a.send({ action: 'ack', seq: 1 });

    // The expiry report, from a gateway whose clock the test moves past the token's expiry once joined.
    const clock = new FakeClock(Date.now());
    const short = await startGateway({ tokens: { kind: 'static', tokens, expiresAt: { [`tok-short-${run}`]: clock.now() + 1_500 } } }, { clock });
    const s = await TestClient.connect(`${short.wsUrl}/`);
    raw.push({ channel: 'notify', client: s });
    try {
      assert.equal((await s.request(join(`tok-short-${run}`, 'j-short'))).status, 200);
      clock.advance(1_500);
      assert.equal((await s.nextJson()).status, 401, 'expiry report');
    } finally {
      await s.close();
      await short.close();
    }
  });

  it('control channel: SDK session and raw error paths', async () => {
    const sdk = new ControlClient({ url: gw.url, apiKey: 'demo-admin-key', WebSocket: recordingWebSocket(frames) as unknown as WebSocketConstructor });
    const power = { sys: 'sys-demo', mod: 'Display', name: 'power' };
    const values: unknown[] = [];
    const stopWatch = await sdk.watch(power, (v) => values.push(v));
    let sawLine!: () => void;
    const line = new Promise<void>((resolve) => (sawLine = resolve));
    const stopDebug = await sdk.debug({ sys: 'sys-demo', mod: 'mod-display-1' }, () => sawLine());
    await sdk.exec({ sys: 'sys-demo', mod: 'Display' }, 'power', [true]);
    await line;
    await assert.rejects(sdk.exec({ sys: 'sys-demo', mod: 'Display' }, 'volume', [500]), RequestFailedError);
    await sdk.exec({ sys: 'sys-demo', mod: 'Display' }, 'power', [false]);
    await stopDebug();
    await stopWatch();
    await sdk.close();

    const c = await connectControl(gw);
    raw.push({ channel: 'control', client: c });
    c.send('ping');
    await c.next();
    for (const request of [
      '{oops',
      { id: 1, cmd: 'dance', sys: 'sys-demo', mod: 'Display', name: 'power' },
      { id: 2, cmd: 'bind', sys: 'sys-demo', mod: 'Display' },
      { id: 3, cmd: 'bind', sys: 'sys-none', mod: 'Display', name: 'power' },
      { id: 4, cmd: 'bind', sys: 'sys-demo', mod: 'Display', index: 7, name: 'power' },
      { id: 5, cmd: 'exec', sys: 'sys-demo', mod: 'Display', name: 'nope', args: [] },
      { id: 6, cmd: 'unbind', sys: 'sys-demo', mod: 'Display', name: 'power' },
    ]) {
      await c.request(request);
    }
    const user = await connectControl(gw, 'api-key=demo-user-key');
    raw.push({ channel: 'control', client: user });
    await user.request({ id: 7, cmd: 'bind', sys: 'sys-other', mod: 'Display', name: 'power' });
  });

  it('every recorded frame validates, and every gateway message kind was seen', () => {
    for (const { channel, client } of raw) for (const text of client.frames) frames.push({ channel, direction: 'server', text });
    const seen = new Set<string>();
    const invalid: string[] = [];
    for (const frame of frames) {
      const matches = contract.match(frame.channel, frame.direction, frame.text);
      if (matches.length === 0) invalid.push(`${frame.channel} ${frame.direction}: ${frame.text}`);
      for (const name of matches) seen.add(`${frame.channel}/${frame.direction}/${name}`);
    }
    assert.deepEqual(invalid, []);
    assert.ok(frames.length > 40, `recorded ${frames.length} frames`);
    for (const channel of ['notify', 'control'] as const) {
      const missing = contract.messages(channel, 'server').filter((name) => !seen.has(`${channel}/server/${name}`));
      assert.deepEqual(missing, [], `${channel}: gateway messages never seen`);
    }
    const clientKinds = [...seen].filter((k) => k.includes('/client/')).sort();
    assert.deepEqual(clientKinds, [
      'control/client/bind',
      'control/client/debug',
      'control/client/exec',
      'control/client/ignore',
      'control/client/unbind',
      'notify/client/ack',
      'notify/client/joinChannel',
      'notify/client/leaveChannel',
    ]);
  });
});
