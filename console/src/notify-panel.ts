import { type CommandStatusEvent, type DataDownloadEvent, NotificationClient, type NotificationMessage } from '../../sdk/src/index.js';
import { errorText, field, h, live, panel, prependBounded } from './dom.js';
import { api, apiKey, gatewayWs } from './settings.js';

const commandLabels = { 1: 'pending', 2: 'success', 3: 'failed' } as const;

/** Rows kept in the message list: a busy profile must not grow the page without end. */
export const maxMessageRows = 100;

const templates: Record<string, (id: string) => unknown> = {
  'command pending': (id) => ({ data: { type: 'X-DPT-CAB-ID', id, command_status: 1, body: 'Command accepted' } }),
  'command success': (id) => ({ data: { type: 'X-DPT-CAB-ID', id, command_status: 2, body: 'Command completed successfully' } }),
  'command failed': (id) => ({ data: { type: 'X-DPT-CAB-ID', id, command_status: 3, body: 'Command failed: storage unavailable' } }),
  'download link': (id) => ({
    data: { type: 'X-DPT-CAB-REQUEST-ID', id, data_context: 'data-token-context', output_type: 1, body: 'https://download.example/path?auth=token' },
  }),
};

/** Join a profile channel with a token and watch its messages live; publish a test message with the API key. */
export function notifyPanel(): HTMLElement {
  let client: NotificationClient | undefined;
  const status = live('span', { class: 'badge', 'data-testid': 'notify-status' }, 'not connected');
  const channel = live('span', { 'data-testid': 'notify-channel' });
  // Acknowledged delivery: asked for when checked; the gateway may still answer plain (an older one).
  const ackWanted = h('input', { type: 'checkbox', checked: true, 'data-testid': 'notify-ack' });
  const mode = live('span', {
    class: 'badge',
    'data-testid': 'notify-mode',
    title: 'ack: the console acknowledges each message, nothing is lost across a drop; plain: delivered once written to the socket',
  });
  const token = h('input', { 'data-testid': 'notify-token', placeholder: 'e.g. demo-token-alice', size: 28, autocomplete: 'off' });
  const feedback = live('span', { class: 'feedback', 'data-testid': 'notify-feedback' });
  // Scrollable: focusable so keyboard users can scroll it.
  const messages = h('ol', { class: 'messages', 'data-testid': 'notify-messages', 'aria-label': 'Messages', tabindex: 0 });
  const rows = new Map<string, HTMLElement>();
  let clientAck = true;

  const ensureClient = async () => {
    // The mode is asked for at join: a change of the checkbox takes a new client.
    if (client && clientAck !== ackWanted.checked) {
      const old = client;
      client = undefined;
      await old.close();
    }
    if (client) return client;
    clientAck = ackWanted.checked;
    const c = new NotificationClient({ url: `${gatewayWs}/`, ack: clientAck });
    c.onStatus((e) => {
      if (client !== c) return;
      status.textContent = e.status;
      status.className = `badge ${e.status}`;
      if (e.status !== 'connected') mode.textContent = '';
    });
    c.on('joined', ({ channelId, deliveryMode }) => {
      channel.textContent = `joined ${channelId}`;
      mode.textContent = `delivery: ${deliveryMode}`;
    });
    c.on('expired', () => (channel.textContent = 'token expired: channel left'));
    c.on('commandStatus', (e) => commandRow(e));
    c.on('dataDownload', (e) => downloadRow(e));
    c.on('message', (m, raw) => {
      if (m.data.type !== 'X-DPT-CAB-ID' && m.data.type !== 'X-DPT-CAB-REQUEST-ID') otherRow(m, raw);
    });
    c.on('error', (err) => (feedback.textContent = errorText(err)));
    return (client = c);
  };

  const row = (key: string, ...children: Array<Node | string>) => {
    let li = rows.get(key);
    if (!li) {
      li = h('li', { 'data-testid': 'notify-message', 'data-key': key });
      rows.set(key, li);
      prependBounded(messages, li, maxMessageRows, (old) => rows.delete((old as HTMLElement).dataset.key!));
    }
    li.replaceChildren(h('time', {}, new Date().toLocaleTimeString()), ...children);
    return li;
  };
  const commandRow = (e: CommandStatusEvent) => {
    const label = commandLabels[e.status];
    const li = row(`cmd:${e.commandId}`, h('span', { class: `badge ${label}`, 'data-testid': 'command-status' }, label), h('code', {}, e.commandId), ' ', e.body);
    li.dataset.id = e.commandId;
  };
  const downloadRow = (e: DataDownloadEvent) => {
    const content = e.outputType === 1 ? h('a', { href: e.body, target: '_blank', rel: 'noopener noreferrer', 'data-testid': 'download-link' }, e.body) : e.body;
    const li = row(`dl:${e.requestId}`, h('span', { class: 'badge download' }, e.outputType === 1 ? 'download' : 'status'), h('code', {}, e.requestId), ' ', content);
    li.dataset.id = e.requestId;
  };
  const otherRow = (m: NotificationMessage, raw: string) => {
    const li = row(`other:${m.data.type}:${m.data.id}:${raw.length}:${Math.random()}`, h('span', { class: 'badge' }, m.data.type), h('code', {}, raw));
    li.dataset.id = m.data.id;
  };

  const join = async () => {
    feedback.textContent = '';
    try {
      const c = await ensureClient();
      if (c.channelId) await c.leave();
      const { channelId } = await c.join(token.value.trim());
      channel.textContent = `joined ${channelId}`;
      profile.value ||= channelId;
    } catch (err) {
      feedback.textContent = errorText(err);
    }
  };
  const leave = async () => {
    try {
      await client?.leave();
      channel.textContent = 'left';
      mode.textContent = '';
    } catch (err) {
      feedback.textContent = errorText(err);
    }
  };

  // Publish a test message.
  const profile = h('input', { 'data-testid': 'publish-profile', placeholder: 'e.g. alice', size: 16 });
  const template = h('select', { 'data-testid': 'publish-template' }, ...Object.keys(templates).map((name) => h('option', { value: name }, name)));
  const body = h('textarea', { 'data-testid': 'publish-body', rows: 4, spellcheck: false, 'aria-label': 'Message body (JSON)' });
  const fill = () => (body.value = JSON.stringify(templates[template.value]!(crypto.randomUUID()), null, 1));
  template.addEventListener('change', fill);
  fill();
  const published = live('span', { class: 'feedback', 'data-testid': 'publish-result' });
  const publish = async () => {
    published.textContent = '';
    try {
      JSON.parse(body.value);
      await api(`/api/notify/v1/profiles/${encodeURIComponent(profile.value.trim())}/messages`, { method: 'POST', body: body.value });
      published.textContent = `published to ${profile.value.trim()}`;
      if (!apiKey()) published.textContent += ' (no API key set)';
    } catch (err) {
      published.textContent = errorText(err);
    }
  };

  return panel(
    'Notification channel',
    'notify-panel',
    h(
      'div',
      { class: 'row' },
      field('Authorization token', token),
      h('button', { onclick: () => void join(), 'data-testid': 'notify-join' }, 'Join'),
      h('button', { onclick: () => void leave(), 'data-testid': 'notify-leave' }, 'Leave'),
      field('Acknowledged delivery', ackWanted),
      status,
      channel,
      mode,
    ),
    feedback,
    h('h3', {}, 'Publish a test message (needs a key with the publish right)'),
    h(
      'div',
      { class: 'row' },
      field('Profile', profile),
      field('Template', template),
      h('button', { onclick: () => void publish(), 'data-testid': 'publish-send' }, 'Publish'),
      published,
    ),
    body,
    h('h3', {}, 'Messages'),
    messages,
  );
}
