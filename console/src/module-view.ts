import { errorText, field, h, live } from './dom.js';
import { api } from './settings.js';

interface ModuleShown {
  id: string;
  running: boolean;
  stopped: boolean;
  node?: string;
  reason?: string;
  settings: Record<string, unknown>;
}

/**
 * The picked module's lifecycle (GET/PATCH /api/engine/v2/modules/:id, POST .../start|stop): whether it
 * runs and where, why not, stop and start buttons, and its settings as JSON to edit (admin keys).
 */
export function moduleView(): { element: HTMLElement; show(moduleId: string | undefined): Promise<void> } {
  let current: string | undefined;
  const state = live('span', { class: 'badge', 'data-testid': 'module-state' }, '—');
  const node = h('span', { 'data-testid': 'module-node' });
  const feedback = live('span', { class: 'feedback', 'data-testid': 'module-feedback' });
  const settings = h('textarea', { rows: 5, cols: 48, 'data-testid': 'module-settings', spellcheck: false });
  const path = () => `/api/engine/v2/modules/${encodeURIComponent(current!)}`;

  const render = (m: ModuleShown) => {
    state.textContent = m.running ? 'running' : m.stopped ? 'stopped' : `not running${m.reason ? `: ${m.reason}` : ''}`;
    state.className = `badge ${m.running ? 'up' : 'down'}`;
    node.textContent = m.node ? `on ${m.node}` : '';
    if (document.activeElement !== settings) settings.value = JSON.stringify(m.settings, null, 2);
  };
  const load = async () => {
    if (!current) return;
    try {
      render(await api<ModuleShown>(path()));
    } catch (err) {
      feedback.textContent = errorText(err);
    }
  };
  const act = async (action: 'start' | 'stop') => {
    feedback.textContent = '';
    try {
      await api(`${path()}/${action}`, { method: 'POST' });
      // The change takes effect on whichever node runs the module; show it once it has.
      for (let i = 0; i < 20; i++) {
        const m = await api<ModuleShown>(path());
        render(m);
        if (m.running === (action === 'start')) return;
        await new Promise((resolve) => setTimeout(resolve, 250));
      }
    } catch (err) {
      feedback.textContent = errorText(err);
    }
  };
  const save = async () => {
    feedback.textContent = '';
    let parsed: unknown;
    try {
      parsed = JSON.parse(settings.value);
    } catch {
      feedback.textContent = 'Settings must be a JSON object.';
      return;
    }
    try {
      render(await api<ModuleShown>(path(), { method: 'PATCH', body: JSON.stringify({ settings: parsed }) }));
      feedback.textContent = 'Settings applied.';
    } catch (err) {
      feedback.textContent = errorText(err);
    }
  };

  const element = h(
    'div',
    { class: 'module-view', 'data-testid': 'module-view' },
    h('h3', {}, 'Module'),
    h(
      'div',
      { class: 'row' },
      state,
      node,
      h('button', { 'data-testid': 'module-stop', onclick: () => void act('stop') }, 'Stop'),
      h('button', { 'data-testid': 'module-start', onclick: () => void act('start') }, 'Start'),
    ),
    h('div', { class: 'row' }, field('Settings (JSON)', settings), h('button', { 'data-testid': 'module-save', onclick: () => void save() }, 'Apply settings')),
    feedback,
  );
  return {
    element,
    async show(moduleId) {
      current = moduleId;
      feedback.textContent = '';
      state.textContent = '—';
      node.textContent = '';
      settings.value = '';
      await load();
    },
  };
}
