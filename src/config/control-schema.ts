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
  /** Driver key as registered (src/drivers/bundled-drivers.ts), e.g. `display`. */
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
    zones: z.array(zoneSchema).default([]),
    systems: z.array(systemSchema).default([]),
    modules: z.array(moduleSchema).default([]),
    simulators: z.array(simulatorSchema).default([]),
    /** Prepended to every Redis key and channel of the status store (default: none, PlaceOS layout). */
    redisKeyPrefix: z.string().default(''),
  });

export const controlConfigSchema = controlObjectSchema.default(() => controlObjectSchema.parse({}));

export type ControlConfig = z.infer<typeof controlConfigSchema>;
export type ZoneConfig = z.infer<typeof zoneSchema>;
export type SystemConfig = z.infer<typeof systemSchema>;
export type ModuleConfig = z.infer<typeof moduleSchema>;
export type SimulatorConfig = z.infer<typeof simulatorSchema>;
