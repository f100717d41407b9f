import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { loadContract } from '../helpers/asyncapi-contract.js';

describe('docs/asyncapi.yaml', () => {
  it('parses as AsyncAPI without errors and describes both channels in both directions', async () => {
    const contract = await loadContract();
    assert.deepEqual(contract.errors, []);
    assert.deepEqual(contract.messages('notify', 'client').sort(), ['ack', 'joinChannel', 'leaveChannel', 'ping']);
    assert.deepEqual(contract.messages('notify', 'server').sort(), [
      'channelExpired',
      'commandStatus',
      'dataDownload',
      'errorReply',
      'notification',
      'pong',
      'reply',
      'sequencedNotification',
    ]);
    assert.deepEqual(contract.messages('control', 'client').sort(), ['bind', 'debug', 'exec', 'ignore', 'ping', 'unbind']);
    assert.deepEqual(contract.messages('control', 'server').sort(), ['debugLine', 'error', 'notify', 'pong', 'success']);
  });

  it('has examples that validate against their own schemas', async () => {
    const examples = (await loadContract()).examples();
    assert.ok(examples.length >= 10);
    assert.deepEqual(examples.filter((e) => !e.valid).map((e) => e.name), []);
  });

  it('tells messages apart: a frame of one kind does not pass as another', async () => {
    const contract = await loadContract();
    const m = (channel: 'notify' | 'control', frame: unknown) =>
      contract.match(channel, 'server', typeof frame === 'string' ? frame : JSON.stringify(frame));
    // Every forwarded message is a `notification`; a well-formed command status is also a `commandStatus`.
    assert.deepEqual(m('notify', { data: { type: 'X-DPT-CAB-ID', id: 'a', command_status: 2, body: 'ok' } }).sort(), ['commandStatus', 'notification']);
    assert.deepEqual(m('notify', { data: { type: 'X-DPT-CAB-ID', id: 'a', command_status: 4, body: 'ok' } }), ['notification'], 'forwarded unchanged, but not a command status');
    assert.deepEqual(m('notify', { data: { type: 'X-DPT-CAB-ID' } }), [], 'never forwarded without data.id');
    assert.deepEqual(m('notify', { data: { type: 'custom', id: 'a' } }), ['notification']);
    assert.deepEqual(m('notify', { status: 401, data: { channelId: 'p', message: 'Authorization token expired; channel left.' } }), ['errorReply', 'channelExpired']);
    assert.deepEqual(m('notify', 'pong'), ['pong']);
    // Acknowledged delivery: the seq frame is its own kind (no `data` at the top), its message a notification.
    assert.deepEqual(m('notify', { seq: 1, message: { data: { type: 'custom', id: 'a' } } }), ['sequencedNotification']);
    assert.deepEqual(m('notify', { seq: 0, message: { data: { type: 'custom', id: 'a' } } }), [], 'seq starts at 1');
    assert.deepEqual(m('notify', { seq: 1, message: { data: { type: 'custom' } } }), [], 'the embedded message is a notification');
    assert.deepEqual(m('notify', { correlationId: 'c', status: 200, data: { channelId: 'p', message: 'Successfully joined profile channel.', ack: true } }), ['reply']);
    assert.deepEqual(m('notify', { status: 200, data: { channelId: 'p', message: 'Successfully joined profile channel.', ack: false } }), [], 'ack is only ever true');
    assert.deepEqual(m('notify', { status: 400, data: { message: 'Acknowledged seq 9, but only 3 frames were sent.' } }), ['errorReply']);
    const client = (frame: unknown) => contract.match('notify', 'client', JSON.stringify(frame));
    assert.deepEqual(client({ action: 'ack', seq: 3 }), ['ack']);
    assert.deepEqual(client({ action: 'ack', seq: '3' }), []);
    assert.deepEqual(client({ action: 'joinChannel', data: { authorizationToken: 't', ack: true } }), ['joinChannel']);
    assert.deepEqual(m('control', { id: 1, type: 'notify', value: null, meta: { sys: 's', mod: 'M', index: 1, name: 'n' } }), ['notify']);
    assert.deepEqual(m('control', { id: 1, type: 'notify', meta: { sys: 's', mod: 'M', index: 1, name: 'n' } }), [], 'notify needs value');
    assert.deepEqual(m('control', { id: 1, type: 'error', msg: 'x', error_code: 9, code: 500 }), []);
    assert.deepEqual(m('control', { id: 1, type: 'success', extra: 1 }), []);
  });
});
