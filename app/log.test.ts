import { Writable } from 'node:stream';
import { createLogger, redactUrlCredentials } from './log';

function capture() {
  const lines: string[] = [];
  const destination = new Writable({
    write(chunk, _enc, cb) {
      lines.push(String(chunk));
      cb();
    },
  });
  return { lines, log: createLogger({ level: 'info', destination }) };
}

describe('logging', () => {
  it('masks passwords in URLs', () => {
    expect(redactUrlCredentials('connect postgresql://app:hunter2@db:5432/x failed')).toBe('connect postgresql://app:***@db:5432/x failed');
    expect(redactUrlCredentials('smtps://user:pw@mail:465 and redis://:pw2@cache')).toBe('smtps://user:***@mail:465 and redis://:***@cache');
  });

  it('redacts authorization headers, secrets and credentials in messages and errors', () => {
    const { lines, log } = capture();
    log.info({ req: { headers: { authorization: 'Bearer ee_topsecret' } }, endpoint: { secret: 'whsec_abc' } }, 'request');
    log.error({ err: new Error('cannot reach redis://default:s3cret@cache:6379') }, 'failed for smtp://u:pw@mail');
    const out = lines.join('');
    for (const secret of ['ee_topsecret', 'whsec_abc', 's3cret', ':pw@']) expect(out).not.toContain(secret);
    expect(out).toContain('[redacted]');
  });
});
