/**
 * A bounded wait: `p`, or a rejection naming `what` once `ms` has passed (the timer is cleared
 * either way). Used wherever a request, a scrape or a probe must not hang on Redis or PostgreSQL.
 */
export function withTimeout<T>(p: Promise<T>, ms: number, what: string): Promise<T> {
  let timer: NodeJS.Timeout | undefined;
  return Promise.race([
    p.finally(() => clearTimeout(timer)),
    new Promise<never>((_, reject) => {
      timer = setTimeout(() => reject(new Error(`${what} did not answer within ${ms} ms`)), ms);
    }),
  ]);
}
