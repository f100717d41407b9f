/**
 * The two-node notify scenarios (issue 16): which node each profile's sockets join, and how a two-node row
 * compares with the one-node row of the same run. Pure, so the plan and the targets are tested without a
 * gateway.
 */

export interface Join {
  url: string;
  token: string;
}

/**
 * Sockets to open: with one URL, one socket per token. With two, every `sharedEvery`-th token gets a socket on
 * each node (relayed delivery) and the others one socket on one node, alternating as a load balancer would
 * spread them (direct delivery on either node).
 */
export function joinPlan(tokens: readonly string[], urls: readonly string[], sharedEvery: number): Join[] {
  if (urls.length === 0) throw new Error('joinPlan: no gateway URL');
  if (!Number.isInteger(sharedEvery) || sharedEvery < 1) throw new Error(`joinPlan: sharedEvery must be a positive integer, not ${sharedEvery}`);
  const plan: Join[] = [];
  let single = 0;
  tokens.forEach((token, i) => {
    if (urls.length > 1 && i % sharedEvery === 0) for (const url of urls) plan.push({ url, token });
    else plan.push({ url: urls[single++ % urls.length]!, token });
  });
  return plan;
}

/** Deliveries per published message when the publisher spreads messages evenly over the profiles. */
export function copiesPerMessage(plan: readonly Join[], profiles: number): number {
  return profiles > 0 ? plan.length / profiles : 1;
}

/** The one-node scenario a two-node one is compared with: `notify-1000-2nodes[-mixed]-x-y` → `notify-1000-x-y`. */
export function oneNodeCounterpart(name: string): string | undefined {
  const match = /^(notify-\d+)-2nodes(?:-mixed)?-(.+)$/.exec(name);
  return match ? `${match[1]}-${match[2]}` : undefined;
}

export interface FleetRowInput {
  scenario: string;
  deliveriesPerSecond: number;
  p99Ms: number;
  cpuMicrosPerDelivery: number | null;
}

export interface FleetComparison {
  scenario: string;
  oneNode: string;
  /** Two-node deliveries/s over one-node deliveries/s. */
  throughputRatio: number;
  /** Two-node p99 minus one-node p99, ms. */
  p99DiffMs: number;
  /** Gateway CPU per delivery (both nodes together) over the one node's. */
  cpuRatio: number | null;
  /** The targets: ≥ 0.7 of the throughput at max rate, p99 within 2 ms at fixed rates, CPU within 1.5×. */
  throughputMet: boolean | null;
  p99Met: boolean | null;
  cpuMet: boolean | null;
}

/** Each two-node row beside its one-node row of the same run (rows without one are left out). */
export function compareFleet(rows: readonly FleetRowInput[]): FleetComparison[] {
  const out: FleetComparison[] = [];
  for (const row of rows) {
    const oneNode = oneNodeCounterpart(row.scenario);
    const base = oneNode === undefined ? undefined : rows.find((r) => r.scenario === oneNode);
    if (oneNode === undefined || base === undefined) continue;
    const throughputRatio = base.deliveriesPerSecond > 0 ? row.deliveriesPerSecond / base.deliveriesPerSecond : 0;
    const p99DiffMs = row.p99Ms - base.p99Ms;
    const cpuRatio = row.cpuMicrosPerDelivery !== null && base.cpuMicrosPerDelivery ? row.cpuMicrosPerDelivery / base.cpuMicrosPerDelivery : null;
    out.push({ scenario: row.scenario, oneNode, throughputRatio, p99DiffMs, cpuRatio, ...judgeFleet(row.scenario, throughputRatio, p99DiffMs, cpuRatio) });
  }
  return out;
}

/**
 * The targets for a two-node row's figures (one round's, or the median of several): ≥ 0.7 of the
 * one-node throughput at max rate, p99 within 2 ms at fixed rates, CPU per delivery within 1.5×. The
 * targets are set for every profile on two nodes; the mixed row is shown, not judged.
 */
export function judgeFleet(
  scenario: string,
  throughputRatio: number | undefined,
  p99DiffMs: number | undefined,
  cpuRatio: number | null | undefined,
): Pick<FleetComparison, 'throughputMet' | 'p99Met' | 'cpuMet'> {
  const atMax = scenario.endsWith('-max');
  const mixed = scenario.includes('-2nodes-mixed-');
  return {
    throughputMet: atMax && !mixed && throughputRatio !== undefined ? throughputRatio >= 0.7 : null,
    p99Met: !atMax && !mixed && p99DiffMs !== undefined ? p99DiffMs <= 2 : null,
    cpuMet: !mixed && cpuRatio !== null && cpuRatio !== undefined ? cpuRatio <= 1.5 : null,
  };
}
