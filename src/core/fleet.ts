import type { BackendHealth } from './backend-state.js';
import type { Principal } from './credentials.js';
import type { DriverLogLine } from './driver-host.js';
import type { ModuleId } from './ids.js';

/**
 * The control channel as a fleet (README "Control fleet"): which gateway nodes are alive, which node holds
 * each module, and how a command reaches that node. Three small boundaries, each with a memory twin (one
 * process, any number of nodes: unit tests and the single-node default) and a Redis implementation.
 */
export type NodeId = string;

/**
 * Live nodes. A node announces itself with a heartbeat; its entry expires `ttlMs` after the last one, so a
 * node that died is forgotten within the TTL and one that leaves says so at once.
 * - `start` resolves once this node's first heartbeat is stored and the live set read.
 * - `live()` is the set as last read (sorted); it includes this node while its heartbeats succeed.
 * - `healthy()` is false while this node's heartbeats fail (cut off from the store).
 * - `onChange` fires when the set changes, or when another node announced a change of placement
 *   (`announce`), so waiting nodes act at once instead of at their next heartbeat.
 */
export interface FleetMembership extends BackendHealth {
  readonly nodeId: NodeId;
  start(): Promise<void>;
  stop(): Promise<void>;
  live(): readonly NodeId[];
  healthy(): boolean;
  onChange(listener: () => void): () => void;
  announce(): Promise<void>;
}

/** A module's lease as this node holds it. `token` grows with every grant of that module (fencing). */
export interface Lease {
  readonly module: ModuleId;
  readonly token: number;
}

/**
 * Per-module leases with a TTL: at most one node holds a module's lease at a time, enforced by the store
 * (a grant is a compare-and-set), not by every node computing the same hash.
 * - `acquire` grants the lease to this node if nobody holds it (undefined if another node does).
 * - `renew` extends every lease given that is still this node's and returns the modules still held; a
 *   lease missing from the result was lost (expired and taken). Rejects when the store is unreachable:
 *   the caller must then assume the leases run out `ttlMs` after the last renew it *sent* that succeeded.
 * - `release` gives it up at once if it is still this node's.
 * - `holder` reads who holds a module's lease now (routing).
 * - `report` records whether the module runs on its holder (and why not), for as long as the lease is
 *   this node's; `placements` reads holder and report together (stats, module views).
 */
export interface ModuleLeases {
  readonly ttlMs: number;
  acquire(module: ModuleId): Promise<Lease | undefined>;
  renew(leases: readonly Lease[]): Promise<Set<ModuleId>>;
  release(lease: Lease): Promise<void>;
  holder(module: ModuleId): Promise<NodeId | undefined>;
  report(lease: Lease, state: { running: boolean; reason?: string }): Promise<void>;
  placements(modules: readonly ModuleId[]): Promise<Map<ModuleId, ModulePlacementRecord>>;
}

/** A command for the node that runs a module. */
export type FleetRequest =
  | { kind: 'exec'; module: ModuleId; method: string; args: unknown[]; caller: Principal }
  | { kind: 'functions'; module: ModuleId };

/**
 * The `cause` of a GatewayError('unavailable') for a request that certainly did not run: no node was
 * listening, or the node it reached does not run the module. Only such a request may be sent again.
 */
export const notDelivered = Object.freeze({ notDelivered: true });

export const wasNotDelivered = (err: unknown): boolean => err instanceof Error && err.cause === notDelivered;

/**
 * Node-to-node requests and module log lines.
 * - `request` delivers to one node at most once and is never retried, so an exec runs at most once. It
 *   rejects with GatewayError('unavailable', cause `notDelivered`) when that node is not listening,
 *   ('timeout') after `timeoutMs`, or with the GatewayError the serving node answered (its `notDelivered`
 *   cause kept); ('unavailable') without that cause when the store failed mid-way (it may have run).
 * - `serve` installs this node's handler; what it resolves with must be JSON-serialisable.
 * - `publishLog` sends a line of a module this node runs to every node's `subscribeLog` of that module,
 *   in order; `subscribeLog` resolves once live.
 */
export interface FleetBus {
  request(node: NodeId, request: FleetRequest, timeoutMs: number): Promise<unknown>;
  serve(handler: (request: FleetRequest) => Promise<unknown>): void;
  publishLog(line: DriverLogLine): void;
  subscribeLog(module: ModuleId, onLine: (line: DriverLogLine) => void): Promise<() => void>;
  /** Stops serving: requests to this node then fail as `unavailable`. */
  close(): Promise<void>;
}

/** Where a module runs and why it does not, as the node holding it last reported. */
export interface ModulePlacementRecord {
  node: NodeId;
  running: boolean;
  /** Why it is not running (load failed with ...). */
  reason?: string;
}

