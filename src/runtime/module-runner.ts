import type { Principal } from '../core/credentials.js';
import type { ExecResult, FunctionDescription } from '../core/driver-host.js';
import type { ModuleId } from '../core/ids.js';

/** Whether a module runs after a load, and why not. */
export interface LoadOutcome {
  running: boolean;
  reason?: string;
}

/**
 * The modules this node runs, loaded and unloaded one by one as placement decides: in this process
 * (ModuleRuntime, for drivers handed to createGateway as objects) or in driver host processes
 * (HostedModuleRuntime, for bundled drivers and driver files). Routing and placement see only this.
 * - `exec` rejects with GatewayError: 'module_not_found' (not running here; the message says why),
 *   'bad_request', 'forbidden', 'request_failed', 'timeout', 'unavailable' (status store down).
 * - `functions` is undefined when the module does not run here.
 */
export interface ModuleRunner {
  isConfigured(module: ModuleId): boolean;
  runs(module: ModuleId): boolean;
  /** Why a module placed here is not running (load failed, driver host restarting), if it is not. */
  failure(module: ModuleId): string | undefined;
  loadedModules(): ModuleId[];
  load(module: ModuleId): Promise<LoadOutcome>;
  unload(module: ModuleId): Promise<void>;
  exec(module: ModuleId, method: string, args: unknown[], caller: Principal): Promise<ExecResult>;
  functions(module: ModuleId): Record<string, FunctionDescription> | undefined;
  updateSettings(module: ModuleId, settings: unknown): Promise<void>;
  stop(): Promise<void>;
}
