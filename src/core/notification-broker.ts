import type { BackendHealth } from './backend-state.js';
import type { ProfileId } from './ids.js';

/**
 * What a delivery handler tells the broker about one message:
 * - `ack`: written to every local socket of the profile; the broker may forget it.
 * - `requeue`: nobody here could take it (the last local socket just left); keep it for the profile.
 * - `redeliver`: an ack-mode client did not acknowledge it; deliver it to the profile again, even where
 *   that means other holders see it twice (spec: "Acknowledged delivery": at least once).
 * - `reject`: it can never be delivered; dead-letter it.
 */
export type DeliveryVerdict = 'ack' | 'requeue' | 'redeliver' | 'reject';

/**
 * Called once per message, in publish order. `body` is the raw bytes. The verdict may come later (a
 * promise): the broker keeps the message unacknowledged until it settles, so a message is acknowledged
 * only once it was written out to the sockets. Calls for later messages do not wait for earlier verdicts.
 */
export type DeliveryHandler = (body: Buffer) => DeliveryVerdict | Promise<DeliveryVerdict>;

export interface BrokerSubscription {
  /** Stops deliveries to this node for the profile. Messages not yet handled stay with the broker. */
  unsubscribe(): Promise<void>;
}

/**
 * Per-profile message transport (spec: notify-protocol.md, "Delivery guarantees" and "Broker contract").
 *
 * Contract shared by every implementation (test/suites/notification-broker.contract.ts checks it):
 * - `subscribe` is called by a node on its profile's first local join and resolves only once deliveries
 *   are live; messages that waited for the profile (published while nobody was subscribed) come first,
 *   in publish order. It rejects with GatewayError('unavailable') when the broker cannot be reached.
 * - Every node subscribed to a profile receives every message for it exactly once in steady state, in
 *   publish order (at least once across failures: a message may be delivered again after a crash).
 * - A message nobody is subscribed to is kept, bounded by the retention policy (max length, TTL, expiry of
 *   abandoned queues); what the policy drops is logged.
 * - A message that is not a JSON object with string `data.type` and `data.id` is never handed to a
 *   handler: it is dead-lettered and logged.
 * - `publish` resolves once the broker has accepted the message (publisher confirm for RabbitMQ).
 */
export interface NotificationBroker extends BackendHealth {
  start(): Promise<void>;
  subscribe(profile: ProfileId, onDelivery: DeliveryHandler): Promise<BrokerSubscription>;
  publish(profile: ProfileId, body: Buffer): Promise<void>;
  /** Registers a listener for state changes; returns the function that removes it. */
  onStateChange(listener: (state: ReturnType<NotificationBroker['state']>) => void): () => void;
  /** Stops consuming (so another node takes over) and disconnects. */
  close(): Promise<void>;
}
