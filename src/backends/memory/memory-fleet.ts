import type { BackendState } from '../../core/backend-state.js';
import type { Clock } from '../../core/clock.js';
import type { DriverLogLine } from '../../core/driver-host.js';
import { GatewayError, isGatewayError } from '../../core/errors.js';
import {
  type FleetBus,
  type FleetMembership,
  type FleetRequest,
  type Lease,
  type ModuleLeases,
  type ModuleOverride,
  type ModuleOverrides,
  type ModulePlacementRecord,
  type NodeId,
  notDelivered,
  wasNotDelivered,
} from '../../core/fleet.js';
import type { ModuleId } from '../../core/ids.js';
import { MembershipView } from '../../core/membership-view.js';

/**
 * The fleet boundaries in one process: the single-node default (one node, every module its own) and the
 * twin the placement tests run several nodes on. Single-node limit: nothing leaves this process, so two
 * gateway processes never see each other; a fleet needs Redis.
 */
export class MemoryFleetSpace {
  readonly nodes = new Map<NodeId, number>();
  readonly leases = new Map<ModuleId, { node: NodeId; token: number; expiresAt: number }>();
  /** What each lease's holder reported, with the lease's token (a report outlives its lease otherwise). */
  readonly reports = new Map<ModuleId, ModulePlacementRecord & { token: number }>();
  readonly tokens = new Map<ModuleId, number>();
  readonly handlers = new Map<NodeId, (request: FleetRequest) => Promise<unknown>>();
  readonly logListeners = new Map<ModuleId, Set<(line: DriverLogLine) => void>>();
  readonly changeListeners = new Set<() => void>();
  readonly overrides = new Map<ModuleId, ModuleOverride>();
  /** Nodes a test has cut off: their calls fail as with an unreachable store. */
  readonly cut = new Set<NodeId>();

  constructor(readonly clock: Clock) {}

  holderOf(module: ModuleId): { node: NodeId; token: number } | undefined {
    const lease = this.leases.get(module);
    if (!lease) return undefined;
    if (lease.expiresAt > this.clock.now()) return lease;
    this.leases.delete(module);
    return undefined;
  }

  changed(): void {
    for (const listener of [...this.changeListeners]) listener();
  }

  reachable(node: NodeId): void {
    if (this.cut.has(node)) throw new GatewayError('unavailable', 'fleet store unreachable');
  }
}

export interface MemoryFleetOptions {
  heartbeatIntervalMs: number;
  memberTtlMs: number;
  leaseTtlMs: number;
}

export class MemoryMembership implements FleetMembership {
  readonly name = 'fleet';
  readonly kind = 'memory';
  private readonly view = new MembershipView();
  private running = false;
  private cancelBeat: () => void = () => {};
  private readonly relay = () => this.refresh();

  constructor(
    private readonly space: MemoryFleetSpace,
    readonly nodeId: NodeId,
    private readonly options: MemoryFleetOptions,
  ) {}

  state(): BackendState {
    return this.running ? 'up' : 'down';
  }

  async start(): Promise<void> {
    this.running = true;
    this.space.changeListeners.add(this.relay);
    this.beat();
  }

  async stop(): Promise<void> {
    this.running = false;
    this.cancelBeat();
    this.space.changeListeners.delete(this.relay);
    this.space.nodes.delete(this.nodeId);
    this.space.changed();
  }

  live(): readonly NodeId[] {
    return this.view.live();
  }

  healthy(): boolean {
    return this.view.healthy();
  }

  onChange(listener: () => void): () => void {
    return this.view.onChange(listener);
  }

  async announce(): Promise<void> {
    this.space.changed();
  }

  private beat(): void {
    if (!this.running) return;
    const { space } = this;
    try {
      space.reachable(this.nodeId);
      const joined = !space.nodes.has(this.nodeId);
      space.nodes.set(this.nodeId, space.clock.now() + this.options.memberTtlMs);
      if (joined) space.changed();
      else this.refresh();
    } catch {
      this.view.failed();
    }
    this.cancelBeat = space.clock.schedule(this.options.heartbeatIntervalMs, () => this.beat());
  }

  private refresh(): void {
    if (!this.running || this.space.cut.has(this.nodeId)) return;
    const now = this.space.clock.now();
    for (const [node, expiresAt] of this.space.nodes) if (expiresAt <= now) this.space.nodes.delete(node);
    this.view.update([...this.space.nodes.keys()]);
  }
}

export class MemoryLeases implements ModuleLeases {
  constructor(
    private readonly space: MemoryFleetSpace,
    private readonly nodeId: NodeId,
    readonly ttlMs: number,
  ) {}

  async acquire(module: ModuleId): Promise<Lease | undefined> {
    const { space } = this;
    space.reachable(this.nodeId);
    if (space.holderOf(module)) return undefined;
    const token = (space.tokens.get(module) ?? 0) + 1;
    space.tokens.set(module, token);
    space.leases.set(module, { node: this.nodeId, token, expiresAt: space.clock.now() + this.ttlMs });
    return { module, token };
  }

  async renew(leases: readonly Lease[]): Promise<Set<ModuleId>> {
    const { space } = this;
    space.reachable(this.nodeId);
    const held = new Set<ModuleId>();
    for (const lease of leases) {
      const current = space.holderOf(lease.module);
      if (current?.node !== this.nodeId || current.token !== lease.token) continue;
      space.leases.set(lease.module, { ...current, expiresAt: space.clock.now() + this.ttlMs });
      held.add(lease.module);
    }
    return held;
  }

  async release(lease: Lease): Promise<void> {
    const { space } = this;
    space.reachable(this.nodeId);
    const current = space.holderOf(lease.module);
    if (current?.node === this.nodeId && current.token === lease.token) space.leases.delete(lease.module);
  }

  async holder(module: ModuleId): Promise<NodeId | undefined> {
    this.space.reachable(this.nodeId);
    return this.space.holderOf(module)?.node;
  }

  async report(lease: Lease, state: { running: boolean; reason?: string }): Promise<void> {
    const { space } = this;
    space.reachable(this.nodeId);
    const current = space.holderOf(lease.module);
    if (current?.node !== this.nodeId || current.token !== lease.token) return;
    space.reports.set(lease.module, { node: this.nodeId, ...state, token: lease.token });
  }

  async placements(modules: readonly ModuleId[]): Promise<Map<ModuleId, ModulePlacementRecord>> {
    this.space.reachable(this.nodeId);
    const found = new Map<ModuleId, ModulePlacementRecord>();
    for (const module of modules) {
      const holder = this.space.holderOf(module);
      if (!holder) continue;
      const report = this.space.reports.get(module);
      if (report?.node === holder.node && report.token === holder.token) {
        const { token: _token, ...record } = report;
        found.set(module, record);
      } else {
        found.set(module, { node: holder.node, running: false, reason: 'loading' });
      }
    }
    return found;
  }
}

export class MemoryFleetBus implements FleetBus {
  constructor(
    private readonly space: MemoryFleetSpace,
    private readonly nodeId: NodeId,
  ) {}

  async request(node: NodeId, request: FleetRequest, timeoutMs: number): Promise<unknown> {
    const handler = this.space.handlers.get(node);
    if (!handler || this.space.cut.has(this.nodeId) || this.space.cut.has(node)) {
      throw new GatewayError('unavailable', `node ${node} is not listening`, { cause: notDelivered });
    }
    let cancel: () => void = () => {};
    const timedOut = new Promise<never>((_, reject) => {
      cancel = this.space.clock.schedule(timeoutMs, () => reject(new GatewayError('timeout', `node ${node} did not answer within ${timeoutMs} ms`)));
    });
    // A copy through JSON, as over the wire: the serving node never shares objects with the caller.
    const answered = handler(JSON.parse(JSON.stringify(request)) as FleetRequest).then(
      (value) => (value === undefined ? undefined : (JSON.parse(JSON.stringify(value)) as unknown)),
      (err: unknown) => {
        if (!isGatewayError(err)) throw new GatewayError('internal', 'unexpected failure');
        throw new GatewayError(err.code, err.message, wasNotDelivered(err) ? { cause: notDelivered } : undefined);
      },
    );
    answered.catch(() => {});
    return Promise.race([answered, timedOut]).finally(cancel);
  }

  serve(handler: (request: FleetRequest) => Promise<unknown>): void {
    this.space.handlers.set(this.nodeId, handler);
  }

  publishLog(line: DriverLogLine): void {
    for (const listener of [...(this.space.logListeners.get(line.module) ?? [])]) listener(line);
  }

  async subscribeLog(module: ModuleId, onLine: (line: DriverLogLine) => void): Promise<() => void> {
    const own = (line: DriverLogLine) => onLine(line);
    let set = this.space.logListeners.get(module);
    if (!set) this.space.logListeners.set(module, (set = new Set()));
    set.add(own);
    return () => {
      set.delete(own);
    };
  }

  async close(): Promise<void> {
    this.space.handlers.delete(this.nodeId);
  }
}

export class MemoryModuleOverrides implements ModuleOverrides {
  constructor(private readonly space: MemoryFleetSpace) {}

  async all(): Promise<Map<ModuleId, ModuleOverride>> {
    return new Map([...this.space.overrides].map(([id, o]) => [id, structuredClone(o)]));
  }

  async get(module: ModuleId): Promise<ModuleOverride> {
    return structuredClone(this.space.overrides.get(module) ?? {});
  }

  async setStopped(module: ModuleId, stopped: { by: string; at: number } | undefined): Promise<void> {
    const current = { ...this.space.overrides.get(module) };
    if (stopped) current.stopped = stopped;
    else delete current.stopped;
    this.space.overrides.set(module, current);
  }

  async setSettings(module: ModuleId, settings: Record<string, unknown>): Promise<void> {
    this.space.overrides.set(module, { ...this.space.overrides.get(module), settings: structuredClone(settings) });
  }
}
