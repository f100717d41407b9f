import type { Clock } from '../core/clock.js';
import type { Logger } from '../core/logger.js';
import type { NotificationBroker } from '../core/notification-broker.js';
import type { TokenVerifier } from '../core/token-verifier.js';
import type { GatewayMetrics } from '../observability/metrics.js';
import type { UpgradeRoute } from '../transport/websocket-gateway.js';
import { NotifySession, type NotifySessionDeps, type NotifySessionOptions } from './notify-session.js';
import type { ProfileHub } from './profile-hub.js';

export interface NotifyRouteDeps {
  hub: ProfileHub;
  broker: NotificationBroker;
  verifier: TokenVerifier;
  clock: Clock;
  log: Logger;
  metrics: GatewayMetrics;
  options: NotifySessionOptions & { maxFrameBytes: number };
}

/** The notification channel at `/`: no authentication at connect, a session per socket. */
export function createNotifyRoute(deps: NotifyRouteDeps): UpgradeRoute<null> {
  const sessionDeps: NotifySessionDeps = {
    hub: deps.hub,
    verifier: deps.verifier,
    brokerAvailable: () => deps.broker.state() === 'up',
    clock: deps.clock,
    log: deps.log,
    metrics: deps.metrics,
    options: deps.options,
  };
  return {
    channel: 'notify',
    maxPayloadBytes: deps.options.maxFrameBytes,
    authorize: async () => ({ context: null }),
    open: (connection) => new NotifySession(sessionDeps, connection),
  };
}
