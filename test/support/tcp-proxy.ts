/**
 * A TCP proxy on loopback that a test can cut and restore, to play a dependency (PostgreSQL)
 * stopping and restarting while the shared server keeps running for every other suite.
 * cut(): open connections are reset and new ones refused (the port stops listening), as when
 * the server process is stopped; stall(): open connections are reset and new ones accepted
 * but never answered, as a host that is unreachable or hung; restore(): traffic flows again.
 */
import net from 'node:net';

export interface TcpProxy {
  port: number;
  cut(): Promise<void>;
  stall(): void;
  restore(): Promise<void>;
  close(): Promise<void>;
}

export async function startTcpProxy(target: { host: string; port: number }): Promise<TcpProxy> {
  const sockets = new Set<net.Socket>();
  let server: net.Server | undefined;
  let port = 0;
  let stalled = false;

  const listen = () =>
    new Promise<void>((resolve, reject) => {
      const srv = net.createServer((client) => {
        sockets.add(client);
        client.on('close', () => sockets.delete(client));
        client.on('error', () => undefined);
        if (stalled) return;
        const upstream = net.connect(target.port, target.host);
        sockets.add(upstream);
        upstream.on('close', () => sockets.delete(upstream));
        upstream.on('error', () => undefined);
        client.pipe(upstream).pipe(client);
        client.on('close', () => upstream.destroy());
        upstream.on('close', () => client.destroy());
      });
      srv.once('error', reject);
      srv.listen(port, '127.0.0.1', () => {
        port = (srv.address() as net.AddressInfo).port;
        server = srv;
        resolve();
      });
    });

  const resetAll = () => {
    for (const s of sockets) s.resetAndDestroy();
    sockets.clear();
  };
  const cut = async () => {
    const srv = server;
    server = undefined;
    resetAll();
    if (srv) await new Promise<void>((resolve) => srv.close(() => resolve()));
  };

  await listen();
  return {
    get port() {
      return port;
    },
    cut,
    stall() {
      stalled = true;
      resetAll();
    },
    async restore() {
      stalled = false;
      resetAll();
      if (!server) await listen();
    },
    close: cut,
  };
}
