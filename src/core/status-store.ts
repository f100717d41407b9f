import type { BackendHealth } from './backend-state.js';
import type { ModuleId, SystemId } from './ids.js';
import type { Logger } from './logger.js';

/**
 * Status variables of modules and the system -> module lookup (spec: control-protocol.md, "Model" and
 * "Redis layout"). Values are JSON text, stored and forwarded as they are (no re-serialisation).
 *
 * Contract (checked on memory and Redis by test/suites/status-store.contract.ts):
 * - `set` with the JSON text a variable already holds publishes nothing; otherwise it stores and
 *   publishes the new text to every watcher on every node. `delete` publishes `null`.
 * - `watch` resolves only once the watch is live, so nothing published after it resolves is missed;
 *   watchers of one variable get changes in the order they were made. The returned function stops it.
 *   Across a lost connection to a shared store, a watcher is given the latest value once it is back
 *   (not every intermediate one), and `state()` is not `up` meanwhile.
 * - Redis layout (PlaceOS-compatible): hash `status/<module_id>` field = name, value = JSON text; channel
 *   `status/<module_id>/<name>` carries each change; hash `system/<sys_id>` field `<Name>/<index>` ->
 *   module id; channel `lookup-change` carries a system id whose module list changed.
 * - Rejects with GatewayError('unavailable') when the store cannot be reached.
 */
export interface StatusStore extends BackendHealth {
  start(): Promise<void>;
  close(): Promise<void>;
  get(module: ModuleId, name: string): Promise<string | undefined>;
  getAll(module: ModuleId): Promise<Record<string, string>>;
  set(module: ModuleId, name: string, json: string): Promise<void>;
  delete(module: ModuleId, name: string): Promise<void>;
  watch(module: ModuleId, name: string, onChange: (json: string) => void): Promise<() => Promise<void>>;
  /** Replaces the `<Name>/<index>` -> module id map of a system and announces the change. */
  setSystemModules(system: SystemId, modules: Record<string, ModuleId>): Promise<void>;
  lookup(system: SystemId, name: string, index: number): Promise<ModuleId | undefined>;
  onSystemChange(listener: (system: SystemId) => void): () => void;
}

export type StatusWatcher = (json: string) => void;

/**
 * Hands one change to every watcher of a variable, in the order they watched; one that throws is logged
 * and does not stop the others. No closure per watcher: a variable 1,000 sockets bound calls this loop
 * 1,000 times per change. The set is copied first, so a watcher may unwatch from inside its call.
 */
export function callWatchers(watchers: ReadonlySet<StatusWatcher>, json: string, log: Logger): void {
  for (const watcher of [...watchers]) {
    try {
      watcher(json);
    } catch (err) {
      log.error({ err }, 'status listener threw');
    }
  }
}
