import { ServerCredentials } from '@grpc/grpc-js';
import { readFileSync } from 'node:fs';
import { MutualTlsFiles, TlsFiles } from '../config/gateway-config';

/** TLS with the files' certificate and key, plaintext for null. Files are read now (start-up). */
export function serverCredentialsOf(tls: TlsFiles | null): ServerCredentials {
  if (tls === null) return ServerCredentials.createInsecure();
  return ServerCredentials.createSsl(null, [{ cert_chain: readFileSync(tls.certPath), private_key: readFileSync(tls.keyPath) }], false);
}

/** Mutual TLS: clients must present a certificate signed by the CA; plaintext for null. */
export function mutualTlsCredentialsOf(tls: MutualTlsFiles | null): ServerCredentials {
  if (tls === null) return ServerCredentials.createInsecure();
  return ServerCredentials.createSsl(readFileSync(tls.caPath), [{ cert_chain: readFileSync(tls.certPath), private_key: readFileSync(tls.keyPath) }], true);
}
