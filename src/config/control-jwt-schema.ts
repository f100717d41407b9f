import { z } from 'zod';

/**
 * JWTs accepted on the control channel and its REST endpoints (spec: control-protocol.md, "Endpoint and
 * authentication"). Exactly one key source: an HS256 secret, an RS256 public key (PEM), or a JWKS URL.
 * PlaceOS claims are read: `sub` (credential id), `scope` (array or space-separated), `u.p` (permissions:
 * bit 0 support, bit 1 admin; PlaceOS UserJWT::Permissions User=0, Support=1, Admin=2, AdminSupport=3).
 * A token cannot name the systems it reaches, so every JWT reaches `systems` and `zones` below; admin
 * tokens reach every system.
 */
export const controlJwtSchema = z
  .strictObject({
    secret: z.string().min(16).optional(),
    publicKeyPem: z.string().min(1).optional(),
    jwksUrl: z.url().optional(),
    /** Default: HS256 for a secret, RS256 for a PEM key or JWKS. */
    algorithms: z.array(z.string().min(1)).optional(),
    issuer: z.string().min(1).optional(),
    /** PlaceOS puts the authority's domain in `aud`. */
    audience: z.string().min(1).optional(),
    /** Systems every JWT reaches; ["*"] for all. */
    systems: z.array(z.string().min(1)).default(['*']),
    zones: z.array(z.string().min(1)).default([]),
    /** Allowed clock skew when checking `exp`/`nbf`. */
    clockToleranceSec: z.number().int().min(0).max(600).default(30),
    /** Accept tokens without an `exp` claim (they never expire); refused by default. */
    allowNoExpiry: z.boolean().default(false),
  })
  .refine((v) => [v.secret, v.publicKeyPem, v.jwksUrl].filter(Boolean).length === 1, {
    message: 'exactly one of secret, publicKeyPem, jwksUrl is required',
  });

export type ControlJwtConfig = z.infer<typeof controlJwtSchema>;
