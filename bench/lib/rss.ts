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

interface ProcStat {
  name: string;
  ppid: number;
  /** utime + stime, in ms. */
  cpuMs: number;
  /** cutime + cstime: what its exited (and waited-for) children used, in ms. */
  exitedChildrenCpuMs: number;
}

/** A process's /proc/<pid>/stat, or undefined once it has exited. */
function readStat(pid: number): ProcStat | undefined {
  let text: string;
  try {
    text = readFileSync(`/proc/${pid}/stat`, 'utf8');
  } catch {
    return undefined;
  }
  // "pid (name) state ppid ...": the name may itself contain spaces and parentheses.
  const close = text.lastIndexOf(')');
  const f = text.slice(close + 2).split(' ');
  // Times are in clock ticks, 100 a second on Linux.
  return {
    name: text.slice(text.indexOf('(') + 1, close),
    ppid: Number(f[1]),
    cpuMs: (Number(f[11]) + Number(f[12])) * 10,
    exitedChildrenCpuMs: (Number(f[13]) + Number(f[14])) * 10,
  };
}

/** CPU time (user + system) a process has used so far, in ms (from /proc/<pid>/stat). */
export function processCpuMs(pid: number): number {
  const stat = readStat(pid);
  if (!stat) throw new Error(`process ${pid} has exited`);
  return stat.cpuMs;
}

/**
 * CPU time (ms) used so far by the PostgreSQL and Redis servers on this machine, read from /proc:
 * every process named `postgres` (backends, walwriter, ...) plus what the postmaster's exited
 * children used, and `redis-server`. The difference over a phase, divided by the emails or
 * deliveries of that phase, is the stores' share of their cost, which the raw baselines do not
 * pay. Includes any other client of the same servers meanwhile.
 */
export function storeCpuMs(): { postgres: number; redis: number } {
  const stats = new Map<number, ProcStat>();
  for (const entry of readdirSync('/proc')) {
    const stat = /^\d+$/.test(entry) ? readStat(Number(entry)) : undefined;
    if (stat) stats.set(Number(entry), stat);
  }
  const totals = { postgres: 0, redis: 0 };
  for (const stat of stats.values()) {
    if (stat.name === 'postgres') {
      // The postmaster (the one whose parent is not postgres) carries its finished backends' time.
      const postmaster = stats.get(stat.ppid)?.name !== 'postgres';
      totals.postgres += stat.cpuMs + (postmaster ? stat.exitedChildrenCpuMs : 0);
    } else if (stat.name === 'redis-server') totals.redis += stat.cpuMs;
  }
  return totals;
}
