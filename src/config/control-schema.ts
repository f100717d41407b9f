import { z } from 'zod';
import { controlJwtSchema } from './control-jwt-schema.js';

/** A zone groups systems (a building, a floor); credentials may reach every system of a zone. */
const zoneSchema = z.strictObject({
  id: z.string().min(1),
  name: z.string().min(1),
  description: z.string().optional(),
});

/** A system (room): an ordered list of module ids, in zero or more zones. */
const systemSchema = z.strictObject({
  id: z.string().min(1),
  name: z.string().min(1),
  description: z.string().optional(),
  zones: z.array(z.string().min(1)).default([]),
  /** Module ids in system order: the index of `Display` 2 is its position among the `Display` modules. */
  modules: z.array(z.string().min(1)).default([]),
});

/** A module: one running instance of a driver, with its settings (checked by the driver's own schema). */
const moduleSchema = z.strictObject({
  id: z.string().min(1),
  /**
   * A bundled driver's key (src/drivers/bundled-drivers.ts), e.g. `display`, or an ES module file whose
   * default export is a defineDriver(...) result: a path starting with `./`, `../` or `/`, relative to the
   * configuration file.
   */
  driver: z.string().min(1),
  /** Custom name inside systems; default: the driver's generic name (e.g. `Display`). */
  name: z.string().min(1).optional(),
  settings: z.record(z.string(), z.unknown()).default({}),
});

/** A simulated device the gateway starts on loopback for demos and tests (the drivers talk to it over TCP). */
const simulatorSchema = z.strictObject({
  id: z.string().min(1),
  kind: z.enum(['pjlink']),
  host: z.string().min(1).default('127.0.0.1'),
  /** 0 picks a free port (tests); modules reach it through settings `{"simulator": "<id>"}`. */
  port: z.number().int().min(0).max(65_535).default(0),
});

/**
 * The control fleet (README "Control fleet"), used with REDIS_URL. Failover after a node dies takes about
 * max(memberTtlMs, leaseTtlMs) + heartbeatIntervalMs + the module's load time.
 */
const fleetObjectSchema = z
  .strictObject({
    /** How often a node renews its membership and its modules' leases. */
    heartbeatIntervalMs: z.number().int().min(50).max(60_000).default(1_000),
    /** A node that sent no heartbeat for this long is no longer live; its modules move. */
    memberTtlMs: z.number().int().min(150).max(600_000).default(3_000),
    /** A module's lease runs out this long after its holder's last renewal. */
    leaseTtlMs: z.number().int().min(150).max(600_000).default(5_000),
    /** A node that cannot renew stops its modules this long before their leases could run out. */
    stopMarginMs: z.number().int().min(10).max(60_000).default(1_000),
  })
  .refine((f) => f.memberTtlMs >= 2 * f.heartbeatIntervalMs, { message: 'memberTtlMs must be at least 2 × heartbeatIntervalMs', path: ['memberTtlMs'] })
  .refine((f) => f.leaseTtlMs - f.stopMarginMs >= 2 * f.heartbeatIntervalMs, {
    message: 'leaseTtlMs - stopMarginMs must be at least 2 × heartbeatIntervalMs (a lease must survive one failed renewal)',
    path: ['leaseTtlMs'],
  });

/** Driver hosts (README "Driver hosts"): where driver code runs, and the watchdog over it. */
const hostsObjectSchema = z
  .strictObject({
    /** Run bundled drivers and driver files in host processes (false: in the gateway's own process). */
    isolate: z.boolean().default(true),
    /** How often a host reports that its event loop is alive. */
    heartbeatIntervalMs: z.number().int().min(20).max(60_000).default(500),
    /** A host silent for this long is killed and restarted (its event loop is blocked). */
    heartbeatTimeoutMs: z.number().int().min(100).max(600_000).default(3_000),
    /** V8 heap cap of each host (`--max-old-space-size`); past it the host dies and is restarted. */
    maxOldSpaceMb: z.number().int().min(16).max(65_536).default(256),
    /** First restart delay after a host stops; doubles on each restart up to restartMaxMs. */
    restartInitialMs: z.number().int().min(10).max(600_000).default(500),
    restartMaxMs: z.number().int().min(10).max(3_600_000).default(30_000),
  })
  .refine((h) => h.heartbeatTimeoutMs >= 2 * h.heartbeatIntervalMs, { message: 'heartbeatTimeoutMs must be at least 2 × heartbeatIntervalMs', path: ['heartbeatTimeoutMs'] });

/**
 * The control channel's part of the configuration (spec: control-protocol.md): zones, systems, modules and
 * their drivers, and the JWT settings for control credentials. Cross-entry checks (unknown driver,
 * duplicate id, bad settings) happen when the module runtime loads, with messages naming the entry.
 */
const controlObjectSchema = z
  .strictObject({
    /** An exec that has not returned after this long fails with error 7. */
    execTimeoutMs: z.number().int().min(10).max(600_000).default(10_000),
    /** Period of the unsolicited `pong` (PlaceOS: 80 s). */
    pongIntervalMs: z.number().int().min(100).default(80_000),
    /** JWTs accepted for the control channel; unset: only API keys (see control-jwt-schema.ts). */
    jwt: controlJwtSchema.optional(),
    /** Larger control frames close the socket with 1009. */
    maxFrameBytes: z.number().int().min(1_024).max(16 * 1024 * 1024).default(1024 * 1024),
    /** Execs one socket may make per second (bursts of twice that); past it, error 1 `too many requests`. */
    execsPerSecondPerSocket: z.number().min(0.1).max(1_000_000).default(100),
    /** Execs one credential may make per second over all its sockets and REST (bursts of twice that). */
    execsPerSecondPerCredential: z.number().min(0.1).max(1_000_000).default(1_000),
    /** Bindings one socket may hold; the next bind answers error 1 `too many bindings`. */
    maxBindingsPerSocket: z.number().int().min(1).max(1_000_000).default(1_000),
    /** A driver setting a status value larger than this (as JSON) raises (its exec answers error 3). */
    maxStatusBytes: z.number().int().min(64).max(16 * 1024 * 1024).default(64 * 1024),
    /** Exec arguments larger than this (as JSON) answer error 1 (socket) or 400 (REST). */
    maxArgsBytes: z.number().int().min(64).max(16 * 1024 * 1024).default(64 * 1024),
    zones: z.array(zoneSchema).default([]),
    systems: z.array(systemSchema).default([]),
    modules: z.array(moduleSchema).default([]),
    simulators: z.array(simulatorSchema).default([]),
    /** Prepended to every Redis key and channel of the status store and the fleet (default: none, PlaceOS layout). */
    redisKeyPrefix: z.string().default(''),
    fleet: fleetObjectSchema.default(() => fleetObjectSchema.parse({})),
    hosts: hostsObjectSchema.default(() => hostsObjectSchema.parse({})),
  });

export const controlConfigSchema = controlObjectSchema.default(() => controlObjectSchema.parse({}));

export type ControlConfig = z.infer<typeof controlConfigSchema>;
export type ZoneConfig = z.infer<typeof zoneSchema>;
export type SystemConfig = z.infer<typeof systemSchema>;
export type ModuleConfig = z.infer<typeof moduleSchema>;
export type SimulatorConfig = z.infer<typeof simulatorSchema>;
