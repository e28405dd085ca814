import { createServer, Server } from 'node:http';
import { AddressInfo } from 'node:net';
import type { Registry } from 'prom-client';

/**
 * Plain HTTP: GET /metrics (Prometheus text), GET /healthz (liveness: 200 while `isHealthy()`),
 * GET /readyz (readiness: 200 while `isReady()`, i.e. the worker can take jobs now).
 */
export class MetricsServer {
  private readonly server: Server;

  constructor(registry: Registry, isHealthy: () => boolean, isReady: () => boolean = isHealthy) {
    this.server = createServer((req, res) => {
      if (req.method === 'GET' && req.url === '/metrics') {
        registry.metrics().then(
          (text) => res.writeHead(200, { 'content-type': registry.contentType }).end(text),
          (error: Error) => res.writeHead(500).end(error.message),
        );
      } else if (req.method === 'GET' && req.url === '/healthz') {
        const healthy = isHealthy();
        res.writeHead(healthy ? 200 : 503, { 'content-type': 'application/json' }).end(JSON.stringify({ healthy }));
      } else if (req.method === 'GET' && req.url === '/readyz') {
        const ready = isReady();
        res.writeHead(ready ? 200 : 503, { 'content-type': 'application/json' }).end(JSON.stringify({ ready }));
      } else {
        res.writeHead(404).end();
      }
    });
  }

  /** Resolves with host:port actually bound (port 0 picks a free one). */
  listen(host: string, port: number): Promise<string> {
    return new Promise((resolve, reject) => {
      this.server.once('error', reject);
      this.server.listen(port, host, () => {
        const address = this.server.address() as AddressInfo;
        resolve(`${host === '0.0.0.0' ? '127.0.0.1' : host}:${address.port}`);
      });
    });
  }

  close(): Promise<void> {
    return new Promise((resolve) => this.server.close(() => resolve()));
  }
}
