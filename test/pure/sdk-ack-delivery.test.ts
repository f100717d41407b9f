import assert from 'node:assert/strict';
import { beforeEach, describe, it } from 'node:test';
import { AckTracker, embeddedMessageText } from '../../sdk/src/ack-tracker.js';
import { NotificationClient, type NotificationClientOptions, NotifyRequestError } from '../../sdk/src/index.js';
import { FakeClock } from '../helpers/fake-clock.js';
import { FakeWebSocket, joinedReply } from '../helpers/sdk-fakes.js';

/** Acknowledged delivery, client side (spec: notify-protocol.md, "Acknowledged delivery"). */

const note = (id: string, body = 'b') => ({ data: { type: 'X-TEST', id, body } });
const final = (id: string, body = 'done') => ({ data: { type: 'X-DPT-CAB-ID', id, command_status: 2, body } });
/** An ack-mode frame laid out as the gateway writes it: the published bytes embedded verbatim. */
const frame = (seq: number, message: unknown) => `{"seq":${seq},"message":${typeof message === 'string' ? message : JSON.stringify(message)}}`;
const acks = (ws: FakeWebSocket) => ws.sent.filter((s) => s !== 'ping').map((s) => JSON.parse(s)).filter((f) => f.action === 'ack').map((f) => f.seq as number);
/** Lets promise callbacks run (no timers). */
const settle = () => new Promise((resolve) => setImmediate(resolve));

function deferred() {
  let resolve!: () => void;
  let reject!: (err: unknown) => void;
  const promise = new Promise<void>((res, rej) => ((resolve = res), (reject = rej)));
  return { promise, resolve, reject };
}

function captureReported() {
  const errors: unknown[] = [];
  const holder = globalThis as { reportError?: (e: unknown) => void };
  const previous = holder.reportError;
  holder.reportError = (e) => errors.push(e);
  return { errors, restore: () => (previous ? (holder.reportError = previous) : delete holder.reportError) };
}

/** A client on a fake socket and a fake clock, joined as alice; `grant`: the reply carries `ack: true`. */
async function joined(options: Partial<NotificationClientOptions> = {}, grant = true) {
  const clock = new FakeClock();
  const client = new NotificationClient({ url: 'ws://gateway.test/', WebSocket: FakeWebSocket, heartbeatIntervalMs: 0, reconnect: { initialDelayMs: 100, jitter: 0 }, clock, ...options });
  const created = FakeWebSocket.nextInstance();
  const joining = client.join('tok-alice');
  const ws = await created;
  ws.accept();
  const request = await ws.nextSent();
  const reply = joinedReply(request.correlationId);
  ws.deliver(grant ? { ...reply, data: { ...reply.data, ack: true } } : reply);
  await joining;
  return { client, ws, clock, request };
}

describe('SDK acknowledged delivery: AckTracker', () => {
  it('acknowledges the highest seq below which everything is done, once per turn or every batch', () => {
    const sent: number[] = [];
    const turn: { end?: (() => void) | undefined } = {};
    const tracker = new AckTracker({
      send: (seq) => sent.push(seq),
      defer: (fn) => {
        turn.end = () => {
          turn.end = undefined;
          fn();
        };
        return () => (turn.end = undefined);
      },
      batch: 3,
    });
    const endTurn = (): void => turn.end?.();
    const done = [1, 2, 3, 4, 5].map((seq) => tracker.received(seq));
    done[1]!();
    assert.equal(turn.end, undefined, 'frame 2 done, frame 1 not: nothing to acknowledge');
    done[0]!();
    assert.deepEqual(sent, []);
    assert.ok(turn.end, 'frames 1-2 wait for the end of the turn');
    done[2]!();
    assert.deepEqual(sent, [3], 'a full batch goes at once');
    done[4]!();
    done[3]!();
    endTurn();
    assert.deepEqual(sent, [3, 5]);
    assert.equal(tracker.unacknowledged, 0);
    const late = tracker.received(6);
    tracker.reset();
    late();
    assert.equal(turn.end, undefined, 'a frame of an ended sequence is never acknowledged');
    assert.deepEqual(sent, [3, 5]);
  });

  it('cuts the embedded message out of the frame verbatim', () => {
    assert.equal(embeddedMessageText('{"seq":12,"message":{"data": {"id":"1"} }}'), '{"data": {"id":"1"} }');
    assert.equal(embeddedMessageText('{"message":{},"seq":1}'), undefined);
  });
});

describe('SDK acknowledged delivery: NotificationClient (fake socket)', () => {
  beforeEach(() => FakeWebSocket.reset());

  it('asks for ack mode at join, unwraps seq frames and acknowledges cumulatively, once per turn', async () => {
    const { client, ws, clock, request } = await joined();
    assert.deepEqual(request.data, { authorizationToken: 'tok-alice', ack: true });
    assert.equal(client.deliveryMode, 'ack');
    const seen: Array<[unknown, string]> = [];
    client.on('message', (m, raw) => void seen.push([m, raw]));
    const published = '{"data":{"type":"X-TEST","id":"m1",  "body":"spaced"}}';
    ws.deliver(frame(1, published));
    ws.deliver(frame(2, note('m2')));
    ws.deliver(frame(3, note('m3')));
    assert.deepEqual(
      seen.map(([m]) => (m as { data: { id: string } }).data.id),
      ['m1', 'm2', 'm3'],
    );
    assert.equal(seen[0]![1], published, 'raw is the published text, byte for byte');
    assert.deepEqual(acks(ws), [], 'coalesced: nothing before the end of the turn');
    assert.equal(client.unacknowledged, 3);
    clock.advance(0);
    assert.deepEqual(acks(ws), [3], 'one cumulative ack for the three');
    assert.equal(client.unacknowledged, 0);
    clock.advance(1000);
    assert.deepEqual(acks(ws), [3], 'nothing more while idle');
    await client.close();
  });

  it('acknowledges every 100 frames without waiting for the turn to end', async () => {
    const { client, ws, clock } = await joined();
    for (let seq = 1; seq <= 250; seq++) ws.deliver(frame(seq, note(`m${seq}`)));
    assert.deepEqual(acks(ws), [100, 200]);
    clock.advance(0);
    assert.deepEqual(acks(ws), [100, 200, 250]);
    await client.close();
  });

  it("awaits a listener's promise before acknowledging, in seq order whatever order they finish in", async () => {
    const { client, ws, clock } = await joined();
    const work = new Map<string, ReturnType<typeof deferred>>();
    client.on('message', (m) => {
      const d = deferred();
      work.set(m.data.id, d);
      return d.promise;
    });
    ws.deliver(frame(1, note('slow')));
    ws.deliver(frame(2, note('fast')));
    work.get('fast')!.resolve();
    await settle();
    clock.advance(0);
    assert.deepEqual(acks(ws), [], 'frame 2 done, frame 1 still running: nothing acknowledged');
    work.get('slow')!.resolve();
    await settle();
    clock.advance(0);
    assert.deepEqual(acks(ws), [2]);
    await client.close();
  });

  it('awaits the typed events too (commandStatus, pending, onPending)', async () => {
    const { client, ws, clock } = await joined();
    const d = deferred();
    client.on('commandStatus', () => d.promise);
    ws.deliver(frame(1, final('c1')));
    await settle();
    clock.advance(0);
    assert.deepEqual(acks(ws), []);
    d.resolve();
    await settle();
    clock.advance(0);
    assert.deepEqual(acks(ws), [1]);
    await client.close();
  });

  it('acknowledges a duplicate without calling the listeners, still in order', async () => {
    const { client, ws, clock } = await joined();
    const calls: string[] = [];
    const first = deferred();
    client.on('message', (m) => {
      calls.push(m.data.id);
      return m.data.id === 'c1' ? first.promise : undefined;
    });
    ws.deliver(frame(1, final('c1')));
    ws.deliver(frame(2, final('c1'))); // redelivered: the same final status
    ws.deliver(frame(3, note('m3')));
    assert.deepEqual(calls, ['c1', 'm3']);
    clock.advance(0);
    assert.deepEqual(acks(ws), [], 'the duplicate waits for the first copy, still being processed');
    first.resolve();
    await settle();
    clock.advance(0);
    assert.deepEqual(acks(ws), [3]);
    ws.deliver(frame(4, final('c1')));
    clock.advance(0);
    assert.deepEqual(acks(ws), [3, 4]);
    assert.deepEqual(calls, ['c1', 'm3']);
    await client.close();
  });

  it('counts a listener that throws or rejects as done (reported), and acknowledges frames that are no notification', async () => {
    const reported = captureReported();
    try {
      const { client, ws, clock } = await joined();
      client.on('message', (m) => {
        if (m.data.id === 'boom') throw new Error('listener bug');
        if (m.data.id === 'reject') return Promise.reject(new Error('async listener bug'));
        return undefined;
      });
      ws.deliver(frame(1, note('boom')));
      ws.deliver(frame(2, note('reject')));
      ws.deliver(frame(3, { no: 'data' }));
      await settle();
      clock.advance(0);
      assert.deepEqual(acks(ws), [3], 'one bad message cannot stall the stream');
      assert.deepEqual(
        reported.errors.map((e) => (e as Error).message),
        ['listener bug', 'async listener bug'],
      );
      await client.close();
    } finally {
      reported.restore();
    }
  });

  it('falls back to plain delivery when the reply does not grant ack', async () => {
    const { client, ws, clock } = await joined({}, false);
    assert.equal(client.deliveryMode, 'plain');
    const ids: string[] = [];
    client.on('message', (m) => void ids.push(m.data.id));
    ws.deliver(note('p1'));
    ws.deliver(frame(2, note('p2'))); // not ours to unwrap on a plain socket
    clock.advance(0);
    assert.deepEqual(ids, ['p1']);
    assert.deepEqual(acks(ws), []);
    await client.close();
  });

  it('with ack: false joins plain, byte-for-byte frames, no acks', async () => {
    const { client, ws, clock, request } = await joined({ ack: false }, true);
    assert.deepEqual(request.data, { authorizationToken: 'tok-alice' });
    assert.equal(client.deliveryMode, 'plain', 'a grant the client did not ask for is ignored');
    ws.deliver(note('p1'));
    clock.advance(0);
    assert.deepEqual(acks(ws), []);
    await client.close();
  });

  it('starts seq again at 1 after a reconnection; the old socket’s frames are never acknowledged on the new one', async () => {
    const { client, ws, clock } = await joined();
    const modes: string[] = [];
    client.on('joined', (info) => void modes.push(info.deliveryMode));
    const slow = deferred();
    client.on('message', (m) => (m.data.id === 'old' ? slow.promise : undefined));
    ws.deliver(frame(1, note('old')));
    const next = FakeWebSocket.nextInstance();
    ws.drop(1006);
    assert.equal(client.deliveryMode, undefined);
    clock.advance(100);
    const ws2 = await next;
    ws2.accept();
    const rejoin = await ws2.nextSent();
    assert.equal(rejoin.data.ack, true);
    const reply = joinedReply(rejoin.correlationId);
    ws2.deliver({ ...reply, data: { ...reply.data, ack: true } });
    // The first frame may come right behind the reply, before the join's continuation ran.
    ws2.deliver(frame(1, note('new-1')));
    ws2.deliver(frame(2, note('old'))); // redelivered: its first copy is still being processed
    await settle();
    assert.deepEqual(modes, ['ack']);
    slow.resolve();
    await settle();
    clock.advance(0);
    assert.deepEqual(acks(ws), [], 'nothing for the dropped socket');
    assert.deepEqual(acks(ws2), [2]);
    await client.close();
  });

  it('treats close 4008 (ack timeout) as retryable: reconnects and re-joins in ack mode', async () => {
    const { client, ws, clock } = await joined();
    const slow: Array<{ code: number }> = [];
    client.on('slowConsumer', (info) => void slow.push(info));
    const next = FakeWebSocket.nextInstance();
    ws.drop(4008, 'acknowledgement timeout');
    assert.deepEqual(slow, [{ code: 4008, reason: 'acknowledgement timeout' }]);
    assert.equal(client.status.value.status, 'reconnecting');
    clock.advance(100);
    const ws2 = await next;
    ws2.accept();
    const rejoin = await ws2.nextSent();
    assert.deepEqual(rejoin.data, { authorizationToken: 'tok-alice', ack: true });
    const reply = joinedReply(rejoin.correlationId);
    ws2.deliver({ ...reply, data: { ...reply.data, ack: true } });
    await settle();
    assert.equal(client.deliveryMode, 'ack');
    await client.close();
  });

  it('acknowledges what was processed before leaving, and reports a refused ack as an error event', async () => {
    const { client, ws } = await joined();
    const errors: unknown[] = [];
    client.on('error', (e) => void errors.push(e));
    ws.deliver({ status: 400, data: { message: 'Acknowledged seq 9 was never sent.' } });
    assert.ok(errors[0] instanceof NotifyRequestError && errors[0].status === 400);
    ws.deliver(frame(1, note('m1')));
    const leaving = client.leave();
    const leave = await ws.nextSent<{ action: string; correlationId: string }>((f) => f.action === 'leaveChannel');
    assert.deepEqual(acks(ws), [1], 'the ack went before the leave');
    assert.ok(ws.sent.findIndex((s) => s.includes('"ack"')) < ws.sent.findIndex((s) => s.includes('leaveChannel')));
    ws.deliver({ correlationId: leave.correlationId, status: 200, data: { channelId: 'alice', message: 'Successfully left profile channel.' } });
    await leaving;
    assert.equal(client.deliveryMode, undefined);
    await client.close();
  });
});
