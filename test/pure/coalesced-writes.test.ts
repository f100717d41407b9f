import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import type { ChannelModel } from 'amqplib';
import { coalesceFrameWrites } from '../../src/backends/rabbitmq/coalesced-writes.js';

/** A socket that records what reaches it: each uncork that had writes behind it is one syscall. */
function fakeSocket() {
  const syscalls: string[][] = [];
  let corks = 0;
  let corkCalls = 0;
  let held: string[] = [];
  const stream = {
    cork: () => {
      corks += 1;
      corkCalls += 1;
    },
    uncork: () => {
      corks -= 1;
      if (corks === 0 && held.length > 0) syscalls.push(held.splice(0));
    },
    write: (chunk: string) => {
      if (corks > 0) held.push(chunk);
      else syscalls.push([chunk]);
      return true;
    },
  };
  return { model: { connection: { stream } } as unknown as ChannelModel, stream, syscalls, corked: () => corks > 0, corkCalls: () => corkCalls };
}

describe('coalesced frame writes on the broker connection', () => {
  it('sends the frames of one synchronous run in one write, and each run separately', async () => {
    const socket = fakeSocket();
    assert.equal(coalesceFrameWrites(socket.model), true);
    socket.stream.write('publish 1');
    socket.stream.write('publish 2');
    socket.stream.write('ack');
    assert.deepEqual(socket.syscalls, [], 'held until the run ends');
    await new Promise<void>((resolve) => process.nextTick(resolve));
    assert.deepEqual(socket.syscalls, [['publish 1', 'publish 2', 'ack']]);
    socket.stream.write('heartbeat');
    await new Promise<void>((resolve) => setImmediate(resolve));
    assert.deepEqual(socket.syscalls, [['publish 1', 'publish 2', 'ack'], ['heartbeat']]);
    assert.equal(socket.corked(), false);
  });

  it('wraps a connection once, however often its link is rebuilt, and leaves a model without a socket alone', async () => {
    const socket = fakeSocket();
    coalesceFrameWrites(socket.model);
    coalesceFrameWrites(socket.model);
    socket.stream.write('frame');
    await new Promise<void>((resolve) => process.nextTick(resolve));
    assert.deepEqual(socket.syscalls, [['frame']]);
    assert.equal(socket.corkCalls(), 1, 'wrapped once');
    assert.equal(socket.corked(), false);
    assert.equal(coalesceFrameWrites({} as ChannelModel), false);
  });
});
