/**
 * Memory and CPU time of child processes, read from /proc (Linux): current RSS sampled at an
 * interval, the kernel's own high-water mark (VmHWM), which catches peaks between samples, and
 * the CPU time used.
 */
import { readFileSync } from 'node:fs';

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
