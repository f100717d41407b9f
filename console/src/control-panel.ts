import { ControlClient } from '../../sdk/src/index.js';
import { errorText, h, panel, parseArg, show } from './dom.js';
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

/**
 * Pick a system and a module, see its status variables update live (bound through the SDK), call its
 * methods with arguments, and watch its debug log.
 */
export function controlPanel(): HTMLElement {
  let client: ControlClient | undefined;
  let stops: Array<() => Promise<void>> = [];
  let modules: ModuleChoice[] = [];
  const status = h('span', { class: 'badge', 'data-testid': 'control-status' }, 'not connected');
  const feedback = h('span', { class: 'feedback', 'data-testid': 'control-feedback' });
  const systemSelect = h('select', { 'data-testid': 'control-system', disabled: true });
  const moduleSelect = h('select', { 'data-testid': 'control-module', disabled: true });
  const variables = h('tbody', { 'data-testid': 'control-variables' });
  const methods = h('div', { class: 'methods', 'data-testid': 'control-methods' });
  const debugLog = h('ol', { class: 'log', 'data-testid': 'control-debug-log' });
  const debugToggle = h('input', { type: 'checkbox', 'data-testid': 'control-debug' });
  const extraVariable = h('input', { placeholder: 'variable name', size: 14, 'data-testid': 'control-bind-name' });

  const connect = async () => {
    feedback.textContent = '';
    await client?.close();
    client = undefined;
    // Browsers hide why an upgrade was refused; asking REST first turns a bad key into a readable 401/403.
    let systems: SystemJson[];
    try {
      systems = await api<SystemJson[]>('/api/engine/v2/systems');
    } catch (err) {
      feedback.textContent = errorText(err);
      return;
    }
    const c = new ControlClient({ url: gatewayHttp, apiKey: apiKey() });
    c.onStatus((e) => {
      status.textContent = e.error && e.status !== 'connected' ? `${e.status} (${e.error.message})` : e.status;
      status.className = `badge ${e.status}`;
    });
    c.on('error', (err) => (feedback.textContent = errorText(err)));
    client = c;
    try {
      await c.connect();
      systemSelect.replaceChildren(h('option', { value: '' }, '— system —'), ...systems.map((s) => h('option', { value: s.id }, `${s.name} (${s.id})`)));
      systemSelect.disabled = false;
    } catch (err) {
      feedback.textContent = errorText(err);
    }
  };

  const pickSystem = async () => {
    await release();
    moduleSelect.replaceChildren();
    moduleSelect.disabled = true;
    if (!systemSelect.value) return;
    try {
      const system = await api<{ module_data: ModuleJson[] }>(`/api/engine/v2/systems/${encodeURIComponent(systemSelect.value)}?complete=true`);
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
      feedback.textContent = errorText(err);
    }
  };

  const selected = (): ModuleChoice | undefined => (moduleSelect.value === '' ? undefined : modules[Number(moduleSelect.value)]);

  const release = async () => {
    const pending = stops;
    stops = [];
    debugToggle.checked = false;
    variables.replaceChildren();
    methods.replaceChildren();
    debugLog.replaceChildren();
    await Promise.all(pending.map((stop) => stop().catch(() => {})));
  };

  const watchVariable = async (m: ModuleChoice, name: string) => {
    if (!client || variables.querySelector(`[data-var="${CSS.escape(name)}"]`)) return;
    const cell = h('td', { 'data-testid': `var-${name}` }, '—');
    variables.append(h('tr', { 'data-var': name }, h('th', {}, name), cell));
    const stop = await client.watch({ sys: systemSelect.value, mod: m.name, index: m.index, name }, (value) => {
      cell.textContent = show(value);
      cell.classList.remove('flash');
      void cell.offsetWidth;
      cell.classList.add('flash');
    });
    stops.push(stop);
  };

  const pickModule = async () => {
    await release();
    const m = selected();
    if (!m || !client) return;
    const slug = `${encodeURIComponent(m.name)}_${m.index}`;
    const sys = encodeURIComponent(systemSelect.value);
    try {
      const [state, functions] = await Promise.all([
        api<Record<string, unknown>>(`/api/engine/v2/systems/${sys}/${slug}`),
        api<Functions>(`/api/engine/v2/systems/${sys}/functions/${slug}`),
      ]);
      for (const [name, fn] of Object.entries(functions)) methods.append(methodRow(m, name, fn));
      for (const name of Object.keys(state)) await watchVariable(m, name);
    } catch (err) {
      feedback.textContent = errorText(err);
    }
  };

  const methodRow = (m: ModuleChoice, name: string, fn: Functions[string]) => {
    const inputs = fn.order.map((param) =>
      h('input', { placeholder: `${param}: ${fn.params[param]?.type ?? 'json'}`, size: 12, 'data-testid': `arg-${name}-${param}` }),
    );
    const result = h('span', { class: 'feedback', 'data-testid': `result-${name}` });
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

  debugToggle.addEventListener('change', async () => {
    const m = selected();
    if (!m || !client) return;
    if (!debugToggle.checked) {
      await client.ignore({ sys: systemSelect.value, mod: m.id }).catch((err: unknown) => (feedback.textContent = errorText(err)));
      return;
    }
    try {
      const stop = await client.debug({ sys: systemSelect.value, mod: m.id }, (line) => {
        debugLog.prepend(h('li', { class: line.level }, h('time', {}, new Date().toLocaleTimeString()), h('span', { class: 'badge' }, line.level), line.message));
        while (debugLog.childElementCount > 200) debugLog.lastElementChild!.remove();
      });
      stops.push(stop);
    } catch (err) {
      debugToggle.checked = false;
      feedback.textContent = errorText(err);
    }
  });
  systemSelect.addEventListener('change', () => void pickSystem());
  moduleSelect.addEventListener('change', () => void pickModule());

  return panel(
    'Control channel',
    'control-panel',
    h('div', { class: 'row' }, h('button', { onclick: () => void connect(), 'data-testid': 'control-connect' }, 'Connect with the API key'), status, systemSelect, moduleSelect),
    feedback,
    h(
      'div',
      { class: 'columns' },
      h(
        'div',
        {},
        h('h3', {}, 'Status variables (live)'),
        h('table', { class: 'variables' }, variables),
        h('div', { class: 'row' }, extraVariable, h('button', { onclick: () => selected() && extraVariable.value && void watchVariable(selected()!, extraVariable.value.trim()) }, 'Bind')),
      ),
      h('div', {}, h('h3', {}, 'Methods'), methods),
    ),
    h('h3', {}, h('label', {}, debugToggle, ' Debug log')),
    debugLog,
  );
}
