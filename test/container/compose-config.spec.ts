/**
 * compose/compose.yaml as docker-compose 1.29 reads it (the container lab's docker-compose; no
 * engine is needed for `config`, but the binary comes with the lab). The schema and key-subset
 * checks that need no docker-compose run in `npm cit` (test/manifests/compose.test.ts).
 */
import { parse } from 'yaml';
import { COMPOSE_FILE, mustRun } from './support';

/** docker-compose on the committed file, with the test's host overrides only. */
async function dockerCompose(args: string[], env: Record<string, string> = {}): Promise<string> {
  return (await mustRun('docker-compose', ['-f', COMPOSE_FILE, ...args], { env })).stdout;
}

describe('docker-compose 1.29 and compose/compose.yaml', () => {
  test('accepts it (config -q)', async () => {
    expect(await dockerCompose(['--version'])).toMatch(/version 1\.29\./);
    expect(await dockerCompose(['config', '-q'])).toBe('');
  });

  test('resolves the defaults and honours host overrides', async () => {
    const resolved = parse(await dockerCompose(['config'], { EASEEMAIL_API_PORT: '18000', EASEEMAIL_SMTP_URL: 'smtp://relay.test:587' }));
    expect(resolved.services.api.ports).toEqual(['127.0.0.1:18000:8000/tcp']);
    expect(resolved.services.mailpit.ports).toEqual(['127.0.0.1:8025:8025/tcp']);
    expect(resolved.services.worker.environment.SMTP_URL).toBe('smtp://relay.test:587');
    expect(resolved.services.worker.environment.DATABASE_URL).toBe('postgresql://easeemail:easeemail@db:5432/easeemail');
  });
});
