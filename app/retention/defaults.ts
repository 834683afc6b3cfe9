/**
 * The retention sweep's pacing defaults, in a module of their own so that app/config.ts (the
 * RETENTION_BATCH_SIZE and RETENTION_PAUSE_MS defaults) and the sweep share them without config
 * importing the sweep. How they were chosen: README, "Performance" (bench/retention.ts).
 */
export const RETENTION_DEFAULTS = {
  /** Events, emails or inbound messages per statement. */
  batch: 500,
  /** Pause between two statements. */
  pauseMs: 100,
  /** Work per sweep run at most, shared equally by events, email bodies and inbound messages. */
  runBudgetMs: 2_000,
} as const;
