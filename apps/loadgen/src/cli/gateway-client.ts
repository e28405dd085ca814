import { readFileSync } from 'node:fs';
import { credentials, Metadata } from '@grpc/grpc-js';
import { GenerationClient } from '@kcache-serve/proto';

/** How to reach a gateway's public gRPC port. */
export interface GatewayConnection {
  /** host:port. */
  readonly target: string;
  /** Sent as `authorization: Bearer <key>`; null sends none (a gateway with AUTH_MODE=off). */
  readonly apiKey: string | null;
  readonly isTls: boolean;
  /** PEM CA for TLS; null: the system's roots. */
  readonly caFile: string | null;
}

/** The flags every client command takes; KCACHE_API_KEY is read when --api-key is not given. */
export const CONNECTION_FLAGS = {
  target: { type: 'string', default: '127.0.0.1:50051' },
  'api-key': { type: 'string' },
  tls: { type: 'boolean', default: false },
  'ca-file': { type: 'string' },
} as const;

export const CONNECTION_USAGE = '[--target HOST:PORT] [--api-key KEY (or env KCACHE_API_KEY)] [--tls [--ca-file PEM]]';

export function createGenerationClient(connection: GatewayConnection): GenerationClient {
  const channelCredentials = connection.isTls
    ? credentials.createSsl(connection.caFile === null ? null : readFileSync(connection.caFile))
    : credentials.createInsecure();
  return new GenerationClient(connection.target, channelCredentials);
}

/** Call metadata carrying the API key, if any. */
export function callMetadata(connection: Pick<GatewayConnection, 'apiKey'>): Metadata {
  const metadata = new Metadata();
  if (connection.apiKey !== null) metadata.set('authorization', `Bearer ${connection.apiKey}`);
  return metadata;
}
