type Attrs = Record<string, string | number | boolean | undefined | ((event: Event) => void)>;

/** Creates an element: `on*` attributes become listeners, `false`/undefined attributes are left out. */
export function h<K extends keyof HTMLElementTagNameMap>(tag: K, attrs: Attrs = {}, ...children: Array<Node | string>): HTMLElementTagNameMap[K] {
  const el = document.createElement(tag);
  for (const [name, value] of Object.entries(attrs)) {
    if (value === undefined || value === false) continue;
    if (typeof value === 'function') el.addEventListener(name.slice(2).toLowerCase(), value);
    else if (name === 'value' && 'value' in el) (el as HTMLInputElement).value = String(value);
    else el.setAttribute(name, value === true ? '' : String(value));
  }
  el.append(...children);
  return el;
}

export function panel(title: string, testId: string, ...children: Array<Node | string>): HTMLElement {
  return h('section', { class: 'panel', 'data-testid': testId, 'aria-label': title }, h('h2', {}, title), ...children);
}

/** A form control with its visible label (placeholders vanish as one types; screen readers need a name). */
export function field(label: string, control: HTMLElement): HTMLLabelElement {
  return h('label', { class: 'field' }, h('span', {}, label), control);
}

/**
 * Text that changes by itself (connection status, results, errors): announced by screen readers without
 * taking the focus.
 */
export function live<K extends keyof HTMLElementTagNameMap>(tag: K, attrs: Attrs = {}, ...children: Array<Node | string>): HTMLElementTagNameMap[K] {
  return h(tag, { role: 'status', 'aria-live': 'polite', ...attrs }, ...children);
}

/** Prepends `item` to `list` and drops the oldest items beyond `max`, calling `dropped` for each. */
export function prependBounded(list: HTMLElement, item: HTMLElement, max: number, dropped: (item: Element) => void = () => {}): void {
  list.prepend(item);
  while (list.childElementCount > max) {
    const oldest = list.lastElementChild!;
    oldest.remove();
    dropped(oldest);
  }
}

/** JSON for display, one line. */
export const show = (value: unknown): string => (value === undefined ? '—' : JSON.stringify(value));

/** Reads a form value as JSON when it parses, else as the text itself (so `hdmi2` needs no quotes). */
export function parseArg(text: string): unknown {
  const trimmed = text.trim();
  if (trimmed === '') return null;
  try {
    return JSON.parse(trimmed);
  } catch {
    return text;
  }
}

export function errorText(err: unknown): string {
  if (err instanceof Error) return `${err.name}: ${err.message}`;
  return String(err);
}
