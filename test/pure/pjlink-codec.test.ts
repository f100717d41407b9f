import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { formatCommand, parseLine, parseRequest } from '../../src/drivers/pjlink/pjlink-codec.js';
import { LineSplitter } from '../../src/driver-api/transport/line-splitter.js';

describe('PJLink codec', () => {
  it('formats commands and queries with CR', () => {
    assert.equal(formatCommand('POWR', '1'), '%1POWR 1\r');
    assert.equal(formatCommand('INPT', '?'), '%1INPT ?\r');
  });

  const lines: Array<[string, ReturnType<typeof parseLine>]> = [
    ['PJLINK 0', { kind: 'greeting', auth: false }],
    ['PJLINK 1 498e4a67', { kind: 'greeting', auth: true, random: '498e4a67' }],
    ['PJLINK ERRA', { kind: 'auth-error' }],
    ['%1POWR=OK', { kind: 'answer', command: 'POWR', value: 'OK' }],
    ['%1INST=11 12 31', { kind: 'answer', command: 'INST', value: '11 12 31' }],
    ['%1INPT=ERR2', { kind: 'answer', command: 'INPT', value: 'ERR2' }],
    ['garbage', { kind: 'unknown', text: 'garbage' }],
  ];
  for (const [text, expected] of lines) it(`parses ${JSON.stringify(text)}`, () => assert.deepEqual(parseLine(text), expected));

  it('parses requests, with or without an authentication digest', () => {
    assert.deepEqual(parseRequest('%1POWR 1'), { kind: 'request', command: 'POWR', param: '1' });
    assert.deepEqual(parseRequest(`${'a'.repeat(32)}%1AVMT 31`, 32), { kind: 'request', command: 'AVMT', param: '31' });
    assert.deepEqual(parseRequest('POWR 1'), { kind: 'malformed' });
  });

  it('splits a stream into lines across chunks, tolerating LF and CRLF', () => {
    const splitter = new LineSplitter();
    assert.deepEqual(splitter.push('%1POW'), []);
    assert.deepEqual(splitter.push('R=OK\r%1INPT=31\r\n%1AV'), ['%1POWR=OK', '%1INPT=31']);
    assert.deepEqual(splitter.push('MT=30\n'), ['%1AVMT=30']);
  });
});
