import { Counter, Gauge, Histogram, Registry, collectDefaultMetrics } from 'prom-client';

/**
 * Every metric the gateway exports, defined in one place (GET /metrics). One registry per gateway
 * instance, so several gateways in one test process do not share counters.
 */
export class GatewayMetrics {
  readonly registry = new Registry();
  /** Read at scrape time rather than pushed: backend states and the bytes waiting in socket buffers. */
  private readonly backendProbes = new Map<string, () => boolean>();
  private bufferedBytesSource: () => number = () => 0;

  readonly socketsOpen = new Gauge({
    name: 'switchboard_sockets_open',
    help: 'WebSocket connections open, by channel',
    labelNames: ['channel'] as const,
    registers: [this.registry],
  });
  readonly joins = new Counter({
    name: 'switchboard_notify_joins_total',
    help: 'Successful joinChannel requests',
    registers: [this.registry],
  });
  readonly joinFailures = new Counter({
    name: 'switchboard_notify_join_failures_total',
    help: 'Refused joinChannel requests, by reason',
    labelNames: ['reason'] as const,
    registers: [this.registry],
  });
  readonly leaves = new Counter({
    name: 'switchboard_notify_leaves_total',
    help: 'Channels left, by cause (request, expired, revoked, closed)',
    labelNames: ['cause'] as const,
    registers: [this.registry],
  });
  readonly badFrames = new Counter({
    name: 'switchboard_bad_frames_total',
    help: 'Client frames refused as malformed, by channel',
    labelNames: ['channel'] as const,
    registers: [this.registry],
  });
  readonly messagesReceived = new Counter({
    name: 'switchboard_notify_messages_received_total',
    help: 'Notification messages received from the broker',
    registers: [this.registry],
  });
  readonly messagesWritten = new Counter({
    name: 'switchboard_notify_messages_written_total',
    help: 'Notification messages written to sockets (one per socket)',
    registers: [this.registry],
  });
  readonly messagesDeadLettered = new Counter({
    name: 'switchboard_notify_messages_dead_lettered_total',
    help: 'Queue messages dead-lettered because they are not valid notifications',
    registers: [this.registry],
  });
  readonly messagesDroppedByRetention = new Counter({
    name: 'switchboard_notify_messages_dropped_by_retention_total',
    help: 'Messages dropped by the retention policy, by reason (maxlen, expired)',
    labelNames: ['reason'] as const,
    registers: [this.registry],
  });
  readonly messagesPublished = new Counter({
    name: 'switchboard_notify_messages_published_total',
    help: 'Messages published through the HTTP endpoint',
    registers: [this.registry],
  });
  readonly deliveryLatency = new Histogram({
    name: 'switchboard_notify_delivery_latency_seconds',
    help: 'From broker receipt to socket write (ack mode: to the client acknowledgement)',
    buckets: [0.0001, 0.00025, 0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.5],
    registers: [this.registry],
  });
  readonly unackedFrames = new Gauge({
    name: 'switchboard_notify_unacked_frames',
    help: 'Frames written to ack-mode sockets on this node and not yet acknowledged',
    registers: [this.registry],
  });
  readonly ackTimeouts = new Counter({
    name: 'switchboard_notify_ack_timeouts_total',
    help: 'Ack-mode sockets closed (4008) for acknowledging nothing within notify.ackTimeoutMs',
    registers: [this.registry],
  });
  readonly unackedRequeued = new Counter({
    name: 'switchboard_notify_unacked_requeued_total',
    help: 'Messages given back to the broker because an ack-mode socket closed or left without acknowledging them',
    registers: [this.registry],
  });
  readonly backendState = new Gauge({
    name: 'switchboard_backend_up',
    help: '1 when the backend is up, 0 otherwise',
    labelNames: ['backend'] as const,
    registers: [this.registry],
    collect: () => {
      for (const [backend, isUp] of this.backendProbes) this.backendState.set({ backend }, isUp() ? 1 : 0);
    },
  });
  readonly backendReconnects = new Counter({
    name: 'switchboard_backend_reconnects_total',
    help: 'Reconnections to a backend (broker, redis)',
    labelNames: ['backend'] as const,
    registers: [this.registry],
  });
  readonly execs = new Counter({
    name: 'switchboard_control_execs_total',
    help: 'exec requests by outcome (success, error, timeout)',
    labelNames: ['outcome'] as const,
    registers: [this.registry],
  });
  readonly execDuration = new Histogram({
    name: 'switchboard_control_exec_duration_seconds',
    help: 'exec duration by outcome',
    labelNames: ['outcome'] as const,
    buckets: [0.0005, 0.001, 0.005, 0.01, 0.05, 0.1, 0.5, 1, 5, 10, 30],
    registers: [this.registry],
  });
  readonly controlErrors = new Counter({
    name: 'switchboard_control_errors_total',
    help: 'Control error frames sent, by error_code',
    labelNames: ['code'] as const,
    registers: [this.registry],
  });
  readonly bufferedBytes = new Gauge({
    name: 'switchboard_socket_buffered_bytes',
    help: 'Bytes queued for slow sockets, summed over open sockets',
    registers: [this.registry],
    collect: () => {
      this.bufferedBytes.set(this.bufferedBytesSource());
    },
  });
  readonly backpressureCloses = new Counter({
    name: 'switchboard_backpressure_closes_total',
    help: 'Sockets closed because their unsent buffer passed the high-water mark',
    registers: [this.registry],
  });

  readonly fleetNodes = new Gauge({
    name: 'switchboard_fleet_nodes',
    help: 'Live control-fleet nodes as this node sees them',
    registers: [this.registry],
  });
  readonly modulesRunning = new Gauge({
    name: 'switchboard_fleet_modules_running',
    help: 'Modules running on this node',
    registers: [this.registry],
  });
  readonly placements = new Counter({
    name: 'switchboard_fleet_placements_total',
    help: 'Modules this node took the lease of and loaded',
    registers: [this.registry],
  });
  readonly moves = new Counter({
    name: 'switchboard_fleet_moves_total',
    help: 'Modules this node unloaded and handed over because another live node ranks first for them',
    registers: [this.registry],
  });
  readonly leaseLosses = new Counter({
    name: 'switchboard_fleet_lease_losses_total',
    help: 'Modules stopped because their lease could not be renewed in time or was taken',
    registers: [this.registry],
  });
  readonly routedExecs = new Counter({
    name: 'switchboard_fleet_routed_execs_total',
    help: 'exec and functions requests sent to the node running the module, by outcome (success, error, timeout, unavailable)',
    labelNames: ['outcome'] as const,
    registers: [this.registry],
  });

  readonly driverHosts = new Counter({
    name: 'switchboard_driver_hosts_started_total',
    help: 'Driver host processes started (one per driver with modules on this node, plus restarts)',
    registers: [this.registry],
  });
  readonly driverHostRestarts = new Counter({
    name: 'switchboard_driver_host_restarts_total',
    help: 'Driver hosts restarted after they exited, crashed, passed their memory cap or stopped their heartbeat',
    labelNames: ['driver'] as const,
    registers: [this.registry],
  });

  constructor() {
    collectDefaultMetrics({ register: this.registry });
  }

  /** `switchboard_backend_up{backend=name}` is read from `isUp` at every scrape. */
  probeBackend(name: string, isUp: () => boolean): void {
    this.backendProbes.set(name, isUp);
  }

  /** `switchboard_socket_buffered_bytes` is read from `source` at every scrape (the transport sums its sockets). */
  probeBufferedBytes(source: () => number): void {
    this.bufferedBytesSource = source;
  }
}
