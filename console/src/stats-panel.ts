import { errorText, h, panel } from './dom.js';
import { api, apiKey, onApiKeyChange } from './settings.js';

interface Stats {
  node: string;
  sockets: Record<string, number>;
  profiles: Array<{ profileId: string; sockets: number }>;
  backends: Record<string, { kind: string; state: string }>;
}

/** Connection counts and joined profiles of this node (GET /api/admin/v1/stats, admin key), refreshed every 2 s. */
export function statsPanel(): HTMLElement {
  const body = h('div', { 'data-testid': 'stats-body' }, 'Enter an admin API key to see the counts.');
  const refresh = async () => {
    if (!apiKey()) return;
    try {
      const stats = await api<Stats>('/api/admin/v1/stats');
      body.replaceChildren(
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
              h('thead', {}, h('tr', {}, h('th', {}, 'profile'), h('th', {}, 'sockets'))),
              h('tbody', {}, ...stats.profiles.map((p) => h('tr', { 'data-profile': p.profileId }, h('td', {}, p.profileId), h('td', {}, String(p.sockets))))),
            ),
      );
    } catch (err) {
      body.replaceChildren(h('p', { class: 'error' }, errorText(err)));
    }
  };
  onApiKeyChange(() => void refresh());
  setInterval(() => void refresh(), 2_000);
  void refresh();
  return panel('Gateway', 'stats-panel', body);
}
