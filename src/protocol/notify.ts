/**
 * Wire shapes of the notification channel (spec: notify-protocol.md) and their pure parse/format.
 * No I/O: shared by the gateway, the SDK and the tests.
 */

export type NotifyAction = 'joinChannel' | 'leaveChannel' | 'ack';

export interface NotifyRequest {
  action: NotifyAction;
  correlationId?: string;
  /** Present for joinChannel; for leaveChannel either this or channelId. */
  authorizationToken?: string;
  channelId?: string;
  /** joinChannel: the client asks for acknowledged delivery (spec: "Acknowledged delivery"). */
  ack?: boolean;
  /** ack: every frame up to this one was processed. */
  seq?: number;
}

export interface NotifyReply {
  correlationId?: string;
  status: number;
  data: { channelId?: string; message: string; ack?: true };
}

export type ParseResult = { ok: true; request: NotifyRequest } | { ok: false; correlationId?: string; message: string };

const actions: ReadonlySet<string> = new Set<NotifyAction>(['joinChannel', 'leaveChannel', 'ack']);

const nonEmptyString = (value: unknown): value is string => typeof value === 'string' && value.length > 0;

const bareAckPrefix = '{"action":"ack","seq":';

/**
 * The seq of an ack written exactly as the SDK writes it, `{"action":"ack","seq":<n>}`, read without
 * JSON.parse; undefined for any other text (parseNotifyRequest then decides, errors included). An
 * acknowledging client sends about one of these per message, so this is the channel's hottest request.
 */
export function bareAckSeq(text: string): number | undefined {
  const end = text.length - 1;
  const digits = end - bareAckPrefix.length;
  if (digits < 1 || digits > 15 || text.charCodeAt(end) !== 0x7d || !text.startsWith(bareAckPrefix)) return undefined;
  // JSON has no leading zeros, and seq 0 is refused: both are left to the full parse and its error.
  if (text.charCodeAt(bareAckPrefix.length) === 0x30) return undefined;
  let seq = 0;
  for (let i = bareAckPrefix.length; i < end; i++) {
    const digit = text.charCodeAt(i) - 0x30;
    if (digit < 0 || digit > 9) return undefined;
    seq = seq * 10 + digit;
  }
  return seq;
}

/**
 * Parses one client text frame. Lenient as the spec asks: `authorizationToken` / `correlationId` may also
 * stand at the top level, and leaveChannel may name `data.channelId` instead of the token.
 */
export function parseNotifyRequest(text: string): ParseResult {
  let frame: unknown;
  try {
    frame = JSON.parse(text);
  } catch {
    return { ok: false, message: 'Malformed JSON.' };
  }
  if (frame === null || typeof frame !== 'object' || Array.isArray(frame)) {
    return { ok: false, message: 'A request must be a JSON object.' };
  }
  const top = frame as Record<string, unknown>;
  const data = top.data !== null && typeof top.data === 'object' && !Array.isArray(top.data) ? (top.data as Record<string, unknown>) : {};
  const rawCorrelation = top.correlationId ?? data.correlationId;
  const correlationId =
    typeof rawCorrelation === 'string' || typeof rawCorrelation === 'number' ? String(rawCorrelation) : undefined;
  const fail = (message: string): ParseResult => ({ ok: false, ...(correlationId !== undefined && { correlationId }), message });

  if (top.data !== undefined && data !== top.data) return fail('Field "data" must be an object.');
  if (!nonEmptyString(top.action)) return fail('Missing field "action".');
  if (!actions.has(top.action)) return fail(`Unknown action "${truncate(top.action)}".`);
  const action = top.action as NotifyAction;
  if (action === 'ack') {
    const seq = top.seq ?? data.seq;
    if (typeof seq !== 'number' || !Number.isSafeInteger(seq) || seq < 1) return fail('Field "seq" must be a positive integer.');
    return { ok: true, request: { action, ...(correlationId !== undefined && { correlationId }), seq } };
  }
  const ack = data.ack ?? top.ack;
  if (ack !== undefined && typeof ack !== 'boolean') return fail('Field "ack" must be true or false.');
  const token = data.authorizationToken ?? top.authorizationToken;
  const channel = data.channelId ?? top.channelId;
  if (token !== undefined && !nonEmptyString(token)) return fail('Field "authorizationToken" must be a non-empty string.');
  if (channel !== undefined && !nonEmptyString(channel)) return fail('Field "channelId" must be a non-empty string.');

  if (action === 'joinChannel' && token === undefined) return fail('Missing field "data.authorizationToken".');
  if (action === 'leaveChannel' && token === undefined && channel === undefined) {
    return fail('Missing field "data.authorizationToken" or "data.channelId".');
  }
  return {
    ok: true,
    request: {
      action,
      ...(correlationId !== undefined && { correlationId }),
      ...(token !== undefined && { authorizationToken: token }),
      ...(channel !== undefined && { channelId: channel }),
      ...(action === 'joinChannel' && ack === true && { ack: true }),
    },
  };
}

export function formatNotifyReply(reply: NotifyReply): string {
  const ordered: NotifyReply = {
    ...(reply.correlationId !== undefined && { correlationId: reply.correlationId }),
    status: reply.status,
    data: reply.data,
  };
  return JSON.stringify(ordered);
}

export const joinedMessage = 'Successfully joined profile channel.';
export const leftMessage = 'Successfully left profile channel.';
export const expiredMessage = 'Authorization token expired; channel left.';

/** The notification shapes a backend publishes (forwarded unchanged). */
export interface CommandStatusMessage {
  data: { type: 'X-DPT-CAB-ID'; id: string; command_status: 1 | 2 | 3; body: string };
}
export interface DataDownloadMessage {
  data: { type: 'X-DPT-CAB-REQUEST-ID'; id: string; data_context?: string; output_type: 0 | 1; body: string };
}
export type NotificationMessage = { data: { type: string; id: string; [key: string]: unknown }; [key: string]: unknown };

export const commandStatusType = 'X-DPT-CAB-ID';
export const dataDownloadType = 'X-DPT-CAB-REQUEST-ID';

/**
 * Whether a queue message may be forwarded: valid UTF-8 (a text frame of anything else makes every client
 * fail the connection), a JSON object whose `data` is an object with string `type` and string `id`, and
 * (when `maxBytes` is given) no larger than that. Returns the reason when it may not (for the dead-letter
 * log line and the publish endpoint's 400).
 */
export function checkNotification(body: Uint8Array | string, maxBytes?: number): { ok: true } | { ok: false; reason: string } {
  let text: string;
  if (typeof body === 'string') {
    text = body;
  } else {
    if (maxBytes !== undefined && body.byteLength > maxBytes) return { ok: false, reason: `larger than ${maxBytes} bytes` };
    try {
      // Uint8Array (a Buffer is one) rather than Buffer, so the SDK's declarations need no Node types.
      text = utf8.decode(body);
    } catch {
      return { ok: false, reason: 'not valid UTF-8' };
    }
  }
  let value: unknown;
  try {
    value = JSON.parse(text);
  } catch {
    return { ok: false, reason: 'not JSON' };
  }
  if (value === null || typeof value !== 'object' || Array.isArray(value)) return { ok: false, reason: 'not a JSON object' };
  const data = (value as { data?: unknown }).data;
  if (data === null || typeof data !== 'object' || Array.isArray(data)) return { ok: false, reason: 'no "data" object' };
  const { type, id } = data as { type?: unknown; id?: unknown };
  if (!nonEmptyString(type)) return { ok: false, reason: 'no string "data.type"' };
  if (!nonEmptyString(id)) return { ok: false, reason: 'no string "data.id"' };
  return { ok: true };
}

const utf8 = new TextDecoder('utf-8', { fatal: true });

function truncate(text: string, max = 40): string {
  return text.length > max ? `${text.slice(0, max)}…` : text;
}
