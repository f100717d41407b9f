import type { StatusStore } from '../core/status-store.js';
import type { ConfigSystemDirectory } from './config-system-directory.js';

/** Writes every system's `<Name>/<index>` -> module id lookup to the store (the same on every node). */
export async function registerSystemLookups(directory: ConfigSystemDirectory, store: Pick<StatusStore, 'setSystemModules'>): Promise<void> {
  for (const system of directory.systems()) await store.setSystemModules(system.id, directory.lookupTable(system.id));
}
