import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { checkNotification, formatNotifyReply, parseNotifyRequest } from '../../src/protocol/notify.js';

describe('notification request parsing', () => {
  const accepted: Array<[string, unknown, object]> = [
    ['join', { action: 'joinChannel', correlationId: 'c', data: { authorizationToken: 'T' } }, { action: 'joinChannel', correlationId: 'c', authorizationToken: 'T' }],
    ['top-level token and correlation id', { action: 'joinChannel', correlationId: 7, authorizationToken: 'T' }, { action: 'joinChannel', correlationId: '7', authorizationToken: 'T' }],
    ['leave by channel id', { action: 'leaveChannel', data: { channelId: 'p' } }, { action: 'leaveChannel', channelId: 'p' }],
    ['leave by token', { action: 'leaveChannel', data: { authorizationToken: 'T' } }, { action: 'leaveChannel', authorizationToken: 'T' }],
  ];
  for (const [name, frame, request] of accepted) {
    it(`accepts ${name}`, () => assert.deepEqual(parseNotifyRequest(JSON.stringify(frame)), { ok: true, request }));
  }

  const refused: Array<[string, string, RegExp, string?]> = [
    ['malformed JSON', '{', /Malformed JSON/],
    ['a JSON array', '[]', /JSON object/],
    ['null', 'null', /JSON object/],
    ['no action', '{"correlationId":"c"}', /Missing field "action"/, 'c'],
    ['an unknown action', '{"action":"subscribe","correlationId":"c"}', /Unknown action "subscribe"/, 'c'],
    ['data that is not an object', '{"action":"joinChannel","data":"T"}', /"data" must be an object/],
    ['a join without token', '{"action":"joinChannel","data":{}}', /Missing field "data.authorizationToken"/],
    ['an empty token', '{"action":"joinChannel","data":{"authorizationToken":""}}', /non-empty string/],
    ['a leave naming nothing', '{"action":"leaveChannel"}', /authorizationToken" or "data.channelId/],
  ];
  for (const [name, text, message, correlationId] of refused) {
    it(`refuses ${name}`, () => {
      const result = parseNotifyRequest(text);
      assert.equal(result.ok, false);
      if (result.ok) return;
      assert.match(result.message, message);
      assert.equal(result.correlationId, correlationId);
    });
  }

  it('does not echo a long unknown action whole', () => {
    const result = parseNotifyRequest(JSON.stringify({ action: 'x'.repeat(500) }));
    assert.ok(!result.ok && result.message.length < 80);
  });
});

describe('notification replies', () => {
  it('puts correlationId first and omits it when absent', () => {
    assert.equal(formatNotifyReply({ status: 200, data: { channelId: 'p', message: 'm' }, correlationId: 'c' }), '{"correlationId":"c","status":200,"data":{"channelId":"p","message":"m"}}');
    assert.equal(formatNotifyReply({ status: 401, data: { message: 'm' } }), '{"status":401,"data":{"message":"m"}}');
  });
});

describe('queue message check', () => {
  const cases: Array<[string, string, string | undefined]> = [
    ['a command status', '{"data":{"type":"X-DPT-CAB-ID","id":"1","command_status":2}}', undefined],
    ['another type with an id', '{"data":{"type":"OTHER","id":"x"}}', undefined],
    ['not JSON', 'hello', 'not JSON'],
    ['an array', '[1]', 'not a JSON object'],
    ['no data', '{"type":"X"}', 'no "data" object'],
    ['no type', '{"data":{"id":"1"}}', 'no string "data.type"'],
    ['a numeric id', '{"data":{"type":"X","id":1}}', 'no string "data.id"'],
  ];
  for (const [name, body, reason] of cases) {
    it(`${reason ? 'refuses' : 'accepts'} ${name}`, () => {
      const result = checkNotification(Buffer.from(body));
      if (reason === undefined) assert.deepEqual(result, { ok: true });
      else assert.deepEqual(result, { ok: false, reason });
    });
  }
});
