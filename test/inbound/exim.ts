/**
 * A real MTA for the round trip: Debian's Exim, started by the test as a foreground daemon with
 * a private configuration, spool and logs in a temporary directory (no system service, nothing
 * of /etc/exim4 used). It listens on 127.0.0.1 only, takes mail from loopback only, and every
 * route ends on 127.0.0.1 or nowhere:
 *
 *   *@<bounceDomain>      → the inbound listener (127.0.0.1:<inboundPort>)   reports go home
 *   bounce-me@<anything>  → fails with 550 5.1.1: Exim writes its own DSN to the envelope sender
 *   delay-me@<anything>   → 127.0.0.1:<a closed port>: deferred, retried every second; after
 *                           DELAY_WARNING Exim sends a "delayed" DSN
 *   anything else         → accepted and discarded
 *
 * There is no dnslookup router, so no address can make it deliver anywhere else.
 *
 * Observed here: Exim's first delivery of a DSN to a smtp-server listener (ours or a bare one)
 * is often deferred with "Remote host closed connection in response to end of data" although
 * the listener took the message; its retry a second later (retry rule below) succeeds. Tests
 * therefore wait for outcomes, never for a first attempt.
 */
import { spawn, spawnSync, type ChildProcess } from 'node:child_process';
import { chmodSync, chownSync, existsSync, mkdirSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir, userInfo } from 'node:os';
import path from 'node:path';
import { freePort } from '../support/processes';

export const EXIM = '/usr/sbin/exim4';

export interface Exim {
  port: number;
  /** The main log (deliveries, deferrals, bounces) for failure messages. */
  log(): string;
  stop(): Promise<void>;
}

function eximUser(): { uid: number; gid: number } {
  const id = (flag: string) => Number(spawnSync('id', [flag, 'Debian-exim'], { encoding: 'utf8' }).stdout.trim());
  return { uid: id('-u'), gid: id('-g') };
}

export async function startExim(opts: { inboundPort: number; bounceDomain: string; delayWarningSeconds?: number }): Promise<Exim> {
  if (!existsSync(EXIM)) throw new Error(`${EXIM} is missing: install Debian's exim4-daemon-light (apt-get install -y --no-install-recommends exim4-daemon-light); .ci/run does`);
  if (userInfo().uid !== 0) throw new Error('the Exim round trip needs root (Exim delivers as its own user, Debian-exim)');
  const dir = mkdtempSync(path.join(tmpdir(), 'easeemail-exim-'));
  chmodSync(dir, 0o755); // Exim's own user must reach the spool and logs below
  const port = await freePort();
  const closedPort = await freePort(); // nothing listens there: deliveries to it are deferred
  const spool = path.join(dir, 'spool');
  const logs = path.join(dir, 'log');
  mkdirSync(spool);
  mkdirSync(logs);
  // Exim writes its spool and logs as its own user.
  const { uid, gid } = eximUser();
  chownSync(spool, uid, gid);
  chownSync(logs, uid, gid);
  const config = `
primary_hostname = mta.test
exim_path = ${EXIM}
spool_directory = ${spool}
log_file_path = ${logs}/%slog
pid_file_path = ${dir}/exim.pid
daemon_smtp_ports = ${port}
local_interfaces = 127.0.0.1
host_lookup =
rfc1413_hosts =
rfc1413_query_timeout = 0s
never_users =
keep_environment =
trusted_users = root
tls_advertise_hosts =
delay_warning = ${opts.delayWarningSeconds ?? 2}s
acl_smtp_rcpt = acl_check_rcpt

begin acl
acl_check_rcpt:
  accept hosts = 127.0.0.1
  deny message = loopback clients only

begin routers
reports_home:
  driver = manualroute
  domains = ${opts.bounceDomain}
  transport = loopback_smtp
  route_list = * 127.0.0.1::${opts.inboundPort}
  self = send
bounce_me:
  driver = redirect
  local_parts = bounce-me
  data = :fail: 550 5.1.1 mailbox unknown
  allow_fail
delay_me:
  driver = manualroute
  local_parts = delay-me
  transport = loopback_smtp
  route_list = * 127.0.0.1::${closedPort}
  self = send
everything_else:
  driver = redirect
  data = :blackhole:

begin transports
loopback_smtp:
  driver = smtp
  allow_localhost
  hosts_avoid_tls = *
  # One message per connection: a deferred message must never ride along on a connection to another port.
  connection_max_messages = 1

begin retry
* * F,1h,1s
`;
  const configFile = path.join(dir, 'exim.conf');
  writeFileSync(configFile, config);
  const child: ChildProcess = spawn(EXIM, ['-C', configFile, '-bdf', '-q1s'], { stdio: ['ignore', 'ignore', 'pipe'] });
  let stderr = '';
  child.stderr!.on('data', (d) => (stderr += d));
  const readLog = () => {
    try {
      return readFileSync(path.join(logs, 'mainlog'), 'utf8');
    } catch {
      return '';
    }
  };
  const deadline = Date.now() + 10_000;
  while (!/listening for SMTP/.test(readLog())) {
    if (child.exitCode !== null || Date.now() > deadline) {
      child.kill('SIGKILL');
      throw new Error(`Exim did not start: ${stderr}${readLog()}`);
    }
    await new Promise((r) => setTimeout(r, 50));
  }
  return {
    port,
    log: readLog,
    async stop() {
      if (child.exitCode === null) {
        const exited = new Promise((r) => child.once('exit', r));
        child.kill('SIGTERM');
        await exited;
      }
      rmSync(dir, { recursive: true, force: true });
    },
  };
}
