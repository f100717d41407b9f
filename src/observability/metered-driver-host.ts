import { performance } from 'node:perf_hooks';
import type { Principal } from '../core/credentials.js';
import type { DriverHost, ExecResult } from '../core/driver-host.js';
import { isGatewayError } from '../core/errors.js';
import type { ModuleId } from '../core/ids.js';
import type { GatewayMetrics } from './metrics.js';

/**
 * Counts every exec (control socket and REST alike) by outcome, with its duration, in one place: a
 * decorator of the DriverHost, so neither the callers nor the runtime need to remember it.
 */
export function meterExecs(host: DriverHost, metrics: GatewayMetrics): DriverHost {
  return {
    async exec(module: ModuleId, method: string, args: unknown[], caller: Principal): Promise<ExecResult> {
      const started = performance.now();
      let outcome = 'success';
      try {
        return await host.exec(module, method, args, caller);
      } catch (err) {
        outcome = isGatewayError(err) && err.code === 'timeout' ? 'timeout' : 'error';
        throw err;
      } finally {
        metrics.execs.inc({ outcome });
        metrics.execDuration.observe({ outcome }, (performance.now() - started) / 1000);
      }
    },
    functions: (module) => host.functions(module),
    debug: (module, onLine) => host.debug(module, onLine),
    updateSettings: (module, settings) => host.updateSettings(module, settings),
  };
}
