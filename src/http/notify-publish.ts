import type { FastifyInstance } from 'fastify';
import type { CredentialStore } from '../core/credentials.js';
import { profileId, profileIdPattern } from '../core/ids.js';
import type { Logger } from '../core/logger.js';
import type { NotificationBroker } from '../core/notification-broker.js';
import type { GatewayMetrics } from '../observability/metrics.js';
import { checkNotification } from '../protocol/notify.js';
import { requireApiKey } from './api-key.js';
import { httpError } from './errors.js';

export { profileIdPattern } from '../core/ids.js';

export interface PublishRouteDeps {
  broker: NotificationBroker;
  credentials: CredentialStore;
  log: Logger;
  metrics: GatewayMetrics;
  maxBodyBytes: number;
  /** A notification larger than this is refused (400), as the brokers would dead-letter it. */
  maxMessageBytes: number;
}

/**
 * POST /api/notify/v1/profiles/:profileId/messages: a backend (or the demo) publishes one notification.
 * The key needs the publish right. The body is forwarded byte for byte, so it is kept raw and only checked.
 */
export function registerNotifyPublish(app: FastifyInstance, deps: PublishRouteDeps): void {
  void app.register(async (scope) => {
    scope.removeContentTypeParser('application/json');
    scope.addContentTypeParser('application/json', { parseAs: 'buffer', bodyLimit: deps.maxBodyBytes }, (_req, body, done) => done(null, body));

    // The key is checked before the body is read: a caller without one gets 401, never 413 or a wait.
    scope.addHook('onRequest', async (req) => {
      requireApiKey(req, deps.credentials);
    });
    scope.post<{ Params: { profileId: string } }>('/api/notify/v1/profiles/:profileId/messages', async (req, reply) => {
      const principal = requireApiKey(req, deps.credentials);
      if (!principal.canPublish) throw httpError(403, 'this API key may not publish');
      if (!profileIdPattern.test(req.params.profileId)) throw httpError(400, 'profile id must be 1-200 characters of A-Z a-z 0-9 . _ : @ -');
      if (!Buffer.isBuffer(req.body)) throw httpError(400, 'body must be a JSON object (Content-Type: application/json)');
      const check = checkNotification(req.body, deps.maxMessageBytes);
      if (!check.ok) throw httpError(400, `body is not a notification: ${check.reason} (expected {"data":{"type":"...","id":"...",...}})`);
      const profile = profileId(req.params.profileId);
      try {
        await deps.broker.publish(profile, req.body);
      } catch (err) {
        deps.log.warn({ profileId: profile, reason: (err as Error).message }, 'publish failed: broker unavailable');
        throw httpError(503, 'the message broker is unavailable; try again');
      }
      deps.metrics.messagesPublished.inc();
      deps.log.info({ profileId: profile, by: principal.id, bytes: req.body.length }, 'published');
      return reply.code(202).send({ status: 'accepted', profileId: profile });
    });
  });
}
