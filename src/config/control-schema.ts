import { z } from 'zod';
import { controlJwtSchema } from './control-jwt-schema.js';

/**
 * The control channel's part of the configuration (spec: control-protocol.md): zones, systems, modules and
 * their drivers, and the JWT settings for control credentials. Cross-entry checks (unknown driver,
 * duplicate id, bad settings) happen when the module runtime loads, with messages naming the entry.
 */
export const controlConfigSchema = z
  .object({
    /** An exec that has not returned after this long fails with error 7. */
    execTimeoutMs: z.number().int().min(10).max(600_000).default(10_000),
    /** Period of the unsolicited `pong` (PlaceOS: 80 s). */
    pongIntervalMs: z.number().int().min(100).default(80_000),
    /** JWTs accepted for the control channel; unset: only API keys (see control-jwt-schema.ts). */
    jwt: controlJwtSchema.optional(),
  })
  .loose()
  .default({ execTimeoutMs: 10_000, pongIntervalMs: 80_000 });

export type ControlConfig = z.infer<typeof controlConfigSchema>;
