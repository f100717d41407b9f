import { MemoryFleetBus, MemoryFleetSpace, MemoryLeases, MemoryMembership, MemoryModuleOverrides } from './backends/memory/memory-fleet.js';
import { RedisFleetBus } from './backends/redis/redis-fleet-bus.js';
import { RedisFleetLink } from './backends/redis/redis-fleet-link.js';
import { RedisLeases } from './backends/redis/redis-leases.js';
import { RedisMembership } from './backends/redis/redis-membership.js';
import { RedisModuleOverrides } from './backends/redis/redis-module-overrides.js';
import type { Config } from './config/schema.js';
import type { Clock } from './core/clock.js';
import type { FleetBus, FleetMembership, ModuleLeases, ModuleOverrides } from './core/fleet.js';
import type { Logger } from './core/logger.js';

/** With app.ts, the place that picks concrete backends: those of the control fleet. */
const singleNodeLeaseTtlMs = 365 * 24 * 3_600_000;

export interface FleetBackends {
  membership: FleetMembership;
  leases: ModuleLeases;
  overrides: ModuleOverrides;
  bus: FleetBus;
  start(): Promise<void>;
  close(): Promise<void>;
}

/** The control fleet over Redis with REDIS_URL; otherwise a fleet of one in memory (every module here). */
export function createFleetBackends(config: Config, nodeId: string, clock: Clock, log: Logger): FleetBackends {
  const { fleet, redisKeyPrefix } = config.control;
  if (!config.redisUrl) {
    const space = new MemoryFleetSpace(clock);
    const bus = new MemoryFleetBus(space, nodeId);
    return {
      membership: new MemoryMembership(space, nodeId, fleet),
      // A fleet of one: no other node can take a module, so its leases need not run out (a long stall
      // of the event loop must not unload every module).
      leases: new MemoryLeases(space, nodeId, singleNodeLeaseTtlMs),
      overrides: new MemoryModuleOverrides(space),
      bus,
      start: async () => {},
      close: () => bus.close(),
    };
  }
  const link = new RedisFleetLink({
    url: config.redisUrl,
    keyPrefix: redisKeyPrefix,
    connectionName: `switchboard-${nodeId}`,
    commandTimeoutMs: fleet.heartbeatIntervalMs,
    log,
  });
  const bus = new RedisFleetBus(link, nodeId, clock, log);
  return {
    membership: new RedisMembership(link, { nodeId, heartbeatIntervalMs: fleet.heartbeatIntervalMs, memberTtlMs: fleet.memberTtlMs, clock, log }),
    leases: new RedisLeases(link, nodeId, fleet.leaseTtlMs),
    overrides: new RedisModuleOverrides(link),
    bus,
    async start() {
      await link.start();
      await bus.start();
    },
    async close() {
      await bus.close();
      await link.close();
    },
  };
}
