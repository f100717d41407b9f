import { dirname, resolve } from 'node:path';
import { z } from 'zod';
import type { Config } from '../../config/schema.js';
import { ConfigError } from '../../config/load.js';
import { systemClock } from '../../core/clock.js';
import type { Logger } from '../../core/logger.js';
import type { DriverDefinition } from '../../driver-api/driver-api.js';
import { DriverHostProcess } from './driver-host-process.js';

/** A driver written as `./file.js`, `../file.js` or `/abs/file.js` in `control.modules[].driver`. */
export const isDriverFile = (driver: string): boolean => /^(\.{1,2})?\//.test(driver);

export interface DriverFile {
  /** Absolute path of the ES module. */
  file: string;
  /** Its generic module name (`defineDriver({ name })`). */
  name: string;
}

/**
 * Asks a driver host (never the gateway's own process: a driver's top-level code is driver code) for each
 * driver file's name and for every module's settings checked by that driver's schema. Settings come back
 * with defaults applied and replace those in `config`. Problems are thrown as one ConfigError naming each
 * entry, like the bundled drivers' (exit 2 at start).
 */
export async function describeDriverFiles(config: Config, configFile: string | undefined, log: Logger): Promise<Record<string, DriverFile>> {
  const keys = [...new Set(config.control.modules.map((m) => m.driver).filter(isDriverFile))];
  if (keys.length === 0) return {};
  const base = configFile ? dirname(resolve(configFile)) : process.cwd();
  const problems: string[] = [];
  const found: Record<string, DriverFile> = {};
  const host = new DriverHostProcess({
    name: 'describe',
    ...config.control.hosts,
    execTimeoutMs: config.control.execTimeoutMs,
    clock: systemClock,
    log,
    onMessage: () => {},
    onExit: () => {},
  });
  host.start();
  try {
    for (const key of keys) {
      const file = resolve(base, key);
      const indexed = config.control.modules.map((m, i) => ({ m, i })).filter(({ m }) => m.driver === key);
      const reply = await host.request((id) => ({ t: 'describe', id, driver: { key, file }, modules: indexed.map(({ m }) => ({ id: m.id, settings: m.settings })) }));
      if (!reply.ok) {
        for (const { m, i } of indexed) problems.push(`control.modules[${i}] (${m.id}): driver "${key}": ${reply.error.message}`);
        continue;
      }
      const value = reply.value as { name: string; modules: Array<{ id: string; settings?: unknown; problems?: string[] }> };
      found[key] = { file, name: value.name };
      for (const { m, i } of indexed) {
        const checked = value.modules.find((x) => x.id === m.id);
        if (checked?.problems) for (const problem of checked.problems) problems.push(`control.modules[${i}] (${m.id}): ${problem}`);
        else m.settings = (checked?.settings ?? m.settings) as Record<string, unknown>;
      }
    }
  } catch (err) {
    problems.push(`driver files could not be read: ${(err as Error).message}`);
  } finally {
    await host.stop();
  }
  if (problems.length > 0) throw new ConfigError(problems);
  return found;
}

/**
 * What the gateway itself knows of a driver file: its name, for systems. Its settings were checked in
 * a host already; its code runs only in hosts.
 */
export function driverFileStub(described: DriverFile): DriverDefinition {
  return {
    name: described.name,
    settings: z.any(),
    load: () => {
      throw new Error(`${described.file} runs in a driver host`);
    },
  };
}
