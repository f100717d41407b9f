import type { Clock } from '../core/clock.js';
import type { FleetMembership, Lease, ModuleLeases, NodeId } from '../core/fleet.js';
import type { ModuleId } from '../core/ids.js';
import type { Logger } from '../core/logger.js';
import type { GatewayMetrics } from '../observability/metrics.js';
import type { LoadOutcome } from '../runtime/module-runner.js';
import { ownerOf } from './rendezvous.js';

/** What placement needs of the node's module runtime. */
export interface LocalModules {
  load(module: ModuleId): Promise<LoadOutcome>;
  unload(module: ModuleId): Promise<void>;
}

export interface ModulePlacementOptions {
  nodeId: NodeId;
  /** Every configured module. */
  modules: readonly ModuleId[];
  membership: FleetMembership;
  leases: ModuleLeases;
  runtime: LocalModules;
  clock: Clock;
  log: Logger;
  metrics: GatewayMetrics;
  /** How often held leases are renewed and placement is checked again. */
  renewIntervalMs: number;
  /**
   * A module whose lease was not renewed is stopped this long before the lease could run out in the
   * store (counted from the last renew this node sent), so unloading it finishes before another node
   * may take it.
   */
  stopMarginMs: number;
}

interface Held {
  lease: Lease;
  cancelExpiry: () => void;
}

/**
 * Decides which modules this node runs (README "Control fleet"). Each module belongs to the live node that
 * rendezvous hashing ranks first; this node runs it only while it holds the module's lease, which it
 * takes when free, renews every `renewIntervalMs`, and gives up when another node ranks first (unloading
 * before releasing, so the next owner loads only after this one stopped). When renewals fail (cut off
 * from the store), each module is stopped before its lease could expire, so two nodes never drive one
 * device at once. All changes run one at a time, in order.
 */
export class ModulePlacement {
  private readonly held = new Map<ModuleId, Held>();
  private work: Promise<void> = Promise.resolve();
  private queued = false;
  private stopped = false;
  private cancelTick: () => void = () => {};
  private unsubscribe: () => void = () => {};
  private renewFailing = false;

  constructor(private readonly options: ModulePlacementOptions) {}

  /** Joins the fleet and loads the modules this node should run whose leases are free. */
  async start(): Promise<void> {
    await this.options.membership.start();
    this.unsubscribe = this.options.membership.onChange(() => this.reconcileSoon());
    this.armTick();
    await this.reconcileSoon();
  }

  /** Unloads every module here, hands the leases back at once and leaves the fleet. */
  async stop(): Promise<void> {
    this.stopped = true;
    this.cancelTick();
    this.unsubscribe();
    await this.work;
    const held = [...this.held.keys()];
    await Promise.all(held.map((module) => this.handOver(module, 'node stopping')));
    if (held.length > 0) await this.options.membership.announce().catch(() => {});
    await this.options.membership.stop().catch((err: unknown) => this.options.log.warn({ err: String(err) }, 'leaving the fleet failed'));
  }

  /** A module's state changed outside a load (its driver host died or came back): report it. */
  moduleStateChanged(module: ModuleId, outcome: LoadOutcome): void {
    const held = this.held.get(module);
    if (!held) return;
    this.options.log.info({ module, running: outcome.running, reason: outcome.reason }, 'module state changed');
    void this.options.leases.report(held.lease, outcome).catch(() => {});
  }

  /** Modules this node holds the lease of. */
  heldModules(): ModuleId[] {
    return [...this.held.keys()];
  }

  /** Coalesces triggers: at most one reconcile queued behind the running one. */
  private reconcileSoon(): Promise<void> {
    if (this.queued) return this.work;
    this.queued = true;
    this.work = this.work.then(async () => {
      this.queued = false;
      try {
        await this.reconcile();
      } catch (err) {
        this.options.log.warn({ err: String(err) }, 'placement check failed; retrying at the next renewal');
      }
    });
    return this.work;
  }

  private armTick(): void {
    this.cancelTick = this.options.clock.schedule(this.options.renewIntervalMs, () => {
      if (this.stopped) return;
      this.armTick();
      void this.renew().then(() => this.reconcileSoon());
    });
  }

  private async reconcile(): Promise<void> {
    const { membership, modules, nodeId, metrics } = this.options;
    if (this.stopped || !membership.healthy()) return;
    const live = membership.live();
    const nodes = live.includes(nodeId) ? live : [...live, nodeId];
    metrics.fleetNodes.set(nodes.length);
    let changed = false;
    for (const module of [...this.held.keys()]) {
      if (ownerOf(module, nodes) === nodeId) continue;
      metrics.moves.inc();
      await this.handOver(module, 'another node ranks first');
      changed = true;
    }
    const wanted = modules.filter((module) => !this.held.has(module) && ownerOf(module, nodes) === nodeId);
    const taken = await Promise.all(wanted.map((module) => this.take(module)));
    if (taken.includes(true)) changed = true;
    if (changed) await membership.announce().catch(() => {});
  }

  /** Takes the lease if free and loads the module; false if another node still holds it. */
  private async take(module: ModuleId): Promise<boolean> {
    const { leases, runtime, clock, log, metrics } = this.options;
    const sentAt = clock.now();
    const lease = await leases.acquire(module);
    if (!lease) return false;
    if (this.stopped) {
      await leases.release(lease);
      return false;
    }
    this.held.set(module, { lease, cancelExpiry: this.expiryTimer(module, sentAt) });
    const outcome = await runtime.load(module);
    if (this.held.get(module)?.lease !== lease) return true;
    metrics.placements.inc();
    metrics.modulesRunning.set(this.held.size);
    log.info({ module, token: lease.token, running: outcome.running, reason: outcome.reason }, 'module placed on this node');
    await leases.report(lease, outcome).catch(() => {});
    return true;
  }

  /** Unloads first, then releases the lease, so the next owner can only start once this one stopped. */
  private async handOver(module: ModuleId, reason: string): Promise<void> {
    const held = this.held.get(module);
    if (!held) return;
    this.held.delete(module);
    held.cancelExpiry();
    await this.options.runtime.unload(module);
    this.options.metrics.modulesRunning.set(this.held.size);
    this.options.log.info({ module, reason }, 'module handed over');
    await this.options.leases.release(held.lease).catch((err: unknown) => {
      this.options.log.warn({ module, err: String(err) }, 'lease release failed; it runs out on its own');
    });
  }

  private async renew(): Promise<void> {
    const { leases, clock, log } = this.options;
    const renewing = [...this.held.values()].map((h) => h.lease);
    if (renewing.length === 0 || this.stopped) return;
    const sentAt = clock.now();
    let stillHeld: Set<ModuleId>;
    try {
      stillHeld = await leases.renew(renewing);
    } catch (err) {
      if (!this.renewFailing) log.warn({ err: String(err), modules: renewing.length }, 'lease renewal failed; modules stop before their leases run out');
      this.renewFailing = true;
      return;
    }
    if (this.renewFailing) log.info('lease renewal works again');
    this.renewFailing = false;
    for (const lease of renewing) {
      const held = this.held.get(lease.module);
      if (held?.lease !== lease) continue;
      if (stillHeld.has(lease.module)) {
        held.cancelExpiry();
        held.cancelExpiry = this.expiryTimer(lease.module, sentAt);
      } else {
        this.lose(lease.module, 'lease taken by another node');
      }
    }
  }

  private expiryTimer(module: ModuleId, sentAt: number): () => void {
    const { clock, leases, stopMarginMs } = this.options;
    const stopAt = sentAt + leases.ttlMs - stopMarginMs;
    return clock.schedule(Math.max(0, stopAt - clock.now()), () => this.lose(module, 'lease not renewed in time'));
  }

  /** Stops the module at once, outside the queue: the lease is about to be (or is) someone else's. */
  private lose(module: ModuleId, reason: string): void {
    const held = this.held.get(module);
    if (!held) return;
    this.held.delete(module);
    held.cancelExpiry();
    this.options.metrics.leaseLosses.inc();
    this.options.metrics.modulesRunning.set(this.held.size);
    this.options.log.warn({ module, reason }, 'module stopped: lease lost');
    void this.options.runtime.unload(module);
  }
}
