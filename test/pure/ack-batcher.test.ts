import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import type { Message } from 'amqplib';
import { AckBatcher, holdBehindPendingFlushes, type SettlingChannel } from '../../src/backends/rabbitmq/ack-batcher.js';

/**
 * A channel that keeps RabbitMQ's books: which tags are outstanding, and what a (multiple) ack or a nack
 * removes. An ack naming a tag that is not outstanding fails as RabbitMQ fails it (it closes the channel).
 */
class BrokerBooks implements SettlingChannel {
  readonly outstanding = new Set<number>();
  readonly frames: string[] = [];
  readonly requeued: number[] = [];

  deliver(tag: number): Message {
    this.outstanding.add(tag);
    return { fields: { deliveryTag: tag } } as Message;
  }

  ack(message: Message, allUpTo?: boolean): void {
    const tag = message.fields.deliveryTag;
    if (!this.outstanding.has(tag)) throw new Error(`PRECONDITION_FAILED - unknown delivery tag ${tag}`);
    this.frames.push(allUpTo ? `ack<=${tag}` : `ack ${tag}`);
    for (const t of [...this.outstanding]) if (t === tag || (allUpTo && t < tag)) this.outstanding.delete(t);
  }

  nack(message: Message, allUpTo?: boolean, requeue?: boolean): void {
    const tag = message.fields.deliveryTag;
    if (allUpTo || !this.outstanding.has(tag)) throw new Error(`PRECONDITION_FAILED - unknown delivery tag ${tag}`);
    this.frames.push(`nack ${tag}${requeue ? ' requeue' : ''}`);
    this.outstanding.delete(tag);
    if (requeue) this.requeued.push(tag);
  }
}

function setup(deliveries: number) {
  const books = new BrokerBooks();
  let pending: (() => void) | undefined;
  const batcher = new AckBatcher(books, (flush) => {
    assert.equal(pending, undefined, 'one flush scheduled per turn');
    pending = flush;
  });
  const msgs = Array.from({ length: deliveries }, (_, i) => {
    const msg = books.deliver(i + 1);
    batcher.track(msg);
    return msg;
  });
  const endTurn = () => {
    const flush = pending;
    pending = undefined;
    flush?.();
  };
  return { books, batcher, msgs, endTurn, flushPending: () => pending !== undefined };
}

describe('ack batcher', () => {
  it('acknowledges a turn of in-order acks with one multiple ack', () => {
    const { books, batcher, msgs, endTurn } = setup(100);
    for (const msg of msgs) batcher.ack(msg);
    endTurn();
    assert.deepEqual(books.frames, ['ack<=100']);
    assert.equal(books.outstanding.size, 0);
    assert.equal(batcher.outstanding, 0);
  });

  it('covers messages settled behind a pending one with one multiple ack once it settles within the hold', () => {
    const { books, batcher, msgs, endTurn } = setup(5);
    batcher.ack(msgs[1]!);
    batcher.ack(msgs[2]!);
    endTurn();
    assert.deepEqual(books.frames, [], 'they wait for the pending one');
    batcher.ack(msgs[0]!);
    endTurn();
    assert.deepEqual(books.frames, ['ack<=3']);
    assert.deepEqual([...books.outstanding], [4, 5]);
  });

  it('acknowledges messages behind a pending one singly after the hold, so they free their consumer window', () => {
    const { books, batcher, msgs, endTurn, flushPending } = setup(5);
    batcher.ack(msgs[1]!);
    batcher.ack(msgs[2]!);
    for (let i = 1; i < holdBehindPendingFlushes; i++) {
      endTurn();
      assert.ok(flushPending(), 'another flush is scheduled while some wait');
    }
    assert.deepEqual(books.frames, []);
    endTurn();
    assert.deepEqual(books.frames, ['ack 2', 'ack 3']);
    assert.equal(flushPending(), false);
    assert.deepEqual([...books.outstanding], [1, 4, 5]);

    batcher.ack(msgs[0]!);
    batcher.ack(msgs[3]!);
    endTurn();
    assert.deepEqual(books.frames.slice(2), ['ack<=4'], 'tag 4 is the highest still outstanding in the settled run');
    assert.deepEqual([...books.outstanding], [5]);
    assert.equal(batcher.outstanding, 1);
  });

  it('never names an already settled tag in a multiple ack', () => {
    const { books, batcher, msgs, endTurn } = setup(4);
    batcher.ack(msgs[3]!);
    for (let i = 0; i < holdBehindPendingFlushes; i++) endTurn();
    batcher.ack(msgs[0]!);
    batcher.ack(msgs[1]!);
    batcher.ack(msgs[2]!);
    endTurn();
    assert.deepEqual(books.frames, ['ack 4', 'ack<=3']);
    assert.equal(books.outstanding.size, 0);
  });

  it('sends nacks at once and lets a later multiple ack pass over them', () => {
    const { books, batcher, msgs, endTurn, flushPending } = setup(3);
    batcher.nack(msgs[1]!, true);
    assert.deepEqual(books.frames, ['nack 2 requeue']);
    assert.equal(flushPending(), false, 'a nack needs no flush');
    batcher.ack(msgs[0]!);
    batcher.ack(msgs[2]!);
    endTurn();
    assert.deepEqual(books.frames.slice(1), ['ack<=3']);
    assert.deepEqual(books.requeued, [2]);
    assert.equal(books.outstanding.size, 0);
  });

  it('settles each message once: a second ack or nack of the same delivery is ignored', () => {
    const { books, batcher, msgs, endTurn } = setup(2);
    batcher.ack(msgs[0]!);
    batcher.nack(msgs[0]!, true);
    batcher.ack(msgs[0]!);
    endTurn();
    batcher.nack(msgs[1]!, false);
    batcher.ack(msgs[1]!);
    endTurn();
    assert.deepEqual(books.frames, ['ack<=1', 'nack 2']);
  });

  it('forgets everything when the channel refuses (closed), without throwing', () => {
    const { books, batcher, msgs, endTurn } = setup(3);
    batcher.ack(msgs[0]!);
    books.outstanding.clear(); // the channel closed: RabbitMQ requeued everything
    assert.doesNotThrow(endTurn);
    assert.equal(batcher.outstanding, 0);
    assert.doesNotThrow(() => batcher.nack(msgs[1]!, true));
  });

  it('keeps its bookkeeping bounded over a long run with one message held back', () => {
    const { books, batcher, endTurn } = setup(0);
    const held = books.deliver(1);
    batcher.track(held);
    for (let tag = 2; tag <= 10_001; tag++) {
      const msg = books.deliver(tag);
      batcher.track(msg);
      batcher.ack(msg);
      if (tag % 100 === 0) endTurn();
    }
    for (let i = 0; i < holdBehindPendingFlushes; i++) endTurn();
    assert.deepEqual([...books.outstanding], [1]);
    assert.equal(batcher.outstanding, 1);
    assert.ok(batcher.retained <= 1_100, `kept ${batcher.retained} entries for one outstanding delivery`);
    batcher.ack(held);
    endTurn();
    assert.equal(books.outstanding.size, 0);
    assert.equal(books.frames.at(-1), 'ack<=1');
  });

  it('still finds a delivery by its tag after compaction dropped the released ones around it', () => {
    const { books, batcher, endTurn } = setup(0);
    const held = books.deliver(1);
    batcher.track(held);
    let middle: Message | undefined;
    for (let tag = 2; tag <= 3_001; tag++) {
      const msg = books.deliver(tag);
      batcher.track(msg);
      if (tag === 1_500) middle = msg;
      else batcher.ack(msg);
      if (tag % 100 === 0) endTurn();
    }
    for (let i = 0; i < holdBehindPendingFlushes; i++) endTurn();
    assert.ok(batcher.retained < 1_100, `compacted to ${batcher.retained}`);
    assert.deepEqual([...books.outstanding].sort((a, b) => a - b), [1, 1_500]);
    batcher.ack(middle!);
    batcher.ack(held);
    endTurn();
    assert.equal(books.outstanding.size, 0);
    assert.equal(batcher.outstanding, 0);
    batcher.ack(middle!); // settled already: ignored, not acknowledged twice
    endTurn();
    assert.deepEqual(books.frames.filter((f) => f.includes('1500')), ['ack<=1500'], 'one multiple ack covers both, once');
  });
});
