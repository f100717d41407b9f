import assert from 'node:assert/strict';
import { readFileSync } from 'node:fs';
import { createGateway, type Gateway, type GatewayOptions } from '../../src/app.js';
import { type Config, configSchema } from '../../src/config/schema.js';
import { silentLogger } from '../../src/core/logger.js';
import { ownerOf } from '../../src/fleet/rendezvous.js';

export const demoTokens = { 'demo-token-alice': 'alice', 'demo-token-bob': 'bob' };
export const demoApiKeys = [
  { id: 'demo-admin', key: 'demo-admin-key', clearance: 'admin', publish: true, systems: ['*'], scopes: ['public', 'control'] },
  { id: 'demo-user', key: 'demo-user-key', clearance: 'user', publish: false, zones: ['zone-demo'], scopes: ['public', 'control'] },
];

/**
 * The control section of config/demo.json (zones, systems, modules of the demo), with every simulated
 * device on port 0 so parallel tests never collide.
 */
export function demoControl(): Record<string, unknown> {
  const demo = JSON.parse(readFileSync(new URL('../../../config/demo.json', import.meta.url), 'utf8')) as { control: Record<string, unknown> };
  const simulators = (demo.control.simulators as Array<Record<string, unknown>> | undefined) ?? [];
  return { ...demo.control, simulators: simulators.map((s) => ({ ...s, port: 0 })) };
}

/** A config for tests: port 0 on loopback, the demo credentials, overrides merged on top (shallow per section). */
export function testConfig(overrides: Record<string, unknown> = {}): Config {
  const base: Record<string, unknown> = {
    port: 0,
    host: '127.0.0.1',
    logLevel: 'silent',
    // A loaded machine can take seconds to reach RabbitMQ; tests wait for it rather than start without it.
    amqpStartTimeoutMs: 60_000,
    tokens: { kind: 'static', tokens: demoTokens },
    apiKeys: demoApiKeys,
    control: demoControl(),
  };
  // The token verifier is replaced as a whole (as TOKEN_VERIFIER does): another kind's keys merged into the
  // static one would be refused as unknown.
  if (overrides.tokens !== undefined) delete base.tokens;
  return configSchema.parse(deepMerge(base, overrides));
}

export interface RunningGateway {
  gateway: Gateway;
  port: number;
  url: string;
  wsUrl: string;
  close(): Promise<void>;
}

/** Starts an in-process gateway on an ephemeral port. Every test that calls it must call close(). */
export async function startGateway(
  overrides: Record<string, unknown> = {},
  options: Omit<GatewayOptions, 'config'> = {},
): Promise<RunningGateway> {
  const gateway = createGateway({ logger: silentLogger, ...options, config: testConfig(overrides) });
  const port = await gateway.listen();
  return {
    gateway,
    port,
    url: `http://127.0.0.1:${port}`,
    wsUrl: `ws://127.0.0.1:${port}`,
    close: () => gateway.close(),
  };
}

export function deepMerge(base: Record<string, unknown>, extra: Record<string, unknown>): Record<string, unknown> {
  const out: Record<string, unknown> = { ...base };
  for (const [key, value] of Object.entries(extra)) {
    const current = out[key];
    out[key] =
      isPlainObject(current) && isPlainObject(value) ? deepMerge(current, value) : value;
  }
  return out;
}

const isPlainObject = (v: unknown): v is Record<string, unknown> => v !== null && typeof v === 'object' && !Array.isArray(v);

/** A unique suffix so tests sharing one RabbitMQ/Redis never see each other's queues or keys. */
export function uniqueId(prefix: string): string {
  return `${prefix}-${process.pid}-${Date.now().toString(36)}-${Math.random().toString(36).slice(2, 8)}`;
}

/** Publishes a message for a profile through the gateway's HTTP endpoint with the demo admin key; expects 202. */
export async function publishOverHttp(gw: RunningGateway, profile: string, body: string): Promise<void> {
  const res = await fetch(`${gw.url}/api/notify/v1/profiles/${profile}/messages`, {
    method: 'POST',
    headers: { 'content-type': 'application/json', 'x-api-key': 'demo-admin-key' },
    body,
  });
  assert.equal(res.status, 202);
}

/**
 * Resolves once in-process gateways sharing one Redis run every module on the node that rendezvous
 * hashing ranks first among all of them, and nowhere else. That state is final (no node ranks higher, so
 * nothing moves again), so no quiet period is needed: right after a fleet starts, modules move to the
 * nodes that rank first for them (and a demo driver that moves starts again from its initial values).
 */
export async function fleetSettled(gateways: readonly RunningGateway[], timeoutMs = 15_000): Promise<void> {
  const nodes = gateways.map((g) => g.gateway.nodeId);
  const modules = gateways[0]!.gateway.directory.modules().map((m) => m.id);
  const expected = gateways.map((g) => modules.filter((m) => ownerOf(m, nodes) === g.gateway.nodeId).sort().join(','));
  const deadline = Date.now() + timeoutMs;
  for (;;) {
    const placed = gateways.map((g) => g.gateway.runtime.loadedModules().sort().join(','));
    if (placed.every((p, i) => p === expected[i])) return;
    if (Date.now() > deadline) throw new Error(`fleet not settled in ${timeoutMs} ms: ${placed.join(' | ')}; expected ${expected.join(' | ')}`);
    await new Promise((resolve) => setTimeout(resolve, 20));
  }
}
