import assert from 'node:assert/strict';
import { once } from 'node:events';
import type { AddressInfo } from 'node:net';
import { describe, it } from 'node:test';
import { WebSocketServer } from 'ws';
import { maskedFrame, RawJoinClient, ServerFrameReader } from '../lib/raw-join-client.js';

describe('bench raw join client', () => {
  it('frames: masked client frames of every length class, server frames split across chunks', () => {
    const mask = Buffer.from([1, 2, 3, 4]);
    for (const length of [0, 125, 126, 65_535, 65_536]) {
      const payload = Buffer.alloc(length, 7);
      const frame = maskedFrame(0x1, payload, mask);
      const at = frame.length - length;
      const unmasked = Buffer.from(frame.subarray(at)).map((b, i) => b ^ mask[i & 3]!);
      assert.deepEqual(Buffer.from(unmasked), payload, `length ${length}`);
      assert.equal(frame[1]! & 0x80, 0x80);
    }
    const reader = new ServerFrameReader();
    const big = Buffer.concat([Buffer.from([0x81, 126, 0x01, 0x00]), Buffer.alloc(256, 97)]);
    const ping = Buffer.from([0x89, 0x00]);
    const all = Buffer.concat([big, ping]);
    assert.deepEqual(reader.push(all.subarray(0, 3)), []);
    const frames = reader.push(all.subarray(3));
    assert.deepEqual(frames.map((f) => [f.opcode, f.payload.length]), [[1, 256], [9, 0]]);
    assert.throws(() => new ServerFrameReader().push(Buffer.from([0x81, 0x81, 0, 0, 0, 0, 0])), /must not be masked/);
  });

  it('joins a real ws server, answers its pings, and reports a refused join', async () => {
    const server = new WebSocketServer({ host: '127.0.0.1', port: 0 });
    await once(server, 'listening');
    const received: unknown[] = [];
    const pongs: string[] = [];
    server.on('connection', (ws) => {
      ws.on('pong', (data) => pongs.push(data.toString()));
      ws.on('message', (data) => {
        const msg = JSON.parse(String(data)) as { data: { authorizationToken: string } };
        received.push(msg);
        const ok = msg.data.authorizationToken === 'good';
        ws.send(JSON.stringify(ok ? { status: 200 } : { status: 401, error: 'no' }));
        if (ok) ws.ping('hb');
      });
    });
    const client = RawJoinClient.forUrl(`ws://127.0.0.1:${(server.address() as AddressInfo).port}/x?y=1`);
    try {
      await client.join('good');
      assert.deepEqual(received, [{ action: 'joinChannel', data: { authorizationToken: 'good' } }]);
      await assert.rejects(client.join('bad'), /join refused/);
      // The pong answers the ping sent after the good join.
      while (pongs.length === 0) await new Promise((r) => setImmediate(r));
      assert.deepEqual(pongs, ['hb']);
      assert.equal(client.size, 1);
    } finally {
      client.closeAll();
      for (const ws of server.clients) ws.terminate();
      server.close();
    }
  });
});
