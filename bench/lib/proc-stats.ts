import { readdirSync, readFileSync } from 'node:fs';

const ticksPerSecond = 100; // CLK_TCK on Linux
const pageBytes = 4096;

/** CPU time (user + system) and resident memory of a process, from /proc/<pid>/stat (pidusage-style). */
export interface ProcSample {
  atMs: number;
  cpuSeconds: number;
  rssBytes: number;
}

export function sampleProc(pid: number): ProcSample {
  const stat = readFileSync(`/proc/${pid}/stat`, 'utf8');
  // Fields after the command name (which may hold spaces) start at state: field 3.
  const fields = stat.slice(stat.lastIndexOf(')') + 2).split(' ');
  const utime = Number(fields[11]);
  const stime = Number(fields[12]);
  const rssPages = Number(fields[21]);
  return { atMs: performance.now(), cpuSeconds: (utime + stime) / ticksPerSecond, rssBytes: rssPages * pageBytes };
}

/** CPU % of one core between two samples. */
export function cpuPercent(from: ProcSample, to: ProcSample): number {
  const wallSeconds = (to.atMs - from.atMs) / 1000;
  return wallSeconds > 0 ? (100 * (to.cpuSeconds - from.cpuSeconds)) / wallSeconds : 0;
}

/**
 * The pid of the local RabbitMQ node (the Erlang VM with the largest RSS: `rabbitmqctl` runs short-lived VMs
 * too), for its CPU beside the gateway's; undefined when not found.
 */
export function findBrokerPid(): number | undefined {
  let best: { pid: number; rss: number } | undefined;
  for (const entry of readdirSync('/proc')) {
    if (!/^\d+$/.test(entry)) continue;
    try {
      const cmd = readFileSync(`/proc/${entry}/cmdline`, 'utf8');
      if (!cmd.includes('beam.smp') || !cmd.includes('rabbit')) continue;
      const rss = sampleProc(Number(entry)).rssBytes;
      if (!best || rss > best.rss) best = { pid: Number(entry), rss };
    } catch {
      // the process ended meanwhile
    }
  }
  return best?.pid;
}

/** Like sampleProc, but undefined when the process is gone. */
export function trySampleProc(pid: number | undefined): ProcSample | undefined {
  if (pid === undefined) return undefined;
  try {
    return sampleProc(pid);
  } catch {
    return undefined;
  }
}

/** The pids of `pid`'s children, grandchildren and so on (from /proc/<pid>/task/<tid>/children). */
export function descendants(pid: number): number[] {
  const found: number[] = [];
  const queue = [pid];
  for (let i = 0; i < queue.length && i < 10_000; i++) {
    const parent = queue[i]!;
    let tasks: string[] = [];
    try {
      tasks = readdirSync(`/proc/${parent}/task`);
    } catch {
      continue; // ended meanwhile
    }
    for (const tid of tasks) {
      let text = '';
      try {
        text = readFileSync(`/proc/${parent}/task/${tid}/children`, 'utf8');
      } catch {
        continue;
      }
      for (const child of text.split(' ').filter(Boolean).map(Number)) {
        found.push(child);
        queue.push(child);
      }
    }
  }
  return found;
}

/**
 * sampleProc summed over a process and its descendants: with `workers` > 1 the gateway is a primary, its
 * workers and their driver hosts. CPU time of descendants that already exited is not counted.
 */
export function sampleTree(pid: number): ProcSample & { processes: number } {
  const own = sampleProc(pid);
  let processes = 1;
  for (const child of descendants(pid)) {
    const sample = trySampleProc(child);
    if (!sample) continue;
    own.cpuSeconds += sample.cpuSeconds;
    own.rssBytes += sample.rssBytes;
    processes += 1;
  }
  return { ...own, processes };
}
