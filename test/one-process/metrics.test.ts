import assert from 'node:assert/strict';
import { after, before, describe, it } from 'node:test';
import { profileId } from '../../src/core/ids.js';
import { publishOverHttp, startGateway, uniqueId, type RunningGateway } from '../helpers/gateway.js';
import { captureLogs } from '../helpers/log-capture.js';
import { scrape, value, type Samples } from '../helpers/prometheus.js';
import { join, leave, TestClient } from '../helpers/ws-client.js';

/** GET /metrics as Prometheus scrapes it: the counters move when clients join, messages flow, frames are bad. */
describe('GET /metrics', () => {
  const run = uniqueId('metrics');
  const profile = `dana-${run}`;
  const token = `tok-dana-${run}`;
  let gw: RunningGateway;
  const clients: TestClient[] = [];
  const logs = captureLogs();
  const disconnects = () => logs.lines.filter((l) => l.msg === 'disconnected' && l.channel === 'notify').length;

  before(async () => {
    gw = await startGateway({ tokens: { kind: 'static', tokens: { [token]: profile } } }, { logger: logs.logger });
  });
  after(async () => {
    await Promise.all(clients.map((c) => c.close()));
    await gw.close();
  });

  const connect = async () => {
    const client = await TestClient.connect(gw.wsUrl);
    clients.push(client);
    return client;
  };
  const delta = (before: Samples, after: Samples, series: string) => value(after, series) - value(before, series);

  it('serves the Prometheus text format with the gateway series and the broker up', async () => {
    const res = await fetch(`${gw.url}/metrics`);
    assert.equal(res.status, 200);
    assert.match(res.headers.get('content-type') ?? '', /^text\/plain; version=0\.0\.4/);
    const text = await res.text();
    assert.match(text, /# TYPE switchboard_notify_joins_total counter/);
    assert.match(text, /# TYPE switchboard_notify_delivery_latency_seconds histogram/);
    const samples = await scrape(gw.url);
    assert.equal(value(samples, 'switchboard_backend_up{backend="broker"}'), 1);
    assert.equal(value(samples, 'switchboard_backend_reconnects_total{backend="broker"}'), 0);
    assert.ok(samples.has('process_resident_memory_bytes'), 'default process metrics are exported');
  });

  it('counts a socket, a join, a delivered message and a leave', async () => {
    const start = await scrape(gw.url);
    const client = await connect();
    const open = await scrape(gw.url);
    assert.equal(delta(start, open, 'switchboard_sockets_open{channel="notify"}'), 1);

    assert.equal((await client.request(join(token))).status, 200);
    const message = '{"data":{"type":"X-DPT-CAB-ID","id":"m-1","command_status":2}}';
    await publishOverHttp(gw, profile, message);
    assert.equal(await client.next(), message);
    assert.equal((await client.request(leave(profile))).status, 200);

    const done = await scrape(gw.url);
    assert.equal(delta(start, done, 'switchboard_notify_joins_total'), 1);
    assert.equal(delta(start, done, 'switchboard_notify_messages_published_total'), 1);
    assert.equal(delta(start, done, 'switchboard_notify_messages_received_total'), 1);
    assert.equal(delta(start, done, 'switchboard_notify_messages_written_total'), 1);
    assert.equal(delta(start, done, 'switchboard_notify_delivery_latency_seconds_count'), 1);
    assert.equal(delta(start, done, 'switchboard_notify_leaves_total{cause="request"}'), 1);

    const seen = disconnects();
    await client.close();
    // The server sees the close a moment after the client does: its 'disconnected' line says when.
    await logs.until(() => (disconnects() > seen ? true : undefined));
    const closed = await scrape(gw.url);
    assert.equal(delta(start, closed, 'switchboard_sockets_open{channel="notify"}'), 0);
  });

  it('counts bad frames, refused joins and dead-lettered queue messages', async () => {
    const start = await scrape(gw.url);
    const client = await connect();
    assert.equal((await client.request('{not json')).status, 400);
    client.ws.send(Buffer.from([1, 2, 3]), { binary: true });
    assert.equal((await client.nextJson()).status, 400);
    assert.equal((await client.request(join('no-such-token'))).status, 401);
    // A backend put something on the profile's queue that is not a notification.
    await gw.gateway.broker.publish(profileId(profile), Buffer.from('not a notification'));

    const done = await scrape(gw.url);
    assert.equal(delta(start, done, 'switchboard_bad_frames_total{channel="notify"}'), 2);
    assert.equal(delta(start, done, 'switchboard_notify_join_failures_total{reason="401"}'), 1);
    assert.equal(delta(start, done, 'switchboard_notify_joins_total'), 0);
    assert.equal(delta(start, done, 'switchboard_notify_messages_dead_lettered_total'), 0, 'kept while nobody is joined');

    const reader = await connect();
    assert.equal((await reader.request(join(token))).status, 200);
    const later = '{"data":{"type":"X-DPT-CAB-ID","id":"m-2"}}';
    await gw.gateway.broker.publish(profileId(profile), Buffer.from(later));
    assert.equal(await reader.next(), later, 'the invalid message is skipped, the next one delivered');
    const after = await scrape(gw.url);
    assert.equal(delta(start, after, 'switchboard_notify_messages_dead_lettered_total'), 1);
  });
});
