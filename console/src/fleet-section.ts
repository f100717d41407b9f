import { h } from './dom.js';
import { api } from './settings.js';
import type { StatsSection } from './stats-panel.js';

interface FleetStats {
  fleet: { nodes: string[]; modules: Record<string, { node: string; running: boolean; reason?: string } | null> } | null;
}

/** The control fleet: live nodes and which node runs which module (and why not), from the same stats. */
export const fleetSection: StatsSection<FleetStats> = {
  testId: 'fleet-body',
  load: () => api<FleetStats>('/api/admin/v1/stats'),
  render: ({ fleet }) => {
    if (!fleet) return [h('p', { class: 'muted' }, 'The fleet view is not available (state store unreachable).')];
    const modules = Object.entries(fleet.modules).sort(([a], [b]) => a.localeCompare(b));
    return [
      h('p', {}, `Live nodes (${fleet.nodes.length}): `, ...fleet.nodes.map((node) => h('span', { class: 'badge up', 'data-node': node }, node))),
      h(
        'table',
        {},
        h('caption', { class: 'visually-hidden' }, 'Modules and the node running each'),
        h('thead', {}, h('tr', {}, h('th', { scope: 'col' }, 'module'), h('th', { scope: 'col' }, 'node'), h('th', { scope: 'col' }, 'state'))),
        h(
          'tbody',
          {},
          ...modules.map(([id, placed]) =>
            h(
              'tr',
              { 'data-module': id },
              h('td', {}, id),
              h('td', {}, placed?.node ?? '—'),
              h('td', {}, h('span', { class: `badge ${placed?.running ? 'up' : 'down'}` }, placed?.running ? 'running' : `not running${placed?.reason ? `: ${placed.reason}` : ''}`)),
            ),
          ),
        ),
      ),
    ];
  },
};
