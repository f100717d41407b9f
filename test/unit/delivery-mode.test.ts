import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { DeliveryMode } from '../../src/backends/rabbitmq/delivery-mode.js';

describe('delivery mode of an active mailbox consumer', () => {
  const make = () => {
    let now = 0;
    const mode = new DeliveryMode(5_000, () => now);
    return { mode, advance: (ms: number) => (now += ms) };
  };

  it('is direct when the node was alone at attach, and relays when it was not', () => {
    const { mode } = make();
    mode.attached(0);
    assert.equal(mode.direct, true);
    mode.attached(1);
    assert.equal(mode.direct, false, 'another consumer existed: relay until a count says otherwise');
  });

  it('relays from a hello on, and goes direct again after a bye once its own copies are back', () => {
    const { mode } = make();
    mode.attached(0);
    mode.hello('node-b');
    assert.equal(mode.direct, false);
    mode.relayed();
    mode.relayed();
    mode.bye('node-b');
    const token = mode.beginCheck(true)!;
    mode.checkDone(token, 1);
    assert.equal(mode.direct, false, 'two relay copies are still on their way back');
    mode.copyDone();
    mode.copyDone();
    assert.equal(mode.direct, true);
  });

  it('ignores a consumer count asked for before a hello arrived', () => {
    const { mode } = make();
    mode.attached(0);
    mode.hello('node-b');
    const token = mode.beginCheck(true)!;
    mode.hello('node-c'); // node-c consumed after the count was taken
    mode.checkDone(token, 1);
    assert.equal(mode.direct, false, 'node-c would otherwise miss messages');
  });

  it('forgets peers that vanished without a bye when a periodic count finds it alone', () => {
    const { mode, advance } = make();
    mode.attached(0);
    mode.hello('crashed');
    const first = mode.beginCheck(false)!;
    assert.equal(mode.beginCheck(false), undefined, 'one count at a time');
    mode.checkDone(first, 2);
    assert.equal(mode.beginCheck(false), undefined, 'not again before the interval');
    advance(5_000);
    const second = mode.beginCheck(false)!;
    mode.checkDone(second, 1);
    assert.equal(mode.direct, true);
  });

  it('suspects an unannounced peer when the count says more than one', () => {
    const { mode } = make();
    mode.attached(0);
    const token = mode.beginCheck(true)!;
    mode.checkDone(token, 2);
    assert.equal(mode.direct, false);
    assert.equal(mode.beginCheck(false), undefined, 'the next periodic count waits for the interval');
  });

  it('never asks unprompted while direct', () => {
    const { mode } = make();
    mode.attached(0);
    assert.equal(mode.beginCheck(false), undefined);
  });

  it('keeps its state when a count could not be had', () => {
    const { mode } = make();
    mode.attached(1);
    const token = mode.beginCheck(true)!;
    mode.checkDone(token, undefined);
    assert.equal(mode.direct, false);
    assert.notEqual(mode.beginCheck(true), undefined, 'free to ask again');
  });
});
