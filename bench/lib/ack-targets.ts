/**
 * Acknowledged delivery's targets (issue 14) for an `-ack` row beside its plain row: at max rate at least
 * 80 % of plain's deliveries/s; at 5k/s a p99 within 1 ms of plain's. Other ack rows are shown, not judged.
 */
export function judgeAck(scenario: string, ratio: number | null | undefined, p99MinusPlainMs: number | undefined): { ratioMet: boolean | null; p99Met: boolean | null } {
  return {
    ratioMet: scenario.endsWith('-max-ack') && typeof ratio === 'number' ? ratio >= 0.8 : null,
    p99Met: scenario.endsWith('-5k-ack') && p99MinusPlainMs !== undefined ? p99MinusPlainMs <= 1 : null,
  };
}
