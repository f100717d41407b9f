import { randomBytes } from 'node:crypto';
import { hostname } from 'node:os';
import { createServer as createHttpServer } from 'node:http';
import { createServer as createHttpsServer, type Server as HttpsServer } from 'node:https';
import Fastify, { type FastifyInstance } from 'fastify';
import type { BackendHealth } from './core/backend-state.js';
import { type Clock, systemClock } from './core/clock.js';
import type { Logger } from './core/logger.js';
import type { NotificationBroker } from './core/notification-broker.js';
import type { DriverHost } from './core/driver-host.js';
import type { StatusStore } from './core/status-store.js';
import type { SystemDirectory } from './core/system-directory.js';
import type { Config } from './config/schema.js';
import { MemoryBroker } from './backends/memory/memory-broker.js';
import { AmqpBroker } from './backends/rabbitmq/amqp-broker.js';
import { MemoryStatusStore } from './backends/memory/memory-status-store.js';
import { RedisStatusStore } from './backends/redis/redis-status-store.js';
import type { ModuleId } from './core/ids.js';
import { bundledDrivers } from './drivers/bundled-drivers.js';
import { buildSystemDirectory } from './control/config-system-directory.js';
import { ControlCommands } from './control/control-commands.js';
import { ExecRateLimits } from './control/exec-rate-limits.js';
import { registerSystemLookups } from './control/system-lookups.js';
import type { DriverRegistry } from './driver-api/driver-api.js';
import { createFleetBackends } from './fleet-backends.js';
import { ModulePlacement } from './fleet/module-placement.js';
import { RoutedDriverHost } from './fleet/routed-driver-host.js';
import { DeviceSimulators } from './simulators/device-simulators.js';
import { ModuleRuntime } from './runtime/module-runtime.js';
import { HostedModuleRuntime } from './runtime/hosted-module-runtime.js';
import type { ModuleRunner } from './runtime/module-runner.js';
import { ModuleRunners } from './runtime/module-runners.js';
import { type DriverFile, driverFileStub } from './runtime/hosts/driver-files.js';
import { ConfigCredentialStore } from './backends/credentials/config-credential-store.js';
import { PlaceJwtAuthenticator } from './backends/credentials/jwt-authenticator.js';
import { controlPath, createControlRoute } from './control/control-route.js';
import { registerAuthAuthority } from './http/auth-authority.js';
import { registerControlRest } from './http/control-rest.js';
import { CachingTokenVerifier } from './backends/tokens/caching-verifier.js';
import { createTokenVerifier } from './backends/tokens/create-token-verifier.js';
import { registerCors } from './http/cors.js';
import { readTls } from './http/tls.js';
import { installErrorHandling } from './http/errors.js';
import { registerAdminStats } from './http/admin-stats.js';
import { readLiveMetrics } from './observability/live-reading.js';
import { LiveSampler } from './observability/live-series.js';
import { registerConsoleFiles } from './http/console-files.js';
import { registerHealth, type WorkerIdentity } from './http/health.js';
import { registerMetrics } from './http/metrics.js';
import { registerNotifyPublish } from './http/notify-publish.js';
import { ProfileHub } from './notify/profile-hub.js';
import { createNotifyRoute } from './notify/notify-route.js';
import { trackBackendState } from './observability/backend-metrics.js';
import { createLogger } from './observability/logger.js';
import { GatewayMetrics } from './observability/metrics.js';
import { meterExecs } from './observability/metered-driver-host.js';
import { WebSocketGateway } from './transport/websocket-gateway.js';

export interface GatewayOptions {
  config: Config;
  /** The configuration file, for resolving relative paths in it. */
  configFile?: string;
  logger?: Logger;
  clock?: Clock;
  /**
   * Drivers added to (or replacing) the bundled ones, by driver key. Objects cannot cross a process
   * boundary: these run in the gateway's own process (tests, embedding); bundled drivers and driver files
   * run in driver hosts.
   */
  drivers?: DriverRegistry;
  /** Driver files named in the configuration, as describeDriverFiles found them (main.ts). */
  driverFiles?: Record<string, DriverFile>;
  /** Set when this gateway is worker `index` of `count` under a primary (`workers` > 1; cluster/). */
  worker?: WorkerIdentity;
}

export interface Gateway {
  readonly nodeId: string;
  readonly http: FastifyInstance;
  readonly broker: NotificationBroker;
  readonly hub: ProfileHub;
  /** Control channel: configured systems, zones and modules. */
  readonly directory: SystemDirectory;
  /** Control channel: status variables and the system lookup (memory, or Redis with redisUrl). */
  readonly store: StatusStore;
  /** Control channel: runs the modules wherever they are placed (exec, functions, debug). */
  readonly drivers: DriverHost;
  /** Control channel: the modules this node runs and the placement that decides which. */
  readonly runtime: ModuleRunner;
  readonly placement: ModulePlacement;
  readonly metrics: GatewayMetrics;
  readonly log: Logger;
  /** Starts the backends and listens; resolves with the bound port. */
  listen(): Promise<number>;
  /** Stops accepting, hands broker consumers over, closes sockets with 1001. */
  close(): Promise<void>;
  /**
   * Reads the TLS certificate and key again and uses them for new connections; open sockets keep theirs.
   * A file that cannot be read leaves the current ones in place (and says so in the log).
   */
  reloadTls(): void;
}

/** The one place that picks concrete backends and wires them together. */
export function createGateway(options: GatewayOptions): Gateway {
  const { config } = options;
  const nodeId = config.nodeId ?? `${hostname()}-${process.pid}-${randomBytes(3).toString('hex')}`;
  const log = options.logger ?? createLogger(config.logLevel, nodeId, undefined, config.logFormat);
  const clock = options.clock ?? systemClock;
  const metrics = new GatewayMetrics();
  if (options.worker) metrics.registry.setDefaultLabels({ worker: String(options.worker.index) });

  const brokerLog = log.child({ component: 'broker' });
  const broker: NotificationBroker = config.amqpUrl
    ? new AmqpBroker({
        url: config.amqpUrl,
        nodeId,
        queuePrefix: config.notify.queuePrefix,
        deadLetterQueue: config.notify.deadLetterQueue,
        retention: config.notify.retention,
        nodeQueueExpiresMs: config.notify.nodeQueueExpiresMs,
        prefetch: config.notify.prefetch,
        startTimeoutMs: config.amqpStartTimeoutMs,
        log: brokerLog,
        metrics,
      })
    : new MemoryBroker(config.notify.retention, clock, brokerLog, metrics, config.notify.prefetch);
  const verifier = new CachingTokenVerifier(createTokenVerifier(config.tokens, options.configFile, log.child({ component: 'tokens' }), clock), {
    ttlMs: config.notify.tokenCacheMs,
    maxEntries: config.notify.tokenCacheMaxEntries,
    clock,
  });
  const credentials = new ConfigCredentialStore(config.apiKeys);
  const hub = new ProfileHub(broker, log.child({ component: 'hub' }), metrics, {
    maxMessageBytes: config.notify.maxMessageBytes,
    ackResumeMs: config.notify.ackResumeMs,
    clock,
  });
  const driverFiles = options.driverFiles ?? {};
  const driverRegistry: DriverRegistry = {
    ...bundledDrivers,
    ...Object.fromEntries(Object.entries(driverFiles).map(([key, described]) => [key, driverFileStub(described)])),
    ...options.drivers,
  };
  const directory = buildSystemDirectory(config.control, driverRegistry);
  const store: StatusStore = config.redisUrl
    ? new RedisStatusStore({
        url: config.redisUrl,
        keyPrefix: config.control.redisKeyPrefix,
        connectionName: `switchboard-${nodeId}`,
        log: log.child({ component: 'state' }),
      })
    : new MemoryStatusStore(log.child({ component: 'state' }));
  const moduleIds = directory.modules().map((m) => m.id);
  const simulators = new DeviceSimulators(config.control.simulators, log.child({ component: 'simulators' }), clock);
  const fleet = createFleetBackends(config, nodeId, clock, log.child({ component: 'fleet' }));
  const driversLog = log.child({ component: 'drivers' });
  const inline = new ModuleRuntime({
    devices: () => simulators.addresses(),
    directory,
    drivers: driverRegistry,
    store,
    clock,
    log: driversLog,
    execTimeoutMs: config.control.execTimeoutMs,
    publishLine: (line) => fleet.bus.publishLog(line),
    maxStatusBytes: config.control.maxStatusBytes,
  });
  const hosted = new HostedModuleRuntime({
    modules: directory,
    sourceOf: (key) => (driverFiles[key] ? { key, file: driverFiles[key].file } : { key }),
    store,
    devices: () => simulators.addresses(),
    publishLine: (line) => fleet.bus.publishLog(line),
    onModuleState: (module, outcome) => placement.moduleStateChanged(module, outcome),
    clock,
    log: driversLog,
    metrics,
    execTimeoutMs: config.control.execTimeoutMs,
    maxStatusBytes: config.control.maxStatusBytes,
    hosts: config.control.hosts,
  });
  const isHosted = (key: string) =>
    config.control.hosts.isolate && !Object.hasOwn(options.drivers ?? {}, key) && (Object.hasOwn(bundledDrivers, key) || Object.hasOwn(driverFiles, key));
  const runtime = new ModuleRunners(directory, isHosted, hosted, inline);
  const placement = new ModulePlacement({
    nodeId,
    modules: moduleIds,
    membership: fleet.membership,
    leases: fleet.leases,
    overrides: fleet.overrides,
    runtime,
    clock,
    log: log.child({ component: 'placement' }),
    metrics,
    renewIntervalMs: config.control.fleet.heartbeatIntervalMs,
    stopMarginMs: config.control.fleet.stopMarginMs,
  });
  const drivers = new RoutedDriverHost({
    nodeId,
    runtime,
    leases: fleet.leases,
    bus: fleet.bus,
    stoppedBy: async (module) => (await fleet.overrides.get(module)).stopped?.by,
    metrics,
    log: log.child({ component: 'routing' }),
    clock,
    requestTimeoutMs: config.control.execTimeoutMs,
    retryIntervalMs: Math.min(100, config.control.fleet.heartbeatIntervalMs),
  });
  fleet.membership.onChange(() => drivers.placementChanged());
  const meteredDrivers = meterExecs(drivers, metrics);
  const commands = new ControlCommands({
    directory,
    host: meteredDrivers,
    clock,
    execTimeoutMs: config.control.execTimeoutMs,
    maxArgsBytes: config.control.maxArgsBytes,
    rateLimits: new ExecRateLimits(config.control.execsPerSecondPerCredential, clock),
  });
  const backends: BackendHealth[] = [broker, store, ...(config.redisUrl ? [fleet.membership] : [])];

  let tlsServer: HttpsServer | undefined;
  // maxParamLength: a long path parameter must reach the route, which answers 400 in the project's own
  // error shape (fastify's own answer to one over its limit is a 414 of another shape).
  // The server checks header and request timeouts every second (Node's default check runs every 30 s, so
  // a client dripping headers was held for over a minute).
  const http = Fastify({
    logger: false,
    forceCloseConnections: true,
    bodyLimit: 1024 * 1024,
    routerOptions: { maxParamLength: 2048 },
    serverFactory: (handler) => {
      const timeouts = { headersTimeout: config.headersTimeoutMs, requestTimeout: config.requestTimeoutMs, connectionsCheckingInterval: 1_000 };
      if (!config.tls) return createHttpServer(timeouts, handler);
      tlsServer = createHttpsServer({ ...timeouts, ...readTls(config.tls, options.configFile) }, handler);
      return tlsServer as unknown as ReturnType<typeof createHttpServer>;
    },
  });
  installErrorHandling(http, log);
  registerCors(http, config.allowedOrigins);
  registerHealth(http, nodeId, () => backends, options.worker);
  registerMetrics(http, metrics, options.worker?.clusterMetrics);
  registerNotifyPublish(http, { broker, credentials, log: log.child({ component: 'publish' }), metrics, maxBodyBytes: 1024 * 1024, maxMessageBytes: config.notify.maxMessageBytes });
  const controlAuth = {
    credentials,
    allowedOrigins: config.allowedOrigins,
    ...(config.control.jwt && { jwt: new PlaceJwtAuthenticator(config.control.jwt) }),
  };
  const controlLog = log.child({ channel: 'control' });
  registerAuthAuthority(http);
  // A lease outlives a node that died (until its TTL): what that node last reported is stale.
  const placements = async (modules: readonly ModuleId[]) => {
    const placed = await fleet.leases.placements(modules);
    const live = new Set(fleet.membership.live());
    for (const [module, record] of placed) {
      if (!live.has(record.node)) placed.set(module, { node: record.node, running: false, reason: `its node ${record.node} is gone; moving` });
    }
    return placed;
  };
  registerControlRest(http, {
    auth: controlAuth,
    directory,
    store,
    commands,
    placements,
    log: controlLog,
    moduleAdmin: {
      directory,
      store,
      host: meteredDrivers,
      overrides: fleet.overrides,
      placements,
      announce: () => fleet.membership.announce(),
      publishLine: (line) => fleet.bus.publishLog(line),
      log: controlLog,
      settleTimeoutMs: config.control.execTimeoutMs,
    },
  });

  const sockets = new WebSocketGateway(http.server, {
    heartbeatIntervalMs: config.heartbeatIntervalMs,
    clock,
    maxBufferedBytes: config.maxBufferedBytes,
    maxConnectionsPerAddress: config.maxConnectionsPerAddress,
    maxConnectionsPerCredential: config.maxConnectionsPerCredential,
    nodeId,
    log: log.child({ component: 'transport' }),
    metrics,
  });
  sockets.route(
    '/',
    createNotifyRoute({
      hub,
      broker,
      verifier,
      clock,
      log: log.child({ channel: 'notify' }),
      metrics,
      options: { ...config.notify, ackWindow: config.notify.ackWindow ?? config.notify.prefetch },
    }),
  );

  sockets.route(
    controlPath,
    createControlRoute({
      auth: controlAuth,
      directory,
      store,
      commands,
      host: meteredDrivers,
      clock,
      log: controlLog,
      metrics,
      options: {
        pongIntervalMs: config.control.pongIntervalMs,
        maxFrameBytes: config.control.maxFrameBytes,
        maxBindingsPerSocket: config.control.maxBindingsPerSocket,
        execsPerSecondPerSocket: config.control.execsPerSecondPerSocket,
      },
    }),
  );

  // Two-second points over five minutes: the console polls every two seconds and shows the last minutes.
  const live = new LiveSampler({ clock, intervalMs: 2_000, windowMs: 300_000, read: () => readLiveMetrics(metrics), onError: (err) => log.warn({ err }, 'live chart sample failed') });
  registerAdminStats(http, {
    credentials,
    nodeId,
    sockets: () => sockets.counts(),
    profiles: () => hub.snapshot(),
    backends: () => backends,
    fleet: async () => {
      const placed = await placements(moduleIds);
      return { nodes: fleet.membership.live(), modules: Object.fromEntries(moduleIds.map((id) => [id, placed.get(id) ?? null])) };
    },
    live: () => live.series.snapshot(),
  });
  registerConsoleFiles(http, { log: log.child({ component: 'console' }) });

  trackBackendState(broker, metrics);
  trackBackendState(store, metrics);

  return {
    nodeId,
    http,
    broker,
    hub,
    directory,
    store,
    drivers,
    runtime,
    placement,
    metrics,
    log,
    async listen() {
      await broker.start();
      await store.start();
      await fleet.start();
      await simulators.start();
      await registerSystemLookups(directory, store);
      await placement.start();
      await http.listen({ port: config.port, host: config.host });
      live.start();
      const address = http.server.address();
      const port = typeof address === 'object' && address ? address.port : config.port;
      log.info({ port, broker: broker.kind, tokens: verifier.kind, tls: config.tls !== undefined }, 'listening');
      return port;
    },
    reloadTls() {
      if (!config.tls || !tlsServer) return;
      try {
        tlsServer.setSecureContext(readTls(config.tls, options.configFile));
        log.info({ certFile: config.tls.certFile }, 'TLS certificate reloaded');
      } catch (err) {
        log.error({ err: (err as Error).message }, 'TLS certificate not reloaded; the current one stays');
      }
    },
    async close() {
      live.stop();
      const closed = http.close();
      await sockets.close();
      await hub.drain();
      await broker.close();
      await placement.stop();
      await runtime.stop();
      await fleet.close();
      await simulators.stop();
      await store.close();
      await verifier.close?.();
      await closed;
      log.info('stopped');
    },
  };
}
