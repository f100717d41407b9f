import { ControlClient, type ControlClientOptions, NotificationClient, type NotificationClientOptions } from '../../sdk/src/index.js';
import { FakeWebSocket } from './fake-websocket.js';

/** What the gateway answers to a successful join. */
export const joinedReply = (correlationId: string, channelId = 'alice') => ({
  correlationId,
  status: 200,
  data: { channelId, message: 'Successfully joined profile channel.' },
});

/** Whether a promise has settled once everything queued so far has run (no timers involved). */
export async function state(promise: Promise<unknown>): Promise<'pending' | 'resolved' | 'rejected'> {
  let result: 'pending' | 'resolved' | 'rejected' = 'pending';
  promise.then(
    () => (result = 'resolved'),
    () => (result = 'rejected'),
  );
  await new Promise((resolve) => setImmediate(resolve));
  return result;
}

/** A NotificationClient on a FakeWebSocket, joined as alice. */
export async function joinedNotify(options: Partial<NotificationClientOptions> = {}) {
  const client = new NotificationClient({ url: 'ws://gateway.test/', WebSocket: FakeWebSocket, heartbeatIntervalMs: 0, reconnect: { initialDelayMs: 100, jitter: 0 }, ...options });
  const created = FakeWebSocket.nextInstance();
  const joining = client.join('tok-alice');
  const ws = await created;
  ws.accept();
  ws.deliver(joinedReply((await ws.nextSent()).correlationId));
  await joining;
  return { client, ws };
}

/** A ControlClient on a FakeWebSocket, connected. */
export async function connectedControl(options: Partial<ControlClientOptions> = {}) {
  const client = new ControlClient({ url: 'ws://gateway.test', apiKey: 'k', WebSocket: FakeWebSocket, heartbeatIntervalMs: 0, reconnect: { initialDelayMs: 100, jitter: 0 }, ...options });
  const created = FakeWebSocket.nextInstance();
  const connecting = client.connect();
  const ws = await created;
  ws.accept();
  await connecting;
  return { client, ws };
}
