import http from 'node:http';
import type Koa from 'koa';

/** Starts an HTTP server for a Koa app; resolves with the bound port (0 picks a free one). */
export async function listen(app: Koa, port: number, host: string): Promise<{ server: http.Server; port: number }> {
  const server = http.createServer(app.callback());
  await new Promise<void>((resolve, reject) => {
    server.once('error', reject);
    server.listen(port, host, () => resolve());
  });
  return { server, port: (server.address() as { port: number }).port };
}

/**
 * Stops accepting connections and resolves when in-flight requests have finished. Keep-alive
 * sockets become idle only when their last response ends, so idle ones are closed repeatedly
 * until the server is done (close() alone would wait for the clients' keep-alive timeout).
 */
export function closeServer(server: http.Server): Promise<void> {
  return new Promise((resolve, reject) => {
    const sweep = setInterval(() => server.closeIdleConnections(), 50);
    server.close((err) => {
      clearInterval(sweep);
      if (err) reject(err);
      else resolve();
    });
    server.closeIdleConnections();
  });
}
