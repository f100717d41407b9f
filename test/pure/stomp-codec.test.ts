import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { decodeFrames, encodeFrame } from '../../bench/lib/stomp.js';

/** The bench's STOMP 1.2 codec (Web-STOMP comparison): what RabbitMQ sends and what it must accept. */
describe('bench STOMP codec', () => {
  it('encodes a frame with escaped headers and the NUL terminator', () => {
    assert.equal(encodeFrame('ACK', { id: 'T_s0@@session-1@@1' }), 'ACK\nid:T_s0@@session-1@@1\n\n\0');
    assert.equal(encodeFrame('SEND', { 'a:b': 'x\ny' }, 'hi'), 'SEND\na\\cb:x\\ny\n\nhi\0');
  });

  it('decodes MESSAGE frames, by content-length or NUL, skipping heart-beats, first repeated header wins', () => {
    const body = '{"data":{"type":"X-BENCH","id":"1","ts":1.5}}';
    const wire = `\nMESSAGE\nsubscription:s0\nack:A1\nack:A2\ncontent-length:${body.length}\n\n${body}\0\nCONNECTED\nversion:1.2\n\n\0`;
    const frames = decodeFrames(wire);
    assert.deepEqual(frames, [
      { command: 'MESSAGE', headers: { subscription: 's0', ack: 'A1', 'content-length': String(body.length) }, body },
      { command: 'CONNECTED', headers: { version: '1.2' }, body: '' },
    ]);
  });

  it('refuses a truncated frame', () => {
    assert.throws(() => decodeFrames('MESSAGE\nack:1\n\nno terminator'), /NUL/);
    assert.throws(() => decodeFrames('MESSAGE\nack:1'), /blank line/);
  });
});
