import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { DeliveryModeTracker } from '../../src/backends/rabbitmq/delivery-mode-tracker.js';

describe('delivery mode of an active mailbox consumer', () => {
  const make = () => {
    let now = 0;
    const mode = new DeliveryModeTracker(5_000, 300_000, () => now);
    return { mode, advance: (ms: number) => (now += ms) };
  };

  it('is direct when the node was alone at attach, and relays when it was not', () => {
    const { mode } = make();
    mode.attached(false);
    assert.equal(mode.direct, true);
    mode.attached(true);
    assert.equal(mode.direct, false, 'another consumer existed: relay until a count says otherwise');
  });

  it('relays from a hello on, and goes direct again after a bye once its own copies are back', () => {
    const { mode } = make();
    mode.attached(false);
    mode.hello('node-b');
    assert.equal(mode.direct, false);
    mode.relayed();
    mode.relayed();
    mode.bye('node-b');
    const token = mode.beginCheck(true)!;
    mode.checkDone(token, 1);
    assert.equal(mode.direct, false, 'two relay copies are still on their way back');
    mode.copyBack();
    mode.copyBack();
    assert.equal(mode.direct, true);
  });

  it('knows other holders from a hello until a bye or a count of one, and only suspects them after attaching with company', () => {
    const { mode } = make();
    mode.attached(true);
    assert.equal(mode.hasKnownPeers, false, 'suspected holders may not exist: their copies are not known to be elsewhere');
    mode.hello('node-b');
    mode.hello('node-c');
    assert.equal(mode.hasKnownPeers, true);
    mode.bye('node-b');
    assert.equal(mode.hasKnownPeers, true, 'node-c still holds the profile');
    const token = mode.beginCheck(true)!;
    mode.checkDone(token, 1);
    assert.equal(mode.hasKnownPeers, true, 'node-c may only be cut off from the broker: it is not forgotten yet');
  });

  it('delivers local first from a hello on when it was alone first, and never after attaching with company', () => {
    const { mode } = make();
    mode.attached(false);
    assert.equal(mode.localFirst, false, 'alone: direct');
    mode.hello('node-b');
    mode.hello('node-c');
    assert.equal(mode.localFirst, true, 'every other holder said hello to this node');
    assert.deepEqual([...mode.knownPeers()], ['node-b', 'node-c']);
    mode.relayed(); // a copy through its own relay queue (its sockets stalled)
    assert.equal(mode.localFirst, false, 'its own copy would be overtaken');
    mode.copyBack();
    assert.equal(mode.localFirst, true);
    mode.bye('node-b');
    mode.bye('node-c');
    assert.equal(mode.localFirst, false);
    assert.equal(mode.direct, true);

    mode.attached(true);
    mode.hello('node-b');
    assert.equal(mode.localFirst, false, 'a holder may have said hello to the previous active node only');
  });

  it('leaves local first when a count shows a consumer it never heard a hello from, or the holders\' queues are gone', () => {
    const { mode } = make();
    mode.attached(false);
    const token = mode.beginCheck(true)!;
    mode.checkDone(token, 2); // someone consumed between this node's consume and its count
    mode.hello('node-b');
    assert.equal(mode.localFirst, false);

    mode.attached(false);
    mode.hello('node-b');
    assert.equal(mode.localFirst, true);
    mode.peerQueuesGone();
    assert.equal(mode.localFirst, false);
    assert.equal(mode.direct, true, 'no holder left but this node');
  });

  it('ignores a consumer count asked for before a hello arrived', () => {
    const { mode } = make();
    mode.attached(false);
    mode.hello('node-b');
    const token = mode.beginCheck(true)!;
    mode.hello('node-c'); // node-c consumed after the count was taken
    mode.checkDone(token, 1);
    assert.equal(mode.direct, false, 'node-c would otherwise miss messages');
  });

  it('forgets a peer that vanished without a bye once counts have missed it for the relay queue lifetime', () => {
    const { mode, advance } = make();
    mode.attached(false);
    mode.hello('crashed');
    const first = mode.beginCheck(false)!;
    assert.equal(mode.beginCheck(false), undefined, 'one count at a time');
    mode.checkDone(first, 2);
    assert.equal(mode.beginCheck(false), undefined, 'not again before the interval');
    advance(5_000);
    const second = mode.beginCheck(false)!;
    mode.checkDone(second, 1);
    assert.equal(mode.direct, false, 'missed once: it may be reconnecting, and its relay queue still waits for it');
    advance(290_000);
    mode.checkDone(mode.beginCheck(false)!, 1);
    assert.equal(mode.direct, false, 'missed for less than forgetAfterMs');
    advance(10_000);
    mode.checkDone(mode.beginCheck(false)!, 1);
    assert.equal(mode.direct, true, 'missed for longer than its relay queue lives: forgotten');
  });

  it('keeps relaying to a node whose broker connection was cut, so its sockets get what was published meanwhile', () => {
    const { mode, advance } = make();
    mode.attached(false);
    mode.hello('node-b');
    advance(5_000);
    mode.checkDone(mode.beginCheck(false)!, 1); // node-b's connection is down: it is not in the count
    assert.equal(mode.direct, false);
    advance(5_000);
    mode.hello('node-b'); // back: it re-attached and said hello again
    advance(5_000);
    mode.checkDone(mode.beginCheck(false)!, 2);
    advance(295_000);
    mode.checkDone(mode.beginCheck(false)!, 1);
    assert.equal(mode.direct, false, 'the clock of a missed peer restarts once it is seen again');
  });

  it('suspects an unannounced peer when the count says more than one', () => {
    const { mode } = make();
    mode.attached(false);
    const token = mode.beginCheck(true)!;
    mode.checkDone(token, 2);
    assert.equal(mode.direct, false);
    assert.equal(mode.beginCheck(false), undefined, 'the next periodic count waits for the interval');
  });

  it('never asks unprompted while direct', () => {
    const { mode } = make();
    mode.attached(false);
    assert.equal(mode.beginCheck(false), undefined);
  });

  it('keeps its state when a count could not be had', () => {
    const { mode } = make();
    mode.attached(true);
    const token = mode.beginCheck(true)!;
    mode.checkDone(token, undefined);
    assert.equal(mode.direct, false);
    assert.notEqual(mode.beginCheck(true), undefined, 'free to ask again');
  });

  it('takes the count asked for right after consuming: alone it stays direct, with company it relays', () => {
    const { mode } = make();
    mode.attached(false);
    const alone = mode.beginCheck(true)!;
    mode.checkDone(alone, 1);
    assert.equal(mode.direct, true);
    mode.attached(false);
    const crowded = mode.beginCheck(true)!;
    mode.checkDone(crowded, 2);
    assert.equal(mode.direct, false, 'another node consumed meanwhile: its copies may come first');
  });

  it('voids a count of the previous link when it attaches again', () => {
    const { mode } = make();
    mode.attached(false);
    const stale = mode.beginCheck(true)!;
    mode.attached(false); // reconnected, alone, while that count was on its way
    const fresh = mode.beginCheck(true);
    assert.notEqual(fresh, undefined, 'the pending count of the old link does not block a new one');
    mode.checkDone(stale, 2);
    assert.equal(mode.direct, true, 'the old count says nothing about the new link');
    mode.checkDone(fresh!, 1);
    assert.equal(mode.direct, true);
  });

  it('after a hand-over, goes direct only once one of its own copies came back behind those queued before', () => {
    const { mode } = make();
    mode.attached(true); // another node was active: its copies may wait in this node's relay queue
    const token = mode.beginCheck(true)!;
    mode.checkDone(token, 1); // that node left: alone now
    assert.equal(mode.direct, false, 'copies of the node that left may still be queued here');
    mode.relayed();
    mode.relayFailed();
    assert.equal(mode.direct, false, 'a failed relay says nothing about the queue');
    mode.relayed();
    mode.copyBack();
    assert.equal(mode.direct, true);
  });

  it('keeps that fence when the count right after consuming finds company', () => {
    const { mode } = make();
    mode.attached(false);
    const token = mode.beginCheck(true)!;
    mode.checkDone(token, 2);
    const later = mode.beginCheck(true)!;
    mode.checkDone(later, 1);
    assert.equal(mode.direct, false, 'the other consumer may have been active and relayed to this node');
    mode.relayed();
    mode.copyBack();
    assert.equal(mode.direct, true);
  });
});
