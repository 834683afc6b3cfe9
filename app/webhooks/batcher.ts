/**
 * Coalesces calls made close together into one call with all their inputs (DataLoader-style).
 * The worker runs many deliveries at once; reading and recording them in one statement per batch
 * instead of one per delivery takes most of the database round trips and per-query overhead out
 * of the hot path. A batch is sent on the next turn of the event loop, when it reaches `maxBatch`,
 * or before an input whose key is already in it (so one statement never holds a row twice).
 */
export interface BatcherOptions<I> {
  maxBatch: number;
  keyOf: (input: I) => string;
}

export function createBatcher<I, O>(run: (inputs: I[]) => Promise<O[]>, opts: BatcherOptions<I>): (input: I) => Promise<O> {
  type Entry = { input: I; resolve: (o: O) => void; reject: (e: unknown) => void };
  let pending: Entry[] = [];
  let keys = new Set<string>();
  let timer: NodeJS.Immediate | undefined;

  function flush(): void {
    if (timer) clearImmediate(timer);
    timer = undefined;
    const batch = pending;
    pending = [];
    keys = new Set();
    if (batch.length === 0) return;
    run(batch.map((e) => e.input)).then(
      (outputs) => batch.forEach((e, i) => e.resolve(outputs[i])),
      (err) => batch.forEach((e) => e.reject(err)),
    );
  }

  return (input: I) =>
    new Promise<O>((resolve, reject) => {
      const key = opts.keyOf(input);
      if (keys.has(key)) flush();
      pending.push({ input, resolve, reject });
      keys.add(key);
      if (pending.length >= opts.maxBatch) flush();
      else timer ??= setImmediate(flush);
    });
}
