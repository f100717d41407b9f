import assert from 'node:assert/strict';
import { startGateway, type RunningGateway } from './gateway.js';
import { join, TestClient } from './ws-client.js';

/**
 * An in-process gateway whose static token `tok-<profile>` resolves to `profile`, and a client already
 * joined to that profile's channel. The caller closes both.
 */
export async function startJoinedGateway(profile: string, overrides: Record<string, unknown> = {}): Promise<{ gw: RunningGateway; client: TestClient }> {
  const token = `tok-${profile}`;
  const gw = await startGateway({ ...overrides, tokens: { kind: 'static', tokens: { [token]: profile } } });
  const client = await TestClient.connect(gw.wsUrl);
  assert.equal((await client.request(join(token))).status, 200);
  return { gw, client };
}
