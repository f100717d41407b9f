import { z } from 'zod';
import { GatewayError } from '../core/errors.js';
import { isValidProfileId, type ProfileId, profileId as asProfileId } from '../core/ids.js';
import {
  checkNotification,
  type CommandStatusMessage,
  commandStatusType,
  type DataDownloadMessage,
  dataDownloadType,
  type NotificationMessage,
} from '../protocol/notify.js';

/**
 * Where published bytes go: the configured NotificationBroker (any broker satisfies this), a publish-only
 * RabbitMQ connection (backends/rabbitmq/amqp-publisher.ts) or a gateway's HTTP publish endpoint
 * (./http-gateway-transport.ts). Resolves once the message was accepted; rejects with a GatewayError.
 */
export interface PublishTransport {
  publish(profile: ProfileId, body: Buffer): Promise<void>;
  close?(): Promise<void>;
}

export interface CommandStatus {
  /** The command id the API returned when the operation was started. */
  id: string;
  /** 1 pending (may repeat), 2 success, 3 failed. */
  status: 1 | 2 | 3;
  /** Status text; for 3 the reason. */
  body: string;
}

export interface DataDownload {
  id: string;
  dataContext?: string;
  /** 0: `body` is a textual status message; 1: `body` is a time-limited download link. */
  outputType: 0 | 1;
  body: string;
}

const commandStatusInput = z.strictObject({
  id: z.string().min(1, 'id must be a non-empty string'),
  status: z.union([z.literal(1), z.literal(2), z.literal(3)], { error: 'status must be 1 (pending), 2 (success) or 3 (failed)' }),
  body: z.string({ error: 'body must be a string' }),
});

const dataDownloadInput = z.strictObject({
  id: z.string().min(1, 'id must be a non-empty string'),
  dataContext: z.string({ error: 'dataContext must be a string' }).optional(),
  outputType: z.union([z.literal(0), z.literal(1)], { error: 'outputType must be 0 (text) or 1 (download link)' }),
  body: z.string({ error: 'body must be a string' }),
});

/**
 * The typed way for a backend to notify a profile's sockets (spec: notify-protocol.md, "Gateway → client:
 * notifications"). Every message is checked with the same rule the gateway applies to queue messages
 * (a JSON object with string `data.type` and `data.id`) before it is sent, so nothing is dead-lettered
 * for a shape mistake. Invalid input rejects with GatewayError('bad_request') and sends nothing.
 */
export class NotificationPublisher {
  constructor(private readonly transport: PublishTransport) {}

  /** `{"data":{"type":"X-DPT-CAB-ID","id":...,"command_status":...,"body":...}}` */
  async publishCommandStatus(profile: string, status: CommandStatus): Promise<void> {
    const input = parse(commandStatusInput, status);
    const message: CommandStatusMessage = {
      data: { type: commandStatusType, id: input.id, command_status: input.status, body: input.body },
    };
    await this.publish(profile, message);
  }

  /** `{"data":{"type":"X-DPT-CAB-REQUEST-ID","id":...,"data_context"?:...,"output_type":...,"body":...}}` */
  async publishDataDownload(profile: string, download: DataDownload): Promise<void> {
    const input = parse(dataDownloadInput, download);
    const message: DataDownloadMessage = {
      data: {
        type: dataDownloadType,
        id: input.id,
        ...(input.dataContext !== undefined && { data_context: input.dataContext }),
        output_type: input.outputType,
        body: input.body,
      },
    };
    await this.publish(profile, message);
  }

  /**
   * Any notification. An object is serialised as JSON; a string or Buffer is sent byte for byte (the
   * sockets receive exactly these bytes).
   */
  async publish(profile: string, message: NotificationMessage | CommandStatusMessage | DataDownloadMessage | string | Buffer): Promise<void> {
    if (!isValidProfileId(profile)) {
      throw new GatewayError('bad_request', 'profile id must be 1-200 characters of A-Z a-z 0-9 . _ : @ -');
    }
    const body = Buffer.isBuffer(message) ? message : Buffer.from(typeof message === 'string' ? message : JSON.stringify(message), 'utf8');
    const check = checkNotification(body);
    if (!check.ok) throw new GatewayError('bad_request', `not a notification: ${check.reason} (expected {"data":{"type":"...","id":"...",...}})`);
    await this.transport.publish(asProfileId(profile), body);
  }

  async close(): Promise<void> {
    await this.transport.close?.();
  }
}

function parse<T>(schema: z.ZodType<T>, value: unknown): T {
  const result = schema.safeParse(value);
  if (!result.success) throw new GatewayError('bad_request', result.error.issues.map((i) => i.message).join('; '));
  return result.data;
}
