import { ControlClient } from '../../sdk/src/index.js';
import { errorText, field, h, live, panel, parseArg, prependBounded, show } from './dom.js';
import { moduleView } from './module-view.js';
import { api, apiKey, gatewayHttp } from './settings.js';

interface SystemJson {
  id: string;
  name: string;
}
interface ModuleJson {
  id: string;
  name: string;
  driver: string;
  running: boolean;
}
type Functions = Record<string, { arity: number; params: Record<string, { type?: string }>; order: string[] }>;

/** A module as the control channel addresses it: name + 1-based index among same-named modules. */
interface ModuleChoice {
  id: string;
  name: string;
  index: number;
}

/** A status variable shown in the table: its row, and how to stop watching it once the watch is set up. */
interface Watched {
  row: HTMLTableRowElement;
  stop?: () => Promise<void>;
}

const maxDebugLines = 200;

/**
 * Pick a system and a module, see its status variables update live (bound through the SDK), call its
 * methods with arguments, and watch its debug log.
 */
export function controlPanel(): HTMLElement {
  let client: ControlClient | undefined;
  let modules: ModuleChoice[] = [];
  /**
   * The module shown. Every pick starts a new selection and aborts the old one's pending work, so a watch
   * that completes after the user moved on is stopped instead of adding its row and listener to the new table.
   */
  let selection = { id: 0, abort: new AbortController() };
  const watched = new Map<string, Watched>();
  let stopDebug: (() => Promise<void>) | undefined;

  const status = live('span', { class: 'badge', 'data-testid': 'control-status' }, 'not connected');
  const feedback = live('span', { class: 'feedback', 'data-testid': 'control-feedback' });
  const systemSelect = h('select', { 'data-testid': 'control-system', disabled: true });
  const moduleSelect = h('select', { 'data-testid': 'control-module', disabled: true });
  const variables = h('tbody', { 'data-testid': 'control-variables' });
  const methods = h('div', { class: 'methods', 'data-testid': 'control-methods' });
  const debugLog = h('ol', { class: 'log', 'data-testid': 'control-debug-log', 'aria-label': 'Debug log', tabindex: 0 });
  const debugToggle = h('input', { type: 'checkbox', 'data-testid': 'control-debug' });
  const lifecycle = moduleView();
  const extraVariable = h('input', { placeholder: 'e.g. power', size: 14, 'data-testid': 'control-bind-name' });

  const newSelection = () => {
    selection.abort.abort();
    selection = { id: selection.id + 1, abort: new AbortController() };
    return selection;
  };
  const current = (s: typeof selection) => s === selection;

  const connect = async () => {
    feedback.textContent = '';
    newSelection();
    await release();
    await client?.close();
    client = undefined;
    const c = new ControlClient({ url: gatewayHttp, apiKey: apiKey() });
    c.onStatus((e) => {
      status.textContent = e.error && e.status !== 'connected' ? `${e.status} (${e.error.message})` : e.status;
      status.className = `badge ${e.status}`;
    });
    c.on('error', (err) => (feedback.textContent = errorText(err)));
    client = c;
    try {
      // A refused key ends here as AuthenticationError: the SDK asks the gateway why the upgrade failed,
      // since the browser will not say.
      await c.connect();
      const systems = await api<SystemJson[]>('/api/engine/v2/systems');
      systemSelect.replaceChildren(h('option', { value: '' }, '— system —'), ...systems.map((s) => h('option', { value: s.id }, `${s.name} (${s.id})`)));
      systemSelect.disabled = false;
    } catch (err) {
      feedback.textContent = errorText(err);
    }
  };

  const pickSystem = async () => {
    const mine = newSelection();
    await release();
    moduleSelect.replaceChildren();
    moduleSelect.disabled = true;
    if (!systemSelect.value || !current(mine)) return;
    try {
      const system = await api<{ module_data: ModuleJson[] }>(`/api/engine/v2/systems/${encodeURIComponent(systemSelect.value)}?complete=true`);
      if (!current(mine)) return;
      const seen = new Map<string, number>();
      modules = system.module_data.map((m) => {
        const index = (seen.get(m.name) ?? 0) + 1;
        seen.set(m.name, index);
        return { id: m.id, name: m.name, index };
      });
      moduleSelect.replaceChildren(
        h('option', { value: '' }, '— module —'),
        ...modules.map((m, i) => h('option', { value: String(i) }, `${m.name}_${m.index} (${m.id})`)),
      );
      moduleSelect.disabled = false;
    } catch (err) {
      if (current(mine)) feedback.textContent = errorText(err);
    }
  };

  const selected = (): ModuleChoice | undefined => (moduleSelect.value === '' ? undefined : modules[Number(moduleSelect.value)]);

  /** Clears the module view and stops everything it watched. */
  const release = async () => {
    const stops = [...watched.values()].map((w) => w.stop).filter((s): s is () => Promise<void> => s !== undefined);
    watched.clear();
    if (stopDebug) stops.push(stopDebug);
    stopDebug = undefined;
    debugToggle.checked = false;
    variables.replaceChildren();
    methods.replaceChildren();
    debugLog.replaceChildren();
    await Promise.all(stops.map((stop) => stop().catch(() => {})));
  };

  const unwatch = async (name: string) => {
    const w = watched.get(name);
    if (!w) return;
    watched.delete(name);
    w.row.remove();
    await w.stop?.().catch((err: unknown) => (feedback.textContent = errorText(err)));
  };

  /** Adds a row for `name` and keeps it live; errors (an unknown variable, a refused bind) go to the feedback line. */
  const watchVariable = async (m: ModuleChoice, name: string, mine: typeof selection) => {
    const c = client;
    if (!c || !current(mine) || watched.has(name)) return;
    const cell = h('td', { 'data-testid': `var-${name}` }, '—');
    const unbind = h('button', { class: 'small', 'data-testid': `unbind-${name}`, 'aria-label': `Unbind ${name}`, onclick: () => void unwatch(name) }, 'Unbind');
    const row = h('tr', { 'data-var': name }, h('th', { scope: 'row' }, name), cell, h('td', {}, unbind));
    const entry: Watched = { row };
    watched.set(name, entry);
    variables.append(row);
    try {
      const stop = await c.watch(
        { sys: systemSelect.value, mod: m.name, index: m.index, name },
        (value) => {
          cell.textContent = show(value);
          cell.classList.remove('flash');
          void cell.offsetWidth;
          cell.classList.add('flash');
        },
        { signal: mine.abort.signal },
      );
      if (!current(mine) || watched.get(name) !== entry) {
        await stop();
        return;
      }
      entry.stop = stop;
    } catch (err) {
      if (watched.get(name) === entry) {
        watched.delete(name);
        row.remove();
      }
      if (current(mine)) feedback.textContent = errorText(err);
    }
  };

  const pickModule = async () => {
    const mine = newSelection();
    await release();
    const m = selected();
    void lifecycle.show(m?.id);
    if (!m || !client || !current(mine)) return;
    const slug = `${encodeURIComponent(m.name)}_${m.index}`;
    const sys = encodeURIComponent(systemSelect.value);
    try {
      const [state, functions] = await Promise.all([
        api<Record<string, unknown>>(`/api/engine/v2/systems/${sys}/${slug}`),
        api<Functions>(`/api/engine/v2/systems/${sys}/functions/${slug}`),
      ]);
      if (!current(mine)) return;
      for (const [name, fn] of Object.entries(functions)) methods.append(methodRow(m, name, fn));
      await Promise.all(Object.keys(state).map((name) => watchVariable(m, name, mine)));
    } catch (err) {
      if (current(mine)) feedback.textContent = errorText(err);
    }
  };

  const methodRow = (m: ModuleChoice, name: string, fn: Functions[string]) => {
    const inputs = fn.order.map((param) =>
      h('input', {
        placeholder: `${param}: ${fn.params[param]?.type ?? 'json'}`,
        'aria-label': `${name} argument ${param}`,
        size: 12,
        'data-testid': `arg-${name}-${param}`,
      }),
    );
    const result = live('span', { class: 'feedback', 'data-testid': `result-${name}` });
    const call = async () => {
      result.textContent = '…';
      try {
        const { value } = await client!.exec({ sys: systemSelect.value, mod: m.name, index: m.index }, name, inputs.map((i) => parseArg(i.value)));
        result.textContent = `→ ${show(value)}`;
        result.className = 'feedback ok';
      } catch (err) {
        result.textContent = errorText(err);
        result.className = 'feedback error';
      }
    };
    return h('div', { class: 'row method' }, h('code', {}, `${name}(`), ...inputs, h('code', {}, ')'), h('button', { onclick: () => void call(), 'data-testid': `call-${name}` }, 'Call'), result);
  };

  const bindExtra = () => {
    const m = selected();
    const name = extraVariable.value.trim();
    if (!m || !name) return;
    void watchVariable(m, name, selection);
  };

  debugToggle.addEventListener('change', async () => {
    const m = selected();
    const c = client;
    if (!m || !c) return;
    if (!debugToggle.checked) {
      const stop = stopDebug;
      stopDebug = undefined;
      await stop?.().catch((err: unknown) => (feedback.textContent = errorText(err)));
      return;
    }
    const mine = selection;
    try {
      const stop = await c.debug(
        { sys: systemSelect.value, mod: m.id },
        (line) => {
          const li = h('li', { class: line.level }, h('time', {}, new Date().toLocaleTimeString()), h('span', { class: 'badge' }, line.level), line.message);
          prependBounded(debugLog, li, maxDebugLines);
        },
        { signal: mine.abort.signal },
      );
      if (!current(mine) || !debugToggle.checked) await stop();
      else stopDebug = stop;
    } catch (err) {
      debugToggle.checked = false;
      if (current(mine)) feedback.textContent = errorText(err);
    }
  });
  systemSelect.addEventListener('change', () => void pickSystem());
  moduleSelect.addEventListener('change', () => void pickModule());

  return panel(
    'Control channel',
    'control-panel',
    h(
      'div',
      { class: 'row' },
      h('button', { onclick: () => void connect(), 'data-testid': 'control-connect' }, 'Connect with the API key'),
      status,
      field('System', systemSelect),
      field('Module', moduleSelect),
    ),
    feedback,
    lifecycle.element,
    h(
      'div',
      { class: 'columns' },
      h(
        'div',
        {},
        h('h3', {}, 'Status variables (live)'),
        h('table', { class: 'variables' }, h('caption', { class: 'visually-hidden' }, 'Status variables'), variables),
        h('div', { class: 'row' }, field('Variable', extraVariable), h('button', { onclick: bindExtra, 'data-testid': 'control-bind' }, 'Bind')),
      ),
      h('div', {}, h('h3', {}, 'Methods'), methods),
    ),
    h('h3', {}, h('label', {}, debugToggle, ' Debug log')),
    debugLog,
  );
}
