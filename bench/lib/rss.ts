/**
 * Memory and CPU time of child processes, read from /proc (Linux): current RSS sampled at an
 * interval, the kernel's own high-water mark (VmHWM), which catches peaks between samples, and
 * the CPU time used.
 */
import { readdirSync, readFileSync } from 'node:fs';

function statusField(pid: number, field: 'VmRSS' | 'VmHWM'): number | undefined {
  try {
    const m = new RegExp(`^${field}:\\s+(\\d+) kB`, 'm').exec(readFileSync(`/proc/${pid}/status`, 'utf8'));
    return m ? Number(m[1]) * 1024 : undefined;
  } catch {
    return undefined; // the process has exited
  }
}

export interface RssSampler {
  /** Highest RSS seen for a pid (bytes), the larger of the samples and VmHWM. */
  peak(pid: number): number;
  stop(): void;
}

export function sampleRss(pids: () => number[], intervalMs = 100): RssSampler {
  const peaks = new Map<number, number>();
  const sample = () => {
    for (const pid of pids()) {
      const v = Math.max(statusField(pid, 'VmRSS') ?? 0, statusField(pid, 'VmHWM') ?? 0);
      if (v > (peaks.get(pid) ?? 0)) peaks.set(pid, v);
    }
  };
  const timer = setInterval(sample, intervalMs);
  timer.unref();
  sample();
  return {
    peak(pid) {
      sample();
      return peaks.get(pid) ?? 0;
    },
    stop: () => clearInterval(timer),
  };
}

/** CPU time (user + system) a process has used so far, in ms (from /proc/<pid>/stat). */
export function processCpuMs(pid: number): number {
  const fields = readFileSync(`/proc/${pid}/stat`, 'utf8').split(') ')[1].split(' ');
  // utime and stime, in clock ticks (100 per second on Linux).
  return (Number(fields[11]) + Number(fields[12])) * 10;
}

function statFields(pid: number): string[] | undefined {
  try {
    return readFileSync(`/proc/${pid}/stat`, 'utf8').split(') ')[1].split(' ');
  } catch {
    return undefined; // exited meanwhile
  }
}

/**
 * CPU time (ms) used so far by the PostgreSQL and Redis servers on this machine, read from /proc:
 * every process whose name is `postgres` (backends, walwriter, ...) plus what the postmaster's
 * exited children used (its cutime and cstime), and `redis-server`. The difference over a phase,
 * divided by the emails or deliveries of that phase, is the stores' share of their cost, which
 * the raw baselines do not pay. Includes any other client of the same servers meanwhile.
 */
export function storeCpuMs(): { postgres: number; redis: number } {
  const totals = { postgres: 0, redis: 0 };
  for (const entry of readdirSync('/proc')) {
    if (!/^\d+$/.test(entry)) continue;
    const f = statFields(Number(entry));
    if (!f) continue;
    let name: string;
    try {
      name = readFileSync(`/proc/${entry}/comm`, 'utf8').trim();
    } catch {
      continue;
    }
    const ticks = Number(f[11]) + Number(f[12]);
    if (name === 'postgres') {
      // The postmaster (parent not postgres) also carries its finished children's time.
      const parentIsPostgres = (() => {
        try {
          return readFileSync(`/proc/${f[1]}/comm`, 'utf8').trim() === 'postgres';
        } catch {
          return false;
        }
      })();
      totals.postgres += (ticks + (parentIsPostgres ? 0 : Number(f[13]) + Number(f[14]))) * 10;
    } else if (name === 'redis-server') totals.redis += ticks * 10;
  }
  return totals;
}
