/** Waiting for positive evidence: the one polling helper of every suite (the container suite included). */

export interface EventuallyOptions {
  /** Default 15 s: long enough for a busy 2-core CI machine, short enough to fail a test clearly. */
  timeoutMs?: number;
  /** Default 50 ms (in-process stacks); the container suite polls less often. */
  intervalMs?: number;
  /** Treat a throwing check (or one the predicate accepts) as "not yet", e.g. services still starting; the last error is reported on timeout. */
  retryErrors?: boolean | ((err: unknown) => boolean);
  /** Extra context for the timeout message (logs, states). */
  describe?: () => Promise<string> | string;
}

/** Polls until `check` returns a value other than undefined; throws "timed out after <ms> ms waiting for <what>". */
export async function eventually<T>(check: () => Promise<T | undefined>, what: string, options: number | EventuallyOptions = {}): Promise<T> {
  const opts = typeof options === 'number' ? { timeoutMs: options } : options;
  const timeoutMs = opts.timeoutMs ?? 15_000;
  const deadline = Date.now() + timeoutMs;
  let lastError = '';
  for (;;) {
    try {
      const value = await check();
      if (value !== undefined) return value;
    } catch (err) {
      if (!(typeof opts.retryErrors === 'function' ? opts.retryErrors(err) : opts.retryErrors)) throw err;
      lastError = (err as Error).message;
    }
    if (Date.now() > deadline) {
      const detail = opts.describe ? await opts.describe() : '';
      throw new Error(`timed out after ${timeoutMs} ms waiting for ${what}${lastError ? ` (last error: ${lastError})` : ''}${detail ? `\n${detail}` : ''}`);
    }
    await new Promise((r) => setTimeout(r, opts.intervalMs ?? 50));
  }
}
