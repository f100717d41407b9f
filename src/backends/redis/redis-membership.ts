import type { BackendState } from '../../core/backend-state.js';
import type { Clock } from '../../core/clock.js';
import type { FleetMembership, NodeId } from '../../core/fleet.js';
import type { Logger } from '../../core/logger.js';
import { MembershipView } from '../../core/membership-view.js';
import type { RedisFleetLink } from './redis-fleet-link.js';

// One round trip a heartbeat: refresh this node, forget expired ones, read the live set. Expiry is in
// Redis's own time, so the nodes' clocks need not agree.
const heartbeat = `
local t = redis.call('TIME')
local now = tonumber(t[1]) * 1000 + math.floor(tonumber(t[2]) / 1000)
redis.call('ZADD', KEYS[1], now + tonumber(ARGV[2]), ARGV[1])
redis.call('ZREMRANGEBYSCORE', KEYS[1], '-inf', now)
return redis.call('ZRANGE', KEYS[1], 0, -1)`;

export interface RedisMembershipOptions {
  nodeId: NodeId;
  heartbeatIntervalMs: number;
  /** A node's entry expires this long after its last heartbeat. */
  memberTtlMs: number;
  clock: Clock;
  log: Logger;
}

/**
 * Live nodes in a Redis sorted set `fleet/nodes` (member = node id, score = expiry in Redis time), with
 * channel `fleet/changes` for announcements (a node leaving, a lease released) so others act at once.
 */
export class RedisMembership implements FleetMembership {
  readonly name = 'fleet';
  readonly kind = 'redis';
  readonly nodeId: NodeId;
  private readonly view = new MembershipView();
  private running = false;
  private cancelBeat: () => void = () => {};

  constructor(
    private readonly link: RedisFleetLink,
    private readonly options: RedisMembershipOptions,
  ) {
    this.nodeId = options.nodeId;
  }

  state(): BackendState {
    if (!this.running) return 'down';
    return this.view.healthy() && this.link.state() === 'up' ? 'up' : 'connecting';
  }

  async start(): Promise<void> {
    await this.link.subscribe(this.link.key('fleet/changes'), () => void this.beat(false));
    this.running = true;
    await this.beat(true);
    if (!this.view.healthy()) throw new Error('fleet: first heartbeat failed');
  }

  async stop(): Promise<void> {
    this.running = false;
    this.cancelBeat();
    const { link } = this;
    await link.run(() => link.cmd.zrem(link.key('fleet/nodes'), this.nodeId));
    await this.announce();
  }

  live(): readonly NodeId[] {
    return this.view.live();
  }

  healthy(): boolean {
    return this.view.healthy();
  }

  onChange(listener: () => void): () => void {
    return this.view.onChange(listener);
  }

  async announce(): Promise<void> {
    const { link } = this;
    await link.run(() => link.cmd.publish(link.key('fleet/changes'), this.nodeId));
  }

  /** A heartbeat; `rearm` only from the timer chain, so announcements do not start a second chain. */
  private async beat(rearm: boolean): Promise<void> {
    if (!this.running) return;
    const { link } = this;
    try {
      const nodes = (await link.run(() =>
        link.cmd.eval(heartbeat, 1, link.key('fleet/nodes'), this.nodeId, this.options.memberTtlMs),
      )) as string[];
      if (!this.view.healthy()) this.options.log.info({ nodes }, 'fleet heartbeat stored');
      if (this.view.update(nodes)) this.options.log.info({ nodes: this.view.live() }, 'fleet membership changed');
    } catch (err) {
      if (this.view.healthy()) this.options.log.warn({ err: String(err) }, 'fleet heartbeat failed');
      this.view.failed();
    } finally {
      if (rearm && this.running) this.cancelBeat = this.options.clock.schedule(this.options.heartbeatIntervalMs, () => void this.beat(true));
    }
  }
}
