import { parseArgs } from 'node:util';

export type System = 'gateway' | 'stomp' | 'amqp';
const allSystems: readonly System[] = ['gateway', 'stomp', 'amqp'];

export const usage = `Usage: npm run bench [-- <options>]

Measures the gateway beside RabbitMQ Web-STOMP and a raw amqplib consumer on this machine's RabbitMQ
(AMQP_URL, default amqp://guest:guest@127.0.0.1:5672). Without options: every scenario, about 15 minutes.

  --quick                 three short scenarios (about two to three minutes)
  --scenario <name>[,...] one scenario, or every scenario whose name starts with <name>-; several
                          comma-separated names are measured in one run (one table)
  --systems <list>        comma-separated among gateway, stomp, amqp (default: all three)
  --cpu-prof              also write the gateway's CPU profile to bench/results/profiles/
  --heap-probe            notify rows: force a GC and write a heap snapshot of each gateway process before
                          and after the measurement (bench/results/profiles/), and report what the GC
                          kept; slows the gateways while it writes, so not for throughput figures
  --measure-seconds <n>   measure this long instead of 10 s (4 s with --quick), e.g. a long run for memory
  --rounds <n>            measure the scenarios n times, one round after another (default 1); comparisons
                          are made within each round, and targets judged on the median of the rounds
  --gateway-node-flags=<flags>
                          Node and V8 flags for every gateway process (workers inherit them), space-
                          separated, after an = sign: --gateway-node-flags=--max-semi-space-size=32
  -h, --help              this text

Results: bench/results/<time>.json and .md. Exit codes: 0 done, 2 bad arguments, 1 anything else.
`;

export interface BenchArgs {
  help: boolean;
  quick: boolean;
  cpuProf: boolean;
  heapProbe: boolean;
  measureSeconds: number | undefined;
  /** Times the selected scenarios are measured, one round after another (lib/rounds.ts). */
  rounds: number;
  /** Extra flags for the gateway's node command line (each `--name` or `--name=value`). */
  gatewayNodeFlags: string[];
  scenario: string | undefined;
  systems: System[];
}

const nodeFlag = /^--[a-z0-9][a-z0-9_-]*(=[^\s]+)?$/i;

/** Thrown for arguments the bench does not know: a typo must not start a 15-minute run. */
export class BenchUsageError extends Error {}

export function parseBenchArgs(argv: string[]): BenchArgs {
  let values;
  try {
    ({ values } = parseArgs({
      args: argv,
      strict: true,
      allowPositionals: false,
      options: {
        quick: { type: 'boolean', default: false },
        'cpu-prof': { type: 'boolean', default: false },
        'heap-probe': { type: 'boolean', default: false },
        'measure-seconds': { type: 'string' },
        rounds: { type: 'string' },
        'gateway-node-flags': { type: 'string' },
        scenario: { type: 'string' },
        systems: { type: 'string' },
        help: { type: 'boolean', short: 'h', default: false },
      },
    }));
  } catch (err) {
    throw new BenchUsageError((err as Error).message);
  }
  const systems = (values.systems ?? allSystems.join(',')).split(',').map((s) => s.trim());
  const unknown = systems.filter((s) => !(allSystems as readonly string[]).includes(s));
  if (unknown.length > 0 || systems.length === 0) throw new BenchUsageError(`--systems: unknown ${unknown.join(', ')} (known: ${allSystems.join(', ')})`);
  const measure = values['measure-seconds'];
  const measureSeconds = measure === undefined ? undefined : Number(measure);
  if (measureSeconds !== undefined && (!Number.isInteger(measureSeconds) || measureSeconds < 1 || measureSeconds > 3_600)) {
    throw new BenchUsageError(`--measure-seconds: a whole number of seconds from 1 to 3600, not ${measure}`);
  }
  const roundsText = values.rounds;
  const rounds = roundsText === undefined ? 1 : Number(roundsText);
  if (!Number.isInteger(rounds) || rounds < 1 || rounds > 20) throw new BenchUsageError(`--rounds: a whole number from 1 to 20, not ${roundsText}`);
  const gatewayNodeFlags = (values['gateway-node-flags'] ?? '').split(/\s+/).filter((flag) => flag !== '');
  const notAFlag = gatewayNodeFlags.find((flag) => !nodeFlag.test(flag));
  if (notAFlag !== undefined) throw new BenchUsageError(`--gateway-node-flags: each must look like --name or --name=value, not ${notAFlag}`);
  return {
    help: values.help,
    quick: values.quick,
    cpuProf: values['cpu-prof'],
    heapProbe: values['heap-probe'],
    measureSeconds,
    rounds,
    gatewayNodeFlags,
    scenario: values.scenario,
    systems: systems as System[],
  };
}
