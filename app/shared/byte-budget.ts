/**
 * A semaphore counted in bytes: bounds how much of something large a process holds at once,
 * whatever its concurrency. Grants are first come, first served (a big request is not starved by
 * a stream of small ones), and a request larger than the whole budget is granted alone.
 */
export interface ByteBudget {
  /**
   * Resolves once `bytes` fit, with the function that gives them back: all that is left of the
   * grant, or `part` of it (a grant for several things that finish one by one). Giving back more
   * than is left gives back what is left; calling it again after that is harmless.
   */
  acquire(bytes: number): Promise<(part?: number) => void>;
  readonly inUse: number;
}

export function createByteBudget(limitBytes: number): ByteBudget {
  let inUse = 0;
  const waiting: { bytes: number; grant: (release: (part?: number) => void) => void }[] = [];

  const fits = (bytes: number) => inUse === 0 || inUse + bytes <= limitBytes;

  function grant(bytes: number): (part?: number) => void {
    inUse += bytes;
    let left = bytes;
    return (part = left) => {
      const back = Math.min(left, Math.max(0, part));
      if (back === 0) return;
      left -= back;
      inUse -= back;
      while (waiting.length > 0 && fits(waiting[0].bytes)) {
        const next = waiting.shift()!;
        next.grant(grant(next.bytes));
      }
    };
  }

  return {
    acquire(bytes) {
      const wanted = Math.max(0, Math.min(bytes, limitBytes));
      if (waiting.length === 0 && fits(wanted)) return Promise.resolve(grant(wanted));
      return new Promise((resolve) => waiting.push({ bytes: wanted, grant: resolve }));
    },
    get inUse() {
      return inUse;
    },
  };
}
