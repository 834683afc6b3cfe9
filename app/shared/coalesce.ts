/**
 * Group commit for the accept path. Units submitted in the same event-loop turn, and all those
 * submitted while `maxInFlight` runs are busy, are handed to `run` together: under load one
 * round trip (and one system call, which is what costs most here) serves many requests; when
 * idle a unit waits only for the end of the current turn.
 */
export interface CoalescerOptions<T> {
  /** Runs at once; more waits and goes in the next batch. */
  maxInFlight: number;
  /** Upper bound of items per run (a single larger unit still runs alone). */
  maxItems: number;
  run(items: T[]): Promise<void>;
  /** When a batch of several units fails, run each unit alone so only the bad one fails. */
  isolateFailures?: boolean;
}

interface Unit<T> {
  items: T[];
  resolve(): void;
  reject(err: unknown): void;
}

export function createCoalescer<T>(opts: CoalescerOptions<T>): (items: T[]) => Promise<void> {
  const waiting: Unit<T>[] = [];
  let inFlight = 0;
  let scheduled = false;

  async function runBatch(batch: Unit<T>[]) {
    try {
      await opts.run(batch.length === 1 ? batch[0].items : batch.flatMap((u) => u.items));
      for (const u of batch) u.resolve();
    } catch (err) {
      if (batch.length === 1 || !opts.isolateFailures) {
        for (const u of batch) u.reject(err);
        return;
      }
      await Promise.all(batch.map((u) => opts.run(u.items).then(u.resolve, u.reject)));
    }
  }

  function pump() {
    scheduled = false;
    while (inFlight < opts.maxInFlight && waiting.length > 0) {
      const batch: Unit<T>[] = [];
      let count = 0;
      while (waiting.length > 0 && (batch.length === 0 || count + waiting[0].items.length <= opts.maxItems)) {
        const unit = waiting.shift()!;
        count += unit.items.length;
        batch.push(unit);
      }
      inFlight++;
      void runBatch(batch).finally(() => {
        inFlight--;
        pump();
      });
    }
  }

  return (items) =>
    new Promise<void>((resolve, reject) => {
      waiting.push({ items, resolve, reject });
      if (!scheduled && inFlight < opts.maxInFlight) {
        scheduled = true;
        setImmediate(pump);
      }
    });
}
