/**
 * Decides, for one profile on the node that is its mailbox's active consumer, whether the next message may
 * go straight to this node's sockets (direct) or must be relayed to every node holding the profile.
 * Pure bookkeeping; the broker feeds it what it sees (see AmqpBroker's "Switching" notes):
 * - direct only while no other node is known or suspected to hold the profile and none of this node's
 *   relay copies is still on its way back (so a direct message never overtakes a relayed one);
 * - a `hello` marker (a node joined) makes it relay; a `bye` marker or a consumer count of one (waiting
 *   single-active consumers included) lets it go direct again;
 * - a count that was asked for before a `hello` arrived says nothing about that newcomer and is ignored.
 */
export class DeliveryMode {
  private readonly peers = new Set<string>();
  private peersUnknown = true;
  private inflight = 0;
  private hellos = 0;
  private lastCheckAt = Number.NEGATIVE_INFINITY;
  private checking = false;

  constructor(
    private readonly checkIntervalMs: number,
    private readonly now: () => number = Date.now,
  ) {}

  /** Just (re)attached; `consumersBefore` is the mailbox's consumer count before this node consumed. */
  attached(consumersBefore: number | undefined): void {
    this.peers.clear();
    this.peersUnknown = consumersBefore !== 0;
    this.inflight = 0;
  }

  get direct(): boolean {
    return this.peers.size === 0 && !this.peersUnknown && this.inflight === 0;
  }

  hello(node: string): void {
    this.hellos += 1;
    this.peers.add(node);
  }

  bye(node: string): void {
    this.peers.delete(node);
  }

  /** A copy was relayed; it will come back through this node's own queue (or fail, see copyDone). */
  relayed(): void {
    this.inflight += 1;
  }

  /** One of this node's relay copies came back, or its relay failed. */
  copyDone(): void {
    if (this.inflight > 0) this.inflight -= 1;
  }

  /**
   * Whether a consumer count should be asked for now (`urgent` after a bye; otherwise at most every
   * checkIntervalMs, and only while relaying for peers known or suspected). Returns the token to pass to
   * checkDone, or undefined.
   */
  beginCheck(urgent: boolean): number | undefined {
    if (this.checking) return undefined;
    if (!urgent && (this.now() - this.lastCheckAt < this.checkIntervalMs || (this.peers.size === 0 && !this.peersUnknown))) return undefined;
    this.checking = true;
    this.lastCheckAt = this.now();
    return this.hellos;
  }

  /** The count asked for with `token` (undefined when it could not be had). */
  checkDone(token: number, consumers: number | undefined): void {
    this.checking = false;
    if (consumers === undefined || token !== this.hellos) return;
    if (consumers <= 1) {
      this.peers.clear();
      this.peersUnknown = false;
    } else if (this.peers.size === 0) {
      this.peersUnknown = true;
    }
  }
}
