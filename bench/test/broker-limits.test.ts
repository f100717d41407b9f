import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { brokerOpenFilesFrom } from '../lib/broker-limits.js';

describe('bench broker limits', () => {
  it("reads RabbitMQ's open-file limit from rabbitmqctl's JSON status, and nothing from anything else", () => {
    assert.equal(brokerOpenFilesFrom(JSON.stringify({ file_descriptors: { sockets_limit: 832, total_limit: 927, total_used: 4 } })), 927);
    assert.equal(brokerOpenFilesFrom(JSON.stringify({ file_descriptors: {} })), undefined);
    assert.equal(brokerOpenFilesFrom(JSON.stringify({ file_descriptors: { total_limit: 'infinity' } })), undefined);
    assert.equal(brokerOpenFilesFrom('Error: unable to perform an operation on node'), undefined);
    assert.equal(brokerOpenFilesFrom(''), undefined);
  });
});
