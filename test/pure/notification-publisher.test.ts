import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { GatewayError } from '../../src/core/errors.js';
import type { ProfileId } from '../../src/core/ids.js';
import { NotificationPublisher, type PublishTransport } from '../../src/publish/notification-publisher.js';

class RecordingTransport implements PublishTransport {
  readonly sent: Array<{ profile: ProfileId; body: string }> = [];
  async publish(profile: ProfileId, body: Buffer): Promise<void> {
    this.sent.push({ profile, body: body.toString('utf8') });
  }
}

const badRequest = (pattern: RegExp) => (err: unknown) => err instanceof GatewayError && err.code === 'bad_request' && pattern.test(err.message);

describe('notification publisher', () => {
  it('builds the command-status message of the spec', async () => {
    const transport = new RecordingTransport();
    await new NotificationPublisher(transport).publishCommandStatus('alice', { id: '23f7978a', status: 2, body: 'Command completed successfully' });
    assert.deepEqual(transport.sent, [
      { profile: 'alice', body: '{"data":{"type":"X-DPT-CAB-ID","id":"23f7978a","command_status":2,"body":"Command completed successfully"}}' },
    ]);
  });

  it('builds the data-download message of the spec, with and without data_context', async () => {
    const transport = new RecordingTransport();
    const publisher = new NotificationPublisher(transport);
    await publisher.publishDataDownload('bob', { id: 'b24b', dataContext: 'ctx', outputType: 1, body: 'https://download.example/p?auth=t' });
    await publisher.publishDataDownload('bob', { id: 'b24c', outputType: 0, body: 'preparing' });
    assert.deepEqual(
      transport.sent.map((s) => s.body),
      [
        '{"data":{"type":"X-DPT-CAB-REQUEST-ID","id":"b24b","data_context":"ctx","output_type":1,"body":"https://download.example/p?auth=t"}}',
        '{"data":{"type":"X-DPT-CAB-REQUEST-ID","id":"b24c","output_type":0,"body":"preparing"}}',
      ],
    );
  });

  it('sends a string message byte for byte and an object as JSON', async () => {
    const transport = new RecordingTransport();
    const publisher = new NotificationPublisher(transport);
    const raw = '{ "data" : {"type":"CUSTOM","id":"7","extra":[1,2]} }';
    await publisher.publish('carol', raw);
    await publisher.publish('carol', { data: { type: 'CUSTOM', id: '8' } });
    assert.deepEqual(
      transport.sent.map((s) => s.body),
      [raw, '{"data":{"type":"CUSTOM","id":"8"}}'],
    );
  });

  it('refuses invalid input before sending anything', async () => {
    const transport = new RecordingTransport();
    const publisher = new NotificationPublisher(transport);
    await assert.rejects(publisher.publishCommandStatus('alice', { id: 'x', status: 4 as 1, body: 'b' }), badRequest(/status must be 1/));
    await assert.rejects(publisher.publishCommandStatus('alice', { id: '', status: 1, body: 'b' }), badRequest(/id must be/));
    await assert.rejects(publisher.publishCommandStatus('alice', { id: 'x', status: 1 } as never), badRequest(/body must be a string/));
    await assert.rejects(publisher.publishDataDownload('alice', { id: 'x', outputType: 2 as 1, body: 'b' }), badRequest(/outputType must be 0/));
    await assert.rejects(publisher.publishCommandStatus('has space', { id: 'x', status: 1, body: 'b' }), badRequest(/profile id/));
    await assert.rejects(publisher.publish('alice', 'not json'), badRequest(/not JSON/));
    await assert.rejects(publisher.publish('alice', '{"data":{"type":"X"}}'), badRequest(/data.id/));
    await assert.rejects(publisher.publish('alice', { data: { id: '1' } } as never), badRequest(/data.type/));
    assert.deepEqual(transport.sent, []);
  });
});
