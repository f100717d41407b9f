import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { errorCodes, GatewayError } from '../../src/core/errors.js';
import { controlErrorCodeByCode, toControlError } from '../../src/protocol/control-errors.js';
import {
  debugFrame,
  errorFrame,
  execSuccessFrame,
  formatControlFrame,
  notifyFrame,
  parseControlRequest,
  successFrame,
} from '../../src/protocol/control.js';

const meta = { sys: 'sys-demo', mod: 'Display', index: 1, name: 'power' };

describe('parseControlRequest', () => {
  it('reads a bind, defaulting index to 1 and lower-casing cmd', () => {
    const r = parseControlRequest('{"id":1,"cmd":"BIND","sys":"sys-demo","mod":"Display","name":"power"}');
    assert.deepEqual(r, { ok: true, request: { id: 1, cmd: 'bind', sys: 'sys-demo', mod: 'Display', index: 1, name: 'power', args: [] } });
  });

  it('treats a null index as 1 and keeps exec args', () => {
    const r = parseControlRequest('{"id":7,"cmd":"exec","sys":"s","mod":"M","index":null,"name":"f","args":[true,{"a":1}]}');
    assert.ok(r.ok);
    assert.equal(r.request.index, 1);
    assert.deepEqual(r.request.args, [true, { a: 1 }]);
  });

  it('accepts debug and ignore without a name', () => {
    const r = parseControlRequest('{"id":3,"cmd":"ignore","sys":"s","mod":"mod-x","index":null}');
    assert.ok(r.ok);
    assert.equal(r.request.name, 'ignore');
  });

  const failures: Array<[string, string, number, 0 | 1 | 4]> = [
    ['not JSON', '{"id":1,', 0, 0],
    ['a JSON array', '[1]', 0, 1],
    ['no id', '{"cmd":"bind","sys":"s","mod":"M","name":"n"}', 0, 1],
    ['a string id', '{"id":"1","cmd":"bind","sys":"s","mod":"M","name":"n"}', 0, 1],
    ['a fractional id', '{"id":1.5,"cmd":"bind","sys":"s","mod":"M","name":"n"}', 0, 1],
    ['no cmd', '{"id":2,"sys":"s","mod":"M","name":"n"}', 2, 1],
    ['an unknown cmd', '{"id":3,"cmd":"explode","sys":"s","mod":"M","name":"n"}', 3, 4],
    ['no sys', '{"id":4,"cmd":"bind","mod":"M","name":"n"}', 4, 1],
    ['a numeric mod', '{"id":5,"cmd":"bind","sys":"s","mod":5,"name":"n"}', 5, 1],
    ['no name on bind', '{"id":6,"cmd":"bind","sys":"s","mod":"M"}', 6, 1],
    ['index 0', '{"id":7,"cmd":"bind","sys":"s","mod":"M","index":0,"name":"n"}', 7, 1],
    ['a string index', '{"id":8,"cmd":"bind","sys":"s","mod":"M","index":"2","name":"n"}', 8, 1],
    ['args not an array', '{"id":9,"cmd":"exec","sys":"s","mod":"M","name":"n","args":true}', 9, 1],
  ];
  for (const [what, text, id, errorCode] of failures) {
    it(`refuses ${what} with error ${errorCode}`, () => {
      const r = parseControlRequest(text);
      assert.equal(r.ok, false);
      if (r.ok) return;
      assert.equal(r.id, id);
      assert.equal(r.errorCode, errorCode);
      assert.ok(r.message.length > 0);
    });
  }
});

describe('control frames', () => {
  it('keeps the spec key order and splices value as raw JSON', () => {
    assert.equal(
      formatControlFrame({ code: 200, meta, value: '{"ok":true}', type: 'success', id: 2 }),
      '{"id":2,"type":"success","value":{"ok":true},"meta":{"sys":"sys-demo","mod":"Display","index":1,"name":"power"},"code":200}',
    );
    assert.equal(
      formatControlFrame({ level: 'debug', mod: 'mod-1', meta, error_code: 3, value: 'null', msg: 'm', type: 'debug', id: 9, code: 1 }),
      '{"id":9,"type":"debug","msg":"m","value":null,"error_code":3,"meta":{"sys":"sys-demo","mod":"Display","index":1,"name":"power"},"mod":"mod-1","level":"debug","code":1}',
    );
  });

  it('formats each reply as the spec shows it', () => {
    assert.equal(successFrame(1, meta), '{"id":1,"type":"success","meta":{"sys":"sys-demo","mod":"Display","index":1,"name":"power"}}');
    assert.equal(successFrame(3), '{"id":3,"type":"success"}');
    assert.equal(notifyFrame(1, 'true', meta), '{"id":1,"type":"notify","value":true,"meta":{"sys":"sys-demo","mod":"Display","index":1,"name":"power"}}');
    // The part after the id is reused between frames of one change; any other value or meta rebuilds it.
    assert.equal(notifyFrame(7, 'true', { ...meta }), '{"id":7,"type":"notify","value":true,"meta":{"sys":"sys-demo","mod":"Display","index":1,"name":"power"}}');
    assert.equal(notifyFrame(7, 'false', meta), '{"id":7,"type":"notify","value":false,"meta":{"sys":"sys-demo","mod":"Display","index":1,"name":"power"}}');
    assert.equal(notifyFrame(7, 'false', { ...meta, index: 2 }), '{"id":7,"type":"notify","value":false,"meta":{"sys":"sys-demo","mod":"Display","index":2,"name":"power"}}');
    assert.equal(notifyFrame(7, 'false', { ...meta, name: 'input' }), '{"id":7,"type":"notify","value":false,"meta":{"sys":"sys-demo","mod":"Display","index":1,"name":"input"}}');
    assert.equal(notifyFrame(7, 'false', { ...meta, sys: 's2' }), '{"id":7,"type":"notify","value":false,"meta":{"sys":"s2","mod":"Display","index":1,"name":"power"}}');
    assert.equal(notifyFrame(7, 'false', { ...meta, mod: 'M' }), '{"id":7,"type":"notify","value":false,"meta":{"sys":"sys-demo","mod":"M","index":1,"name":"power"}}');
    assert.equal(execSuccessFrame(2, 'null', meta, 200), '{"id":2,"type":"success","value":null,"meta":{"sys":"sys-demo","mod":"Display","index":1,"name":"power"},"code":200}');
    assert.equal(errorFrame(2, 1, 'could not find function powr'), '{"id":2,"type":"error","msg":"could not find function powr","error_code":1,"code":500}');
    assert.equal(
      debugFrame(5, 'input changed to HDMI', { sys: 'sys-demo', mod: 'mod-display1', index: 1, name: 'debug' }, 'mod-display1', 'debug'),
      '{"id":5,"type":"debug","msg":"input changed to HDMI","meta":{"sys":"sys-demo","mod":"mod-display1","index":1,"name":"debug"},"mod":"mod-display1","level":"debug"}',
    );
  });

  it('escapes strings in messages and meta', () => {
    const frame = JSON.parse(errorFrame(1, 1, 'bad "quote"\n')) as { msg: string };
    assert.equal(frame.msg, 'bad "quote"\n');
  });
});

describe('control error table', () => {
  it('maps every GatewayError code to 0-7', () => {
    for (const code of errorCodes) {
      const n = controlErrorCodeByCode[code];
      assert.ok(Number.isInteger(n) && n >= 0 && n <= 7, code);
    }
    assert.equal(controlErrorCodeByCode.system_not_found, 5);
    assert.equal(controlErrorCodeByCode.module_not_found, 6);
    assert.equal(controlErrorCodeByCode.forbidden, 2);
    assert.equal(controlErrorCodeByCode.request_failed, 3);
    assert.equal(controlErrorCodeByCode.timeout, 7);
  });

  it('sends a GatewayError message, and never the message of anything else', () => {
    assert.deepEqual(toControlError(new GatewayError('request_failed', 'module raised: boom (Error)')), {
      errorCode: 3,
      message: 'module raised: boom (Error)',
      expected: true,
    });
    const other = toControlError(new TypeError('secret internals at /app/src/x.ts:1'));
    assert.equal(other.errorCode, 7);
    assert.doesNotMatch(other.message, /secret|\.ts/);
  });
});
