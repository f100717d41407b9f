import type { Lease, ModuleLeases, ModulePlacementRecord, NodeId } from '../../core/fleet.js';
import type { ModuleId } from '../../core/ids.js';
import type { RedisFleetLink } from './redis-fleet-link.js';

// A grant is a compare-and-set: only when nobody holds the lease. The token grows with every grant.
const acquire = `
if redis.call('EXISTS', KEYS[1]) == 1 then return false end
local token = redis.call('INCR', KEYS[2])
redis.call('SET', KEYS[1], ARGV[1] .. '|' .. token, 'PX', ARGV[2])
return token`;

// Extends each lease that still holds exactly this node's value; returns the (1-based) positions held.
const renew = `
local held = {}
for i, key in ipairs(KEYS) do
  if redis.call('GET', key) == ARGV[i + 1] then
    redis.call('PEXPIRE', key, ARGV[1])
    held[#held + 1] = i
  end
end
return held`;

const release = `
if redis.call('GET', KEYS[1]) == ARGV[1] then return redis.call('DEL', KEYS[1]) end
return 0`;

const report = `
if redis.call('GET', KEYS[1]) ~= ARGV[1] then return 0 end
redis.call('HSET', KEYS[2], ARGV[2], ARGV[3])
return 1`;

/**
 * Module leases in Redis: key `fleet/lease/<module>` = `<node>|<token>` with a TTL (PX), tokens from
 * `fleet/lease-token/<module>`; what the holder reports in hash `fleet/module-state`.
 */
export class RedisLeases implements ModuleLeases {
  constructor(
    private readonly link: RedisFleetLink,
    private readonly nodeId: NodeId,
    readonly ttlMs: number,
  ) {}

  async acquire(module: ModuleId): Promise<Lease | undefined> {
    const { link } = this;
    const token = await link.run(() => link.cmd.eval(acquire, 2, this.leaseKey(module), link.key(`fleet/lease-token/${module}`), this.nodeId, this.ttlMs));
    return token === null ? undefined : { module, token: Number(token) };
  }

  async renew(leases: readonly Lease[]): Promise<Set<ModuleId>> {
    if (leases.length === 0) return new Set();
    const { link } = this;
    const keys = leases.map((lease) => this.leaseKey(lease.module));
    const values = leases.map((lease) => this.value(lease));
    const held = (await link.run(() => link.cmd.eval(renew, keys.length, ...keys, this.ttlMs, ...values))) as number[];
    return new Set(held.map((position) => leases[position - 1]!.module));
  }

  async release(lease: Lease): Promise<void> {
    const { link } = this;
    await link.run(() => link.cmd.eval(release, 1, this.leaseKey(lease.module), this.value(lease)));
  }

  async holder(module: ModuleId): Promise<NodeId | undefined> {
    const { link } = this;
    const value = await link.run(() => link.cmd.get(this.leaseKey(module)));
    return value === null ? undefined : nodeOf(value);
  }

  async report(lease: Lease, state: { running: boolean; reason?: string }): Promise<void> {
    const { link } = this;
    const record = { node: this.nodeId, ...state, token: lease.token };
    await link.run(() => link.cmd.eval(report, 2, this.leaseKey(lease.module), link.key('fleet/module-state'), this.value(lease), lease.module, JSON.stringify(record)));
  }

  async placements(modules: readonly ModuleId[]): Promise<Map<ModuleId, ModulePlacementRecord>> {
    const found = new Map<ModuleId, ModulePlacementRecord>();
    if (modules.length === 0) return found;
    const { link } = this;
    const [holders, reports] = await link.run(() =>
      Promise.all([link.cmd.mget(...modules.map((m) => this.leaseKey(m))), link.cmd.hmget(link.key('fleet/module-state'), ...modules)]),
    );
    modules.forEach((module, i) => {
      const value = holders[i];
      if (!value) return;
      const node = nodeOf(value);
      const reported = parseRecord(reports[i]);
      // A report of an earlier lease (the same node's before a restart or a stop) says nothing now.
      if (reported && reported.node === node && reported.token === tokenOf(value)) {
        const { token: _token, ...record } = reported;
        found.set(module, record);
      } else {
        found.set(module, { node, running: false, reason: 'loading' });
      }
    });
    return found;
  }

  private leaseKey(module: ModuleId): string {
    return this.link.key(`fleet/lease/${module}`);
  }

  private value(lease: Lease): string {
    return `${this.nodeId}|${lease.token}`;
  }
}

const nodeOf = (value: string): NodeId => value.slice(0, value.lastIndexOf('|'));
const tokenOf = (value: string): number => Number(value.slice(value.lastIndexOf('|') + 1));

function parseRecord(json: string | null | undefined): (ModulePlacementRecord & { token: number }) | undefined {
  if (!json) return undefined;
  try {
    const parsed = JSON.parse(json) as ModulePlacementRecord & { token: number };
    return typeof parsed.node === 'string' && typeof parsed.running === 'boolean' && typeof parsed.token === 'number' ? parsed : undefined;
  } catch {
    return undefined;
  }
}
