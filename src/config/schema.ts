import { z } from 'zod';
import { controlConfigSchema } from './control-schema.js';

/**
 * The whole configuration, every default documented here and in README.md "Configuration".
 * Sources, later wins: defaults < config file (SWITCHBOARD_CONFIG, else config/demo.json) < environment.
 * Every object is a z.strictObject: a misspelt key would otherwise start the gateway on a default without a
 * word (load.ts names it and the nearest known key; test/pure/config-unknown-keys.test.ts keeps them strict).
 */

const staticTokensSchema = z.strictObject({
  kind: z.literal('static'),
  /** token -> profile id, inline. */
  tokens: z.record(z.string().min(1), z.string().min(1)).default({}),
  /** A JSON file with the same map (resolved against the config file's folder). Merged over `tokens`. */
  file: z.string().min(1).optional(),
  /** Optional expiry per token (epoch ms or ISO-8601), for demos of expiry. */
  expiresAt: z.record(z.string(), z.union([z.number(), z.string()])).default({}),
});

const httpTokensSchema = z.strictObject({
  kind: z.literal('http'),
  /** Privicore API base URL: GET <baseUrl>/profile/retrieve-profile-id, POST <baseUrl>/profile/authorization-token/expiry */
  baseUrl: z.url(),
  /** Per request (each of the two calls); a slower answer counts as the service being unavailable. */
  timeoutMs: z.number().int().min(50).max(60_000).default(3_000),
});

const jwtTokensSchema = z
  .strictObject({
    kind: z.literal('jwt'),
    secret: z.string().min(16).optional(),
    publicKeyPem: z.string().min(1).optional(),
    jwksUrl: z.url().optional(),
    algorithms: z.array(z.string()).optional(),
    issuer: z.string().optional(),
    audience: z.string().optional(),
    /** Claim that holds the profile id. */
    profileClaim: z.string().min(1).default('sub'),
    /** Timeout of a JWKS download (jwksUrl only). */
    timeoutMs: z.number().int().min(50).max(60_000).default(3_000),
    /** Accept tokens without an `exp` claim (they never expire); refused by default. */
    allowNoExpiry: z.boolean().default(false),
  })
  .refine((v) => [v.secret, v.publicKeyPem, v.jwksUrl].filter(Boolean).length === 1, {
    message: 'exactly one of secret, publicKeyPem, jwksUrl is required',
  });

export const tokenVerifierSchema = z.discriminatedUnion('kind', [staticTokensSchema, httpTokensSchema, jwtTokensSchema]);

export const apiKeySchema = z
  .strictObject({
    id: z.string().min(1),
    /** The key in clear (demos) or its SHA-256 hex digest (production). */
    key: z.string().min(8).optional(),
    keySha256: z.string().regex(/^[0-9a-f]{64}$/i, 'must be a SHA-256 hex digest').optional(),
    clearance: z.enum(['user', 'support', 'admin']).default('user'),
    /** May publish notifications through POST /api/notify/v1/profiles/:profileId/messages. */
    publish: z.boolean().default(false),
    /** Systems reachable on the control channel; ["*"] for all. */
    systems: z.array(z.string().min(1)).default([]),
    zones: z.array(z.string().min(1)).default([]),
    scopes: z.array(z.string().min(1)).default(['public']),
  })
  .refine((k) => (k.key === undefined) !== (k.keySha256 === undefined), {
    message: 'exactly one of key, keySha256 is required',
  });

const retentionSchema = z.strictObject({
  /** Messages kept per profile while nobody is joined; the oldest is dropped (and logged) past it. */
  maxLength: z.number().int().min(1).max(10_000_000).default(10_000),
  /** A waiting message older than this is dropped (and logged). */
  messageTtlMs: z.number().int().min(1_000).default(7 * 24 * 3600_000),
  /** A profile queue nobody has consumed for this long is deleted. */
  queueExpiresMs: z.number().int().min(10_000).default(30 * 24 * 3600_000),
});

const notifySchema = z.strictObject({
  /** Per-profile queue name = prefix + profile id. */
  queuePrefix: z.string().min(1).default('message_to_user.'),
  /** Where invalid and retention-dropped messages go, for a person to inspect. */
  deadLetterQueue: z.string().min(1).default('switchboard.dead_letter'),
  joinDeadlineMs: z.number().int().min(100).default(30_000),
  /** How often a token of a joined socket is checked again (revocation). */
  tokenRevalidateMs: z.number().int().min(1_000).default(60_000),
  /** How long a verified token is cached. */
  tokenCacheMs: z.number().int().min(0).default(30_000),
  /** At most this many verified tokens are cached (least recently used dropped first). */
  tokenCacheMaxEntries: z.number().int().min(1).default(10_000),
  /** Frames larger than this close the socket with 1009. */
  maxFrameBytes: z.number().int().min(1_024).max(16 * 1024 * 1024).default(64 * 1024),
  /**
   * A queue message larger than this is dead-lettered, never written to a socket; the HTTP publish
   * endpoint refuses it with 400.
   */
  maxMessageBytes: z.number().int().min(1_024).max(16 * 1024 * 1024).default(64 * 1024),
  /** Client frames allowed per second (burst = 2x); beyond it requests get 429. */
  requestsPerSecond: z.number().min(1).default(20),
  retention: retentionSchema.default(retentionSchema.parse({})),
  /** A gateway node's relay queues are deleted this long after the node stopped consuming them (crash). */
  nodeQueueExpiresMs: z.number().int().min(10_000).default(300_000),
  /** RabbitMQ prefetch per consumer. */
  prefetch: z.number().int().min(1).max(65_535).default(500),
  /** Unacknowledged frames per ack-mode socket (spec: "Acknowledged delivery"). Unset: the prefetch. */
  ackWindow: z.number().int().min(1).max(65_535).optional(),
  /** An ack-mode socket that acknowledges nothing for this long while frames wait is closed with 4008. */
  ackTimeoutMs: z.number().int().min(100).max(3_600_000).default(30_000),
  /**
   * After an ack-mode socket of a profile drops (closes without leaving), the node keeps the profile's messages
   * unsettled this long, so an ack-mode client that joins again gets them even when another socket of the
   * profile was joined meanwhile. 0: no wait (a plain socket's write then settles them).
   */
  ackResumeMs: z.number().int().min(0).max(600_000).default(15_000),
});

export const configSchema = z.strictObject({
  port: z.number().int().min(0).max(65_535).default(8080),
  /**
   * Origins (e.g. `https://rooms.example`) whose pages may call the control channel and its REST with a
   * cookie or query credential, and get CORS answers; `*` for any. The gateway's own origin always may.
   */
  allowedOrigins: z.array(z.union([z.literal('*'), z.url()])).default([]),
  /**
   * Serve HTTPS and wss:// directly with this certificate chain and key (PEM files, relative to the
   * configuration file); reloaded on SIGHUP without dropping sockets. Unset: plain HTTP (put TLS in front).
   */
  tls: z.strictObject({ certFile: z.string().min(1), keyFile: z.string().min(1) }).optional(),
  /**
   * Open WebSocket connections one client address may hold; 0: no cap (the default: behind a load balancer
   * every client has the balancer's address; the gateway does not read X-Forwarded-For).
   */
  maxConnectionsPerAddress: z.number().int().min(0).default(0),
  /** Open control connections one credential may hold; 0: no cap. */
  maxConnectionsPerCredential: z.number().int().min(0).default(0),
  /** A client must send its request headers (an upgrade's too) within this long, else 408 and closed. */
  headersTimeoutMs: z.number().int().min(100).max(600_000).default(10_000),
  /** A whole HTTP request (headers and body) must arrive within this long. */
  requestTimeoutMs: z.number().int().min(100).max(3_600_000).default(30_000),
  host: z.string().min(1).default('0.0.0.0'),
  logLevel: z.enum(['fatal', 'error', 'warn', 'info', 'debug', 'trace', 'silent']).default('info'),
  /** auto: pretty lines when stdout is a terminal, JSON lines otherwise. */
  logFormat: z.enum(['auto', 'json', 'pretty']).default('auto'),
  /** Unset: the in-memory broker (one node). Set: RabbitMQ. */
  amqpUrl: z.string().regex(/^amqps?:\/\//, 'must start with amqp:// or amqps://').optional(),
  /** How long the start waits for RabbitMQ before serving with the broker down (joins 503, /health 503). */
  amqpStartTimeoutMs: z.number().int().min(100).max(600_000).default(10_000),
  /** Unset: in-memory state (one node). Set: Redis. */
  redisUrl: z.string().regex(/^rediss?:\/\//, 'must start with redis:// or rediss://').optional(),
  /** Name of this gateway node in logs, metrics and RabbitMQ connection names. Default: host name + pid. */
  nodeId: z.string().min(1).optional(),
  /**
   * Gateway processes behind the one port (node:cluster): 1 runs the gateway in this process, as before;
   * more forks that many workers, each a fleet node `<nodeId>-w<n>` (needs amqpUrl and redisUrl: the
   * memory broker and state are per process); `auto`: os.availableParallelism().
   */
  workers: z.union([z.literal('auto'), z.number().int().min(1).max(1024)]).default(1),
  /** Seconds of grace on SIGTERM before the process exits anyway. */
  shutdownTimeoutMs: z.number().int().min(100).max(60_000).default(8_000),
  /** Ping idle sockets this often; one that has not answered the previous ping is closed. */
  heartbeatIntervalMs: z.number().int().min(100).default(30_000),
  /** A socket with more unsent bytes than this is closed with 4008 (slow consumer). */
  maxBufferedBytes: z.number().int().min(1_024).default(4 * 1024 * 1024),
  tokens: tokenVerifierSchema.default({ kind: 'static', tokens: {}, expiresAt: {} }),
  apiKeys: z.array(apiKeySchema).default([]),
  notify: notifySchema.default(notifySchema.parse({})),
  control: controlConfigSchema,
  /** Marks a configuration that holds well-known demo credentials: starting with it logs a warning. */
  demo: z.boolean().default(false),
});

export type Config = z.infer<typeof configSchema>;
export type TokenVerifierConfig = z.infer<typeof tokenVerifierSchema>;
export type ApiKeyConfig = z.infer<typeof apiKeySchema>;
export type RetentionConfig = z.infer<typeof retentionSchema>;
