/**
 * Decides, for one profile on the node that is its mailbox's active consumer, whether the next message may
 * go straight to this node's sockets (direct) or must be relayed to every node holding the profile.
 * Pure bookkeeping; ProfileSubscription feeds it what it sees (docs/rabbitmq-design.md, "Switching"):
 * - direct only while no other node is known or suspected to hold the profile and none of this node's
 *   relay copies is still on its way back (so a direct message never overtakes a relayed one);
 * - and, for a node that may have held the profile while another node was active (so that node's copies
 *   may still wait in this node's relay queue), only once one of its own copies relayed since it attached
 *   came back through that queue: the queue is consumed in order, so every older copy was handed over
 *   first (the hand-over after the active node left);
 * - a `hello` marker (a node joined) makes it relay; a `bye` marker lets it go direct again. A consumer
 *   count of one (waiting single-active consumers included) forgets a node that said hello only once the
 *   count has missed it for `forgetAfterMs` (the relay queues' lifetime): a node whose broker connection
 *   was cut also drops out of the count, and until it is back its sockets stay joined and its relay queue
 *   must keep receiving their copies. A node that crashed without a `bye` costs relaying until then;
 * - a count that was asked for before a `hello` arrived says nothing about that newcomer and is ignored.
 * The node asks for a count right after it consumes the mailbox too (beginCheck/checkDone): alone, it
 * stays direct and needs no relay queue; with company, it relays until a later count says alone.
 */
export class DeliveryModeTracker {
  /** Nodes that said hello, with the time a count first missed them (undefined: not missed since). */
  private readonly peers = new Map<string, number | undefined>();
  private peersUnknown = true;
  private inflight = 0;
  /** No copy another node relayed can still wait in this node's relay queue. */
  private queueClear = true;
  private hellos = 0;
  private lastCheckAt = Number.NEGATIVE_INFINITY;
  private checking = false;

  constructor(
    private readonly checkIntervalMs: number,
    private readonly forgetAfterMs: number,
    private readonly now: () => number = Date.now,
  ) {}

  /**
   * Just (re)attached. `othersPossible`: the mailbox had other consumers before this node consumed, or this
   * node's relay queue (which may hold copies) outlived its previous link; either way, relay until a count
   * says this node is alone, so nothing it delivers overtakes a queued copy. A count asked for before this
   * call is void (its checkDone may still come and is then ignored).
   */
  attached(othersPossible: boolean): void {
    this.peers.clear();
    this.peersUnknown = othersPossible;
    this.queueClear = !othersPossible;
    this.inflight = 0;
    this.checking = false;
    this.hellos += 1;
  }

  get direct(): boolean {
    return this.peers.size === 0 && !this.peersUnknown && this.inflight === 0 && this.queueClear;
  }

  /**
   * Local first: write to this node's sockets straight from the mailbox and copy only to the other holders'
   * relay queues, by name. Only while every other holder is known from its hello (this node has been the
   * active consumer since a count said it was alone, so no holder said hello to a predecessor) and, as for
   * direct, no copy of this node's own or of another relaying node can still be on its way to this node's
   * sockets through its relay queue.
   */
  get localFirst(): boolean {
    return this.peers.size > 0 && !this.peersUnknown && this.inflight === 0 && this.queueClear;
  }

  /** Other nodes are known to hold the profile (they said hello, and neither a bye nor a count since). */
  get hasKnownPeers(): boolean {
    return this.peers.size > 0;
  }

  /** The nodes that said hello (for local-first copies, addressed to their relay queues). */
  knownPeers(): IterableIterator<string> {
    return this.peers.keys();
  }

  /**
   * RabbitMQ returned a local-first copy as unroutable: none of the known holders' relay queues exists any
   * more (each was deleted on its node's leave, or expired), so none of them holds the profile.
   */
  peerQueuesGone(): void {
    this.peers.clear();
  }

  hello(node: string): void {
    this.hellos += 1;
    this.peers.set(node, undefined);
  }

  bye(node: string): void {
    this.peers.delete(node);
  }

  /**
   * A message entered the relay path (possibly still waiting for this node's relay queue); its copy will
   * come back through this node's own queue (copyBack) or the relay fails (relayFailed).
   */
  relayed(count = 1): void {
    this.inflight += count;
  }

  /**
   * One of this node's relay copies, relayed since it attached, came back through its own relay queue
   * (`count`: the notifications it carries, each counted by relayed).
   */
  copyBack(count = 1): void {
    this.inflight = Math.max(0, this.inflight - count);
    this.queueClear = true;
  }

  /** A relay failed: the message (`count` notifications) went back to the mailbox instead of into the relay queues. */
  relayFailed(count = 1): void {
    this.inflight = Math.max(0, this.inflight - count);
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
      const now = this.now();
      for (const [node, missedSince] of this.peers) {
        if (missedSince === undefined) this.peers.set(node, now);
        else if (now - missedSince >= this.forgetAfterMs) this.peers.delete(node);
      }
      this.peersUnknown = false;
    } else if (this.peers.size > 0) {
      // Someone is there: the nodes that said hello are not missed (a count cannot say which one it saw).
      for (const node of this.peers.keys()) this.peers.set(node, undefined);
    } else {
      // Maybe not the active consumer: another node may relay into this node's queue until it leaves.
      this.peersUnknown = true;
      this.queueClear = false;
    }
  }
}
