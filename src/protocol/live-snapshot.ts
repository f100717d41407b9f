// The wire shape of `live` in GET /api/admin/v1/stats, shared by the gateway (which builds it) and the
// console (which draws it), so the two cannot drift apart.

/**
 * The last minutes of a node, one point per interval, in columns (what uPlot draws): `t` in Unix seconds
 * at the end of each interval; rates per second over that interval; latency percentiles in milliseconds
 * over the deliveries of that interval only (null when there were none), not since start.
 */
export interface LiveSnapshot {
  intervalMs: number;
  t: number[];
  sockets: Record<string, number[]>;
  messagesIn: number[];
  messagesOut: number[];
  latencyP50Ms: Array<number | null>;
  latencyP99Ms: Array<number | null>;
  execs: number[];
}
