import type { Principal } from '../core/credentials.js';
import type { DriverHost, DriverLogLine, ExecResult, FunctionDescription } from '../core/driver-host.js';
import { GatewayError, isGatewayError } from '../core/errors.js';
import type { Clock } from '../core/clock.js';
import { type FleetBus, type FleetRequest, type ModuleLeases, type NodeId, notDelivered, wasNotDelivered } from '../core/fleet.js';
import type { ModuleId } from '../core/ids.js';
import type { Logger } from '../core/logger.js';
import type { GatewayMetrics } from '../observability/metrics.js';
import type { ModuleRunner } from '../runtime/module-runner.js';

export interface RoutedDriverHostOptions {
  nodeId: NodeId;
  runtime: ModuleRunner;
  leases: ModuleLeases;
  bus: FleetBus;
  metrics: GatewayMetrics;
  log: Logger;
  clock: Clock;
  /** A routed request without an answer after this long fails with GatewayError('timeout'). */
  requestTimeoutMs: number;
  /** While a module is between nodes, the owner is looked up again this often (within the timeout). */
  retryIntervalMs: number;
}

/**
 * The DriverHost every front end uses: a module loaded on this node runs here; any other goes to the node
 * holding its lease, over the FleetBus. A request that certainly did not run (no holder yet, the holder
 * not listening, or no longer running the module) is tried again every `retryIntervalMs` until the
 * timeout, so a module moving between nodes costs a short wait; one that may have run is never sent
 * again, so an exec runs at most once. Debug lines
 * come from the bus, so a subscriber on any node sees every line of the module wherever it runs.
 */
export class RoutedDriverHost implements DriverHost {
  /** Lease holders as last read; an entry goes when a request to that node did not run, or on any change. */
  private readonly owners = new Map<ModuleId, NodeId>();

  constructor(private readonly options: RoutedDriverHostOptions) {
    options.bus.serve((request) => this.serveLocally(request));
  }

  /** Forgets every cached owner (membership or placement changed). */
  placementChanged(): void {
    this.owners.clear();
  }

  exec(module: ModuleId, method: string, args: unknown[], caller: Principal): Promise<ExecResult> {
    const { runtime } = this.options;
    return this.untilPlaced(module, () => {
      if (runtime.runs(module)) return runtime.exec(module, method, args, caller);
      return this.route(module, { kind: 'exec', module, method, args, caller }) as Promise<ExecResult>;
    });
  }

  functions(module: ModuleId): Promise<Record<string, FunctionDescription>> {
    const { runtime } = this.options;
    return this.untilPlaced(module, async () => {
      const local = runtime.functions(module);
      if (local) return local;
      return this.route(module, { kind: 'functions', module }) as Promise<Record<string, FunctionDescription>>;
    });
  }

  debug(module: ModuleId, onLine: (line: DriverLogLine) => void): Promise<() => void> {
    return this.options.bus.subscribeLog(module, onLine);
  }

  /** Runs `attempt` again while it fails with a request that certainly did not run, until the timeout. */
  private async untilPlaced<T>(module: ModuleId, attempt: () => Promise<T>): Promise<T> {
    if (!this.options.runtime.isConfigured(module)) throw new GatewayError('module_not_found', `module ${module} is not running`);
    const { clock, requestTimeoutMs, retryIntervalMs } = this.options;
    const deadline = clock.now() + requestTimeoutMs;
    for (;;) {
      try {
        return await attempt();
      } catch (err) {
        if (!wasNotDelivered(err) || clock.now() + retryIntervalMs >= deadline) throw err;
      }
      await new Promise<void>((resolve) => clock.schedule(retryIntervalMs, resolve));
    }
  }

  /** The node holding the module's lease; a module nobody holds is between owners. */
  private async owner(module: ModuleId): Promise<NodeId> {
    const cached = this.owners.get(module);
    if (cached !== undefined) return cached;
    const owner = await this.options.leases.holder(module);
    if (owner === undefined) {
      throw new GatewayError('unavailable', `module ${module} is not running on any node (starting or moving); try again`, { cause: notDelivered });
    }
    const failure = owner === this.options.nodeId ? this.options.runtime.failure(module) : undefined;
    if (failure) throw new GatewayError('module_not_found', `module ${module} is not running (${failure})`);
    if (owner === this.options.nodeId) {
      // Held here but not loaded: loading, or its load failed (the placement record says why).
      throw new GatewayError('unavailable', `module ${module} is not running on this node (loading, or its load failed)`, { cause: notDelivered });
    }
    this.owners.set(module, owner);
    return owner;
  }

  private async route(module: ModuleId, request: FleetRequest): Promise<unknown> {
    const { bus, metrics, requestTimeoutMs } = this.options;
    const owner = await this.owner(module);
    try {
      const answer = await bus.request(owner, request, requestTimeoutMs);
      metrics.routedExecs.inc({ outcome: 'success' });
      return answer;
    } catch (err) {
      if (wasNotDelivered(err)) this.owners.delete(module);
      const code = isGatewayError(err) ? err.code : 'internal';
      metrics.routedExecs.inc({ outcome: code === 'timeout' || code === 'unavailable' ? code : 'error' });
      if (code === 'unavailable' && isGatewayError(err)) {
        const moved = `module ${request.module} is moving or its node ${owner} is gone (${err.message}); try again`;
        throw new GatewayError('unavailable', moved, wasNotDelivered(err) ? { cause: notDelivered } : undefined);
      }
      throw err;
    }
  }

  /** A request from another node: answered only for a module loaded here (else it moved meanwhile). */
  private async serveLocally(request: FleetRequest): Promise<unknown> {
    const { runtime } = this.options;
    const failure = runtime.failure(request.module);
    if (failure) throw new GatewayError('module_not_found', `module ${request.module} is not running (${failure})`);
    if (!runtime.runs(request.module)) {
      throw new GatewayError('unavailable', `module ${request.module} is not running on node ${this.options.nodeId}`, { cause: notDelivered });
    }
    if (request.kind === 'functions') return runtime.functions(request.module);
    return runtime.exec(request.module, request.method, request.args, request.caller);
  }
}
