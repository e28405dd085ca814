import { Server, ServerCredentials } from '@grpc/grpc-js';
import * as relay from '../gen/kcache/internal/v1/relay';

/** A relay standing in for the gateway that owns a job: it accepts every delivery and hands its events over. */
export interface RecordingRelay {
  /** host:port, as a job's relayAddress. */
  readonly address: string;
  close(): void;
}

/** Starts a RecordingRelay on a free loopback port; `onEvent` gets each delivered event in order. */
export async function startRecordingRelay(onEvent: (event: relay.RelayEvent) => void): Promise<RecordingRelay> {
  const server = new Server();
  server.addService(relay.RelayService, {
    deliver: (call, callback) => {
      for (const event of call.request.events) onEvent(event);
      callback(null, { cancelRequestIds: [] });
    },
  } satisfies relay.RelayServer);
  const port = await new Promise<number>((resolve, reject) =>
    server.bindAsync('127.0.0.1:0', ServerCredentials.createInsecure(), (error, bound) => (error ? reject(error) : resolve(bound))),
  );
  return { address: `127.0.0.1:${port}`, close: () => server.forceShutdown() };
}
