import { Server, ServerCredentials } from '@grpc/grpc-js';

/** Binds and returns the port actually bound (port 0 picks a free one). */
export function bindServer(server: Server, host: string, port: number, credentials: ServerCredentials): Promise<number> {
  return new Promise((resolve, reject) =>
    server.bindAsync(`${host}:${port}`, credentials, (error, boundPort) => (error ? reject(error) : resolve(boundPort))),
  );
}

/** Lets calls in flight finish for up to timeoutMs, then cuts them. */
export async function shutdownServer(server: Server, timeoutMs: number): Promise<void> {
  const graceful = new Promise<void>((resolve) => server.tryShutdown(() => resolve()));
  const timer = new Promise<void>((resolve) => setTimeout(resolve, timeoutMs).unref());
  await Promise.race([graceful, timer]);
  server.forceShutdown();
}
