import { readFileSync } from 'node:fs';
import { Parser } from '@asyncapi/parser';
import { Ajv, type ValidateFunction } from 'ajv';
import { WebSocket } from 'ws';

export type ContractChannel = 'notify' | 'control';

interface CompiledMessage {
  name: string;
  validate: ValidateFunction;
}

export interface Contract {
  /** Diagnostics of severity error (0) from the parser. */
  errors: string[];
  /** The names of the messages a frame matches, sent by the gateway (`server`) or a client (`client`). */
  match(channel: ContractChannel, direction: 'server' | 'client', frame: string): string[];
  /** Every message name per channel and direction (for coverage checks). */
  messages(channel: ContractChannel, direction: 'server' | 'client'): string[];
  /** [message name, example payload] pairs, to check the examples against their own schemas. */
  examples(): Array<{ channel: string; name: string; payload: unknown; valid: boolean }>;
}

/** The payload a frame carries: JSON when it parses, else the text itself (the heartbeat `ping`/`pong`). */
export function framePayload(frame: string): unknown {
  try {
    return JSON.parse(frame);
  } catch {
    return frame;
  }
}

/**
 * Parses docs/asyncapi.yaml with @asyncapi/parser and compiles every message payload schema with ajv.
 * Direction comes from the operations: `receive` operations' messages are client frames; their replies and
 * `send` operations' messages are gateway frames.
 */
export async function loadContract(path = 'docs/asyncapi.yaml'): Promise<Contract> {
  const { document, diagnostics } = await new Parser().parse(readFileSync(path, 'utf8'));
  const errors = diagnostics.filter((d) => d.severity === 0).map((d) => `${d.code}: ${d.message} at ${d.path.join('.')}`);
  if (!document) return { errors, match: () => [], messages: () => [], examples: () => [] };
  const ajv = new Ajv({ strict: false, allErrors: true });
  const table = new Map<string, CompiledMessage[]>();
  const examples: Array<{ channel: string; name: string; payload: unknown; valid: boolean }> = [];
  const add = (channel: string, direction: string, message: { name(): string | undefined; id(): string; payload(): { json(): unknown } | undefined; examples(): { all(): Array<{ payload(): unknown }> } }) => {
    const key = `${channel}/${direction}`;
    const list = table.get(key) ?? [];
    const name = message.name() ?? message.id();
    if (list.some((m) => m.name === name)) return;
    const validate = ajv.compile((message.payload()?.json() ?? {}) as object);
    list.push({ name, validate });
    table.set(key, list);
    for (const example of message.examples().all()) examples.push({ channel, name, payload: example.payload(), valid: validate(example.payload()) });
  };
  for (const operation of document.operations().all()) {
    for (const channel of operation.channels().all()) {
      const id = channel.id();
      const clientSends = operation.action() === 'receive';
      for (const message of operation.messages().all()) add(id, clientSends ? 'client' : 'server', message);
      for (const message of operation.reply()?.messages().all() ?? []) add(id, clientSends ? 'server' : 'client', message);
    }
  }
  return {
    errors,
    match(channel, direction, frame) {
      const payload = framePayload(frame);
      return (table.get(`${channel}/${direction}`) ?? []).filter((m) => m.validate(payload)).map((m) => m.name);
    },
    messages: (channel, direction) => (table.get(`${channel}/${direction}`) ?? []).map((m) => m.name),
    examples: () => examples,
  };
}

export interface RecordedFrame {
  channel: ContractChannel;
  direction: 'server' | 'client';
  text: string;
}

/**
 * Not a fake: a real `ws` WebSocket that records every text frame it sends and receives, for injection into the SDK
 * (`WebSocket` option). The channel is told from the URL path.
 */
export function recordingWebSocket(frames: RecordedFrame[]): new (url: string) => WebSocket {
  return class RecordingWebSocket extends WebSocket {
    private readonly channel: 'notify' | 'control';

    constructor(url: string) {
      super(url);
      this.channel = new URL(url).pathname.endsWith('/systems/control') ? 'control' : 'notify';
      this.on('message', (data: Buffer, isBinary: boolean) => {
        if (!isBinary) frames.push({ channel: this.channel, direction: 'server', text: data.toString('utf8') });
      });
    }

    override send(data: any, ...rest: any[]): void {
      if (typeof data === 'string') frames.push({ channel: this.channel, direction: 'client', text: data });
      (super.send as (...args: unknown[]) => void)(data, ...rest);
    }
  };
}
