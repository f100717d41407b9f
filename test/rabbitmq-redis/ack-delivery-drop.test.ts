import assert from 'node:assert/strict';
import { EventEmitter } from 'node:events';
import { after, describe, it } from 'node:test';
import { profileId } from '../../src/core/ids.js';
import { type RunningGateway, startGateway, uniqueId } from '../helpers/gateway.js';
import { amqpUrl, plainAmqp, testRetention } from '../helpers/rabbitmq.js';
import { startTcpProxy, type TcpProxy } from '../helpers/tcp-proxy.js';
import { TestClient } from '../helpers/ws-client.js';

/**
 * A client's network drops mid-stream (README "Acknowledged delivery"): the client sits behind a TCP proxy
 * that stops passing gateway-to-client bytes while 2,000 messages of 2 KB flow, then cuts the connection;
 * the client reconnects directly and joins again. Plain mode loses what the tunnel swallowed (printed: the
 * documented behaviour); ack mode loses nothing, on both brokers, on one node and with the profile joined on
 * two nodes, and beside a plain socket that keeps receiving its bytes unchanged.
 */
const total = 2_000;
const beforeDrop = 100;
const window = 200;
const pad = 'x'.repeat(2_000);
const body = (run: string, n: number) => `{"data":{"type":"X-DPT-CAB-ID","id":"${run}-${n}","command_status":2,"body":"${pad}"}}`;

/** Reads one socket's notifications: records ids, acknowledges each turn's frames at once in ack mode. */
class Reader {
  readonly ids: string[] = [];
  readonly frames: string[] = [];
  readonly replies: Array<{ status: number; data: { ack?: boolean } }> = [];
  private readonly events = new EventEmitter();
  private ackDue: number | undefined;
  private pongs = 0;

  constructor(
    readonly client: TestClient,
    private readonly ack: boolean,
  ) {
    client.ws.on('message', (data) => {
      const text = String(data);
      if (text === 'pong') {
        this.pongs += 1;
        return this.events.emit('change');
      }
      const frame = JSON.parse(text);
      if (frame.status !== undefined) this.replies.push(frame);
      else {
        this.frames.push(text);
        this.ids.push((ack ? frame.message : frame).data.id);
        if (ack) this.acknowledge(frame.seq);
      }
      this.events.emit('change');
    });
  }

  unique(): number {
    return new Set(this.ids).size;
  }

  /** Resolves once `done()` holds, checked after every frame. */
  until(done: () => boolean): Promise<void> {
    return new Promise((resolve) => {
      const check = () => {
        if (!done()) return;
        this.events.off('change', check);
        resolve();
      };
      this.events.on('change', check);
      check();
    });
  }

  async join(token: string): Promise<void> {
    const replies = this.replies.length;
    this.client.send({ action: 'joinChannel', correlationId: 'j', data: { authorizationToken: token, ...(this.ack && { ack: true }) } });
    await this.until(() => this.replies.length > replies);
    assert.equal(this.replies.at(-1)!.status, 200);
    assert.equal(this.replies.at(-1)!.data.ack, this.ack ? true : undefined, 'ack mode granted only when asked for');
  }

  /** Resolves once the gateway handled everything sent before (a ping is answered in order). */
  async roundTrip(): Promise<void> {
    const pongs = this.pongs;
    this.client.send('ping');
    await this.until(() => this.pongs > pongs);
  }

  private acknowledge(seq: number): void {
    const first = this.ackDue === undefined;
    this.ackDue = seq;
    if (!first) return;
    setImmediate(() => {
      if (this.client.ws.readyState === this.client.ws.OPEN) this.client.send({ action: 'ack', seq: this.ackDue });
      this.ackDue = undefined;
    });
  }
}

interface Setup {
  name: string;
  overrides: Record<string, unknown>;
  nodes: 1 | 2;
  /** The other node's socket joins first, so its node takes the mailbox and relays to the dropped client's. */
  siblingFirst?: boolean;
}

const memory: Setup = { name: 'memory broker, one node', overrides: {}, nodes: 1 };
const rabbit: Setup = { name: 'RabbitMQ, one node', overrides: { amqpUrl }, nodes: 1 };
const rabbitTwoNodes: Setup = { name: 'RabbitMQ, profile joined on two nodes (the dropped client on the active one)', overrides: { amqpUrl }, nodes: 2 };
const rabbitTwoNodesRelayed: Setup = { ...rabbitTwoNodes, name: 'RabbitMQ, profile joined on two nodes (the dropped client on the relayed-to one)', siblingFirst: true };

describe('a client whose network drops mid-stream', () => {
  const gateways: RunningGateway[] = [];
  const proxies: TcpProxy[] = [];
  const clients: TestClient[] = [];
  const profiles: string[] = [];
  after(async () => {
    await Promise.all(clients.map((c) => c.close()));
    await Promise.all(proxies.map((p) => p.close()));
    await Promise.all(gateways.map((g) => g.close()));
    const admin = await plainAmqp();
    try {
      for (const profile of profiles) await admin.channel.deleteQueue(`message_to_user.${profile}`);
    } finally {
      await admin.close();
    }
  });

  /**
   * Runs one drop: `reader` behind a proxy (ack or plain), optionally a `sibling` socket of the same profile
   * (on the second node when there is one). Returns the dropped client's ids after it joined again.
   */
  async function drop(setup: Setup, ack: boolean, sibling?: { ack: boolean }) {
    const run = uniqueId('drop');
    profiles.push(run);
    const token = `tok-${run}`;
    const overrides = { ...setup.overrides, tokens: { kind: 'static', tokens: { [token]: run } }, notify: { prefetch: window, ackWindow: window, retention: testRetention } };
    const nodes: RunningGateway[] = [];
    for (let i = 0; i < setup.nodes; i++) nodes.push(await startGateway(overrides));
    gateways.push(...nodes);
    const proxy = await startTcpProxy(nodes[0]!.port);
    proxies.push(proxy);
    const connect = async (url: string, readsAck: boolean) => {
      const client = await TestClient.connect(url);
      clients.push(client);
      const reader = new Reader(client, readsAck);
      await reader.join(token);
      return reader;
    };
    const joinSibling = async () => (sibling ? await connect(nodes.at(-1)!.wsUrl, sibling.ack) : undefined);
    const first = setup.siblingFirst ? await joinSibling() : undefined;
    const dropped = await connect(`ws://127.0.0.1:${proxy.port}`, ack);
    const other = setup.siblingFirst ? first : await joinSibling();
    // In batches: publishes on one channel keep their order without waiting for each confirm.
    const publish = async (from: number, to: number) => {
      for (let start = from; start < to; start += 100) {
        const batch = Array.from({ length: Math.min(100, to - start) }, (_, i) => body(run, start + i));
        await Promise.all(batch.map((text) => nodes[0]!.gateway.broker.publish(profileId(run), Buffer.from(text))));
      }
    };

    await publish(0, beforeDrop);
    await dropped.until(() => dropped.unique() === beforeDrop);
    await dropped.roundTrip();
    proxy.blackholeDownstream();
    await Promise.all([publish(beforeDrop, total), proxy.swallowed(50 * pad.length)]);
    await proxy.cut();
    await dropped.client.closed;

    const back = await connect(nodes[0]!.wsUrl, ack);
    if (ack) {
      await back.until(() => new Set([...dropped.ids, ...back.ids]).size === total);
    } else {
      // Whatever was lost is gone for good: a marker published now is the last thing the client will get.
      await nodes[0]!.gateway.broker.publish(profileId(run), Buffer.from(body(run, total)));
      await back.until(() => back.ids.includes(`${run}-${total}`));
    }
    if (other) await other.until(() => other.unique() >= total);
    const received = new Set([...dropped.ids, ...back.ids].filter((id) => id !== `${run}-${total}`));
    const requeued = (await nodes[0]!.gateway.metrics.registry.getSingleMetric('switchboard_notify_unacked_requeued_total')!.get()).values[0]?.value ?? 0;
    return { run, received, dropped, back, other, requeued };
  }

  for (const setup of [memory, rabbit]) {
    it(`plain mode on the ${setup.name} loses what the tunnel swallowed (the documented behaviour)`, { timeout: 120_000 }, async () => {
      const { received } = await drop(setup, false);
      const lost = total - received.size;
      console.log(`# plain mode, ${setup.name}: ${lost} of ${total} messages lost across the drop`);
      assert.ok(lost > 0, 'the swallowed frames were settled when written to the kernel');
    });
  }

  for (const setup of [memory, rabbit, rabbitTwoNodes, rabbitTwoNodesRelayed]) {
    it(`ack mode on the ${setup.name} loses nothing`, { timeout: 120_000 }, async () => {
      const sibling = setup.nodes === 2 ? { ack: true } : undefined;
      const { received, dropped, back, other, requeued } = await drop(setup, true, sibling);
      assert.equal(received.size, total, 'every message reached the client that dropped');
      assert.ok(requeued > 0, 'the messages the tunnel swallowed were counted as given back');
      const duplicates = dropped.ids.length + back.ids.length - received.size;
      console.log(`# ack mode, ${setup.name}: 0 lost, ${duplicates} seen twice by the dropped client (the SDK drops them by data.id)`);
      if (other) assert.equal(other.unique(), total, 'the socket on the other node got everything too');
    });
  }

  for (const setup of [memory, rabbit]) {
    it(`on the ${setup.name}, a plain socket beside an ack-mode one gets its bytes unchanged while the ack-mode one loses nothing across its drop`, { timeout: 120_000 }, async () => {
      const { run, received, other } = await drop(setup, true, { ack: false });
      assert.equal(received.size, total, 'the ack-mode client lost nothing');
      const published = new Set(Array.from({ length: total }, (_, n) => body(run, n)));
      assert.ok(other!.frames.every((frame) => published.has(frame)), 'every plain frame is a published message, byte for byte');
      assert.equal(other!.unique(), total);
    });
  }
});
