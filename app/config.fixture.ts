/** For config tests: the problems loadConfig lists for an environment (it must refuse it). */
import { ConfigError, loadConfig, type Env } from './config';

export function problemsOf(env: Env): string[] {
  try {
    loadConfig(env);
  } catch (err) {
    if (err instanceof ConfigError) return err.problems;
    throw err;
  }
  throw new Error('expected a ConfigError');
}
