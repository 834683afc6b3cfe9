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
  /**
   * How long a run waits after its first unit for others to join (unless maxItems are waiting
   * already); 0: until the end of the current turn. For writes nobody waits on to answer.
   */
  lingerMs?: number;
}

interface Unit<T> {
  items: T[];
  resolve(): void;
  reject(err: unknown): void;
}

export function createCoalescer<T>(opts: CoalescerOptions<T>): (items: T[]) => Promise<void> {
  const waiting: Unit<T>[] = [];
  let waitingItems = 0;
  let inFlight = 0;
  let scheduled = false;
  const lingerMs = opts.lingerMs ?? 0;

  let lingering: NodeJS.Timeout | undefined;

  function schedule() {
    if (lingering && waitingItems >= opts.maxItems) {
      // A full run is waiting: no reason to linger any longer.
      clearTimeout(lingering);
      lingering = undefined;
      setImmediate(pump);
      return;
    }
    if (scheduled || inFlight >= opts.maxInFlight || waiting.length === 0) return;
    scheduled = true;
    if (lingerMs > 0 && waitingItems < opts.maxItems) lingering = setTimeout(pump, lingerMs);
    else setImmediate(pump);
  }

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
    lingering = undefined;
    while (inFlight < opts.maxInFlight && waiting.length > 0) {
      const batch: Unit<T>[] = [];
      let count = 0;
      while (waiting.length > 0 && (batch.length === 0 || count + waiting[0].items.length <= opts.maxItems)) {
        const unit = waiting.shift()!;
        waitingItems -= unit.items.length;
        count += unit.items.length;
        batch.push(unit);
      }
      inFlight++;
      void runBatch(batch).finally(() => {
        inFlight--;
        if (lingerMs > 0) schedule();
        else pump();
      });
    }
  }

  return (items) =>
    new Promise<void>((resolve, reject) => {
      waiting.push({ items, resolve, reject });
      waitingItems += items.length;
      schedule();
    });
}
