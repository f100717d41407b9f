import type { Clock } from '../core/clock.js';
import type { Principal } from '../core/credentials.js';
import type { DriverHost, ExecResult, FunctionDescription } from '../core/driver-host.js';
import { GatewayError } from '../core/errors.js';
import type { SystemDirectory } from '../core/system-directory.js';
import { hasClearance, isProtectedName } from './access.js';
import type { ExecRateLimits } from './exec-rate-limits.js';
import { resolveModule } from './targets.js';

export interface ControlCommandsDeps {
  directory: SystemDirectory;
  host: DriverHost;
  clock: Clock;
  /** An exec without an answer after this long fails with GatewayError('timeout') (error 7, HTTP 504). */
  execTimeoutMs: number;
  /** Arguments larger than this as JSON are refused (error 1, HTTP 400). */
  maxArgsBytes: number;
  /** Exec rate per credential over the socket and REST (error 1 / HTTP 429 `too many requests`). */
  rateLimits: ExecRateLimits;
}

/** A module as a request addresses it: system, module name and 1-based index. */
export interface ModuleAddress {
  sys: string;
  mod: string;
  index: number;
}

/**
 * The one command path of the control channel, shared by the socket and REST: resolve the module, check
 * access, run the method wherever the module runs (DriverHost; the method's clearance is checked there,
 * where the method is known) under the exec timeout of the injected clock. The result is the JSON text the
 * module's node serialised; both front ends only wrap it in their own frame.
 */
export class ControlCommands {
  constructor(private readonly deps: ControlCommandsDeps) {}

  async exec(principal: Principal, address: ModuleAddress, method: string, args: unknown[]): Promise<ExecResult> {
    const { directory, host } = this.deps;
    const { moduleId } = resolveModule(directory, principal, address.sys, address.mod, address.index);
    // Names every plain object has (`__proto__`, `constructor`...) are no driver's methods (spec "Limits").
    if (method in Object.prototype) throw new GatewayError('bad_request', `could not find function ${method}`);
    if (isProtectedName(method)) throw new GatewayError('forbidden', `access denied to method ${method}`);
    this.deps.rateLimits.take(principal.id);
    const argsBytes = Buffer.byteLength(JSON.stringify(args) ?? '');
    if (argsBytes > this.deps.maxArgsBytes) throw new GatewayError('bad_request', `arguments too large (${argsBytes} bytes; at most ${this.deps.maxArgsBytes})`);
    return this.withTimeout(host.exec(moduleId, method, args, principal), method);
  }

  /** The methods the caller may see (PlaceOS `functions`): protected names and higher clearances left out. */
  async functions(principal: Principal, address: ModuleAddress): Promise<Record<string, Omit<FunctionDescription, 'clearance'>>> {
    const { moduleId } = resolveModule(this.deps.directory, principal, address.sys, address.mod, address.index);
    const all = await this.withTimeout(this.deps.host.functions(moduleId), 'functions');
    const visible: Record<string, Omit<FunctionDescription, 'clearance'>> = {};
    for (const [name, fn] of Object.entries(all)) {
      if (isProtectedName(name) || !hasClearance(principal, fn.clearance)) continue;
      visible[name] = { arity: fn.arity, params: fn.params, order: fn.order };
    }
    return visible;
  }

  private withTimeout<T>(pending: Promise<T>, what: string): Promise<T> {
    const { clock, execTimeoutMs } = this.deps;
    let cancel: () => void = () => {};
    const timedOut = new Promise<never>((_, reject) => {
      cancel = clock.schedule(execTimeoutMs, () => reject(new GatewayError('timeout', `${what} timed out after ${execTimeoutMs} ms`)));
    });
    // A late answer after the timeout is dropped, never an unhandled rejection.
    pending.catch(() => {});
    return Promise.race([pending, timedOut]).finally(cancel);
  }
}
