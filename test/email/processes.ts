/** The api and worker as separate `easeemail` processes, for the suites about processes. */
import type { Env } from '../../app/config';
import { freePort, startCli, stopProcess, waitForHttp, type CliProcess } from '../support/processes';

export interface RoleProcess {
  cli: CliProcess;
  url: string;
}

export async function startRole(role: 'api' | 'worker', env: Env): Promise<RoleProcess> {
  const port = await freePort();
  const cli = startCli([role], { ...env, [role === 'api' ? 'PORT' : 'WORKER_HEALTH_PORT']: String(port) });
  const url = `http://127.0.0.1:${port}`;
  try {
    // Live, not ready: a worker must be able to start while Redis is down.
    await waitForHttp(`${url}/health/live`, { timeoutMs: 30_000 });
  } catch (err) {
    await stopProcess(cli, 'SIGKILL');
    throw new Error(`${role} did not start: ${(err as Error).message}\n${cli.output().slice(-3000)}`);
  }
  return { cli, url };
}
