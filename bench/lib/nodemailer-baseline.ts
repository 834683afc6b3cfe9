/**
 * The delivery baseline: raw nodemailer with the pooled transport (the same pool options the
 * worker uses) sending N messages to an SMTP server, in a process of its own like the worker:
 * the benchmarks' sample email with the id header the worker adds, so both do the same work. Resolves with the time from the first send to the last accepted reply, and the CPU
 * time the sending process used meanwhile.
 */
import { fork } from 'node:child_process';
import { randomUUID } from 'node:crypto';
import nodemailer from 'nodemailer';
import { EMAIL_ID_HEADER } from '../../app/email/message';
import { smtpPoolOptions, type SmtpSettings } from '../../app/email/transport';
import { sampleEmail } from './sample-email';

export function runNodemailerBaseline(settings: SmtpSettings, count: number): Promise<{ ms: number; perSecond: number; cpuMs: number }> {
  const child = fork(__filename, ['--child', JSON.stringify({ settings, count })], { execArgv: ['--import', 'tsx'], stdio: ['ignore', 'inherit', 'inherit', 'ipc'] });
  return new Promise((resolve, reject) => {
    child.once('message', (m: { ms: number; cpuMs: number } | { error: string }) => {
      if ('error' in m) reject(new Error(m.error));
      else resolve({ ms: m.ms, perSecond: (count / m.ms) * 1000, cpuMs: m.cpuMs });
    });
    child.once('exit', (code) => (code === 0 ? undefined : reject(new Error(`baseline exited with ${code}`))));
  });
}

async function runChild(settings: SmtpSettings, count: number): Promise<void> {
  const transport = nodemailer.createTransport(smtpPoolOptions(settings));
  const message = (i: number) => {
    const { from, to, subject, text, html } = sampleEmail(i);
    return { from, to, subject, text, html, headers: { [EMAIL_ID_HEADER]: randomUUID() } };
  };
  await transport.sendMail(message(-1)); // open a connection first, as a warm worker has
  const started = performance.now();
  const cpu = process.cpuUsage();
  await Promise.all(Array.from({ length: count }, (_, i) => transport.sendMail(message(i))));
  const ms = performance.now() - started;
  const used = process.cpuUsage(cpu);
  transport.close();
  process.send!({ ms, cpuMs: (used.user + used.system) / 1000 }, () => process.exit(0));
}

if (process.argv.includes('--child') && require.main === module) {
  const { settings, count } = JSON.parse(process.argv[process.argv.indexOf('--child') + 1]) as { settings: SmtpSettings; count: number };
  runChild(settings, count).catch((err) => process.send!({ error: String(err) }, () => process.exit(1)));
}
