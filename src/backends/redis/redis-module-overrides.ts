import type { ModuleOverride, ModuleOverrides } from '../../core/fleet.js';
import { type ModuleId, moduleId } from '../../core/ids.js';
import type { RedisFleetLink } from './redis-fleet-link.js';

/**
 * Operators' module changes in Redis: hash `fleet/module-stopped` (module -> `{"by","at"}`) and hash
 * `fleet/module-settings` (module -> settings JSON). One field per change, so each change is one atomic
 * write and two changes of different kinds never overwrite each other.
 */
export class RedisModuleOverrides implements ModuleOverrides {
  constructor(private readonly link: RedisFleetLink) {}

  async all(): Promise<Map<ModuleId, ModuleOverride>> {
    const { link } = this;
    const [stopped, settings] = await link.run(() => Promise.all([link.cmd.hgetall(link.key('fleet/module-stopped')), link.cmd.hgetall(link.key('fleet/module-settings'))]));
    const found = new Map<ModuleId, ModuleOverride>();
    for (const [id, json] of Object.entries(stopped)) found.set(moduleId(id), { stopped: parse(json) as ModuleOverride['stopped'] });
    for (const [id, json] of Object.entries(settings)) found.set(moduleId(id), { ...found.get(moduleId(id)), settings: parse(json) as Record<string, unknown> });
    return found;
  }

  async get(module: ModuleId): Promise<ModuleOverride> {
    const { link } = this;
    const [stopped, settings] = await link.run(() =>
      Promise.all([link.cmd.hget(link.key('fleet/module-stopped'), module), link.cmd.hget(link.key('fleet/module-settings'), module)]),
    );
    return {
      ...(stopped && { stopped: parse(stopped) as ModuleOverride['stopped'] }),
      ...(settings && { settings: parse(settings) as Record<string, unknown> }),
    };
  }

  async setStopped(module: ModuleId, stopped: { by: string; at: number } | undefined): Promise<void> {
    const { link } = this;
    const key = link.key('fleet/module-stopped');
    await link.run(() => (stopped ? link.cmd.hset(key, module, JSON.stringify(stopped)) : link.cmd.hdel(key, module)));
  }

  async setSettings(module: ModuleId, settings: Record<string, unknown>): Promise<void> {
    const { link } = this;
    await link.run(() => link.cmd.hset(link.key('fleet/module-settings'), module, JSON.stringify(settings)));
  }
}

function parse(json: string): unknown {
  try {
    return JSON.parse(json);
  } catch {
    return undefined;
  }
}
