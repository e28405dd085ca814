import { ChannelCredentials, ChannelOptions, credentials } from '@grpc/grpc-js';
import { readFileSync } from 'node:fs';
import { RelayTlsFiles } from '../worker-config';

/** How a worker dials gateways' Relay: plaintext, or mutual TLS with its client certificate (files read now). */
export interface RelayChannel {
  readonly credentials: ChannelCredentials;
  readonly options: ChannelOptions;
}

export function relayChannelOf(tls: RelayTlsFiles | null): RelayChannel {
  if (tls === null) return { credentials: credentials.createInsecure(), options: {} };
  return {
    credentials: credentials.createSsl(readFileSync(tls.caPath), readFileSync(tls.keyPath), readFileSync(tls.certPath)),
    options: tls.serverName === null ? {} : { 'grpc.ssl_target_name_override': tls.serverName, 'grpc.default_authority': tls.serverName },
  };
}
