import type { Principal } from '../core/credentials.js';
import type { ExecResult, FunctionDescription } from '../core/driver-host.js';
import type { ModuleId } from '../core/ids.js';
import type { ModuleRecord } from '../core/system-directory.js';
import type { LoadOutcome, ModuleRunner } from './module-runner.js';

/**
 * Modules of hosted drivers go to the driver hosts, the others (drivers handed to createGateway as
 * objects, which cannot cross a process boundary) run in this process.
 */
export class ModuleRunners implements ModuleRunner {
  constructor(
    private readonly modules: { module(id: ModuleId): ModuleRecord | undefined },
    private readonly isHosted: (driverKey: string) => boolean,
    private readonly hosted: ModuleRunner,
    private readonly inline: ModuleRunner,
  ) {}

  private of(module: ModuleId): ModuleRunner {
    const record = this.modules.module(module);
    return record && this.isHosted(record.driver) ? this.hosted : this.inline;
  }

  isConfigured(module: ModuleId): boolean {
    return this.modules.module(module) !== undefined;
  }
  runs(module: ModuleId): boolean {
    return this.of(module).runs(module);
  }
  failure(module: ModuleId): string | undefined {
    return this.of(module).failure(module);
  }
  loadedModules(): ModuleId[] {
    return [...this.hosted.loadedModules(), ...this.inline.loadedModules()];
  }
  load(module: ModuleId): Promise<LoadOutcome> {
    return this.of(module).load(module);
  }
  unload(module: ModuleId): Promise<void> {
    return this.of(module).unload(module);
  }
  exec(module: ModuleId, method: string, args: unknown[], caller: Principal): Promise<ExecResult> {
    return this.of(module).exec(module, method, args, caller);
  }
  functions(module: ModuleId): Record<string, FunctionDescription> | undefined {
    return this.of(module).functions(module);
  }
  updateSettings(module: ModuleId, settings: unknown): Promise<void> {
    return this.of(module).updateSettings(module, settings);
  }
  async stop(): Promise<void> {
    await Promise.all([this.hosted.stop(), this.inline.stop()]);
  }
}
