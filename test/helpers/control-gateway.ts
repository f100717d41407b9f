import { z } from 'zod';
import { defineDriver, method } from '../../src/driver-api/driver-api.js';
import { demoControl, type RunningGateway, startGateway } from './gateway.js';
import { TestClient } from './ws-client.js';
import type { GatewayOptions } from '../../src/app.js';
import type { Principal } from '../../src/core/credentials.js';

export const controlPath = '/api/engine/v2/systems/control';

/** A test driver: `wait(ms)` answers after ms, `hang()` never answers. */
export const slowDriver = defineDriver({
  name: 'Slow',
  settings: z.object({}).default({}),
  load(mod) {
    return {
      methods: {
        wait: method({ ms: z.number().int().min(0) }, ({ ms }) => new Promise((resolve) => mod.after(ms, () => resolve(ms)))),
        hang: method({}, () => new Promise(() => {})),
      },
    };
  },
});

/**
 * The demo configuration plus `sys-test` (in no zone) holding a `Slow` module, with a short exec timeout.
 * Extra control settings are merged over it.
 */
/** An admin principal reaching every system, for calling the DriverHost directly in tests. */
export const adminCaller: Principal = {
  id: 'test',
  kind: 'api-key',
  clearance: 'admin',
  canPublish: false,
  systems: ['*'],
  zones: [],
  scopes: ['control'],
};

export function controlTestConfig(control: Record<string, unknown> = {}): Record<string, unknown> {
  const demo = demoControl() as { systems: unknown[]; modules: unknown[] };
  return {
    control: {
      ...demo,
      systems: [...demo.systems, { id: 'sys-test', name: 'Test Room', zones: [], modules: ['mod-slow-1'] }],
      modules: [...demo.modules, { id: 'mod-slow-1', driver: 'slow', settings: {} }],
      execTimeoutMs: 1_500,
      ...control,
    },
  };
}

export function startControlGateway(control: Record<string, unknown> = {}, options: Omit<GatewayOptions, 'config'> = {}): Promise<RunningGateway> {
  return startGateway(controlTestConfig(control), { ...options, drivers: { slow: slowDriver, ...options.drivers } });
}

export function connectControl(gw: RunningGateway, query = 'api-key=demo-admin-key', headers: Record<string, string> = {}): Promise<TestClient> {
  return TestClient.connect(`${gw.wsUrl}${controlPath}${query ? `?${query}` : ''}`, { headers });
}
