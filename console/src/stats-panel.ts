import { errorText, h, panel } from './dom.js';
import { pollWhileVisible } from './poll.js';
import { api, apiKey, onApiKeyChange } from './settings.js';

/**
 * One block of the gateway view: what it loads and how it shows it. Every section is refreshed on each tick
 * and fails on its own (an error in one leaves the others showing); add one by passing it to statsPanel.
 */
export interface StatsSection<T = unknown> {
  /** data-testid of the section's container. */
  testId: string;
  load(): Promise<T>;
  render(data: T): Array<Node | string>;
}

interface Stats {
  node: string;
  sockets: Record<string, number>;
  profiles: Array<{ profileId: string; sockets: number }>;
  backends: Record<string, { kind: string; state: string }>;
}

/** Connection counts and joined profiles of the node serving the page (GET /api/admin/v1/stats, admin key). */
export const nodeStatsSection: StatsSection<Stats> = {
  testId: 'stats-body',
  load: () => api<Stats>('/api/admin/v1/stats'),
  render: (stats) => [
    h('p', {}, `Node ${stats.node} · `, ...Object.entries(stats.backends).map(([name, b]) => h('span', { class: `badge ${b.state}` }, `${name}: ${b.kind} ${b.state}`))),
    h(
      'div',
      { class: 'counts' },
      ...Object.entries(stats.sockets).map(([channel, n]) =>
        h('div', { class: 'count' }, h('strong', { 'data-testid': `count-${channel}` }, String(n)), h('span', {}, `${channel} sockets`)),
      ),
      h('div', { class: 'count' }, h('strong', { 'data-testid': 'count-profiles' }, String(stats.profiles.length)), h('span', {}, 'joined profiles')),
    ),
    stats.profiles.length === 0
      ? h('p', { class: 'muted' }, 'No profile joined on this node.')
      : h(
          'table',
          {},
          h('caption', { class: 'visually-hidden' }, 'Joined profiles'),
          h('thead', {}, h('tr', {}, h('th', { scope: 'col' }, 'profile'), h('th', { scope: 'col' }, 'sockets'))),
          h('tbody', {}, ...stats.profiles.map((p) => h('tr', { 'data-profile': p.profileId }, h('td', {}, p.profileId), h('td', {}, String(p.sockets))))),
        ),
  ],
};

/** The gateway view: its sections, refreshed every `intervalMs` while the tab is visible (needs an admin key). */
export function statsPanel(sections: Array<StatsSection<any>> = [nodeStatsSection], intervalMs = 2_000): HTMLElement {
  const containers = sections.map((section) => h('div', { 'data-testid': section.testId }, 'Enter an admin API key to see the counts.'));
  const refresh = async () => {
    if (!apiKey()) return;
    await Promise.all(
      sections.map(async (section, i) => {
        try {
          containers[i]!.replaceChildren(...section.render(await section.load()));
        } catch (err) {
          containers[i]!.replaceChildren(h('p', { class: 'error' }, errorText(err)));
        }
      }),
    );
  };
  const poller = pollWhileVisible(refresh, intervalMs);
  onApiKeyChange(() => poller.refresh());
  return panel('Gateway', 'stats-panel', ...containers);
}
