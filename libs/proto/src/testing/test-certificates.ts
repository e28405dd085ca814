import { execFileSync } from 'node:child_process';
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';

/** PEM files of one certificate and its key. */
export interface CertificateFiles {
  readonly certPath: string;
  readonly keyPath: string;
}

/**
 * Throwaway certificates for TLS tests, made with the `openssl` CLI (P-256 keys, valid one day):
 * `ca` signs `server` (CN localhost, SAN DNS:localhost and IP:127.0.0.1) and `client`; `otherCa` is an
 * unrelated CA that signs `otherServer` and `otherClient` — what an impostor would have.
 */
export interface TestCertificates {
  readonly dir: string;
  readonly ca: CertificateFiles;
  readonly server: CertificateFiles;
  readonly client: CertificateFiles;
  readonly otherCa: CertificateFiles;
  readonly otherServer: CertificateFiles;
  readonly otherClient: CertificateFiles;
  remove(): void;
}

/** null when no `openssl` runs here (tests then skip, saying why). */
export function opensslVersion(): string | null {
  try {
    return execFileSync('openssl', ['version'], { encoding: 'utf8', stdio: ['ignore', 'pipe', 'ignore'] }).trim();
  } catch {
    return null;
  }
}

export function makeTestCertificates(): TestCertificates {
  const dir = mkdtempSync(join(tmpdir(), 'kcache-certs-'));
  const path = (name: string) => join(dir, name);
  const openssl = (...args: string[]) => execFileSync('openssl', args, { cwd: dir, stdio: ['ignore', 'ignore', 'pipe'] });
  const newKey = ['-newkey', 'ec', '-pkeyopt', 'ec_paramgen_curve:prime256v1', '-nodes'];

  const makeCa = (name: string): CertificateFiles => {
    const files = { certPath: path(`${name}.pem`), keyPath: path(`${name}.key`) };
    openssl('req', '-x509', ...newKey, '-keyout', files.keyPath, '-out', files.certPath, '-days', '1', '-subj', `/CN=kcache test ${name}`,
      '-addext', 'basicConstraints=critical,CA:TRUE', '-addext', 'keyUsage=critical,keyCertSign,cRLSign');
    return files;
  };
  const makeLeaf = (name: string, ca: CertificateFiles, commonName: string, usage: string): CertificateFiles => {
    const files = { certPath: path(`${name}.pem`), keyPath: path(`${name}.key`) };
    const extensions = path(`${name}.ext`);
    writeFileSync(extensions, `basicConstraints=CA:FALSE\nsubjectAltName=DNS:localhost,IP:127.0.0.1\nextendedKeyUsage=${usage}\n`);
    openssl('req', '-new', ...newKey, '-keyout', files.keyPath, '-out', path(`${name}.csr`), '-subj', `/CN=${commonName}`);
    openssl('x509', '-req', '-in', path(`${name}.csr`), '-CA', ca.certPath, '-CAkey', ca.keyPath, '-CAcreateserial',
      '-out', files.certPath, '-days', '1', '-extfile', extensions);
    return files;
  };

  const ca = makeCa('ca');
  const otherCa = makeCa('other-ca');
  return {
    dir,
    ca,
    server: makeLeaf('server', ca, 'localhost', 'serverAuth'),
    client: makeLeaf('client', ca, 'kcache-worker', 'clientAuth'),
    otherCa,
    otherServer: makeLeaf('other-server', otherCa, 'localhost', 'serverAuth'),
    otherClient: makeLeaf('other-client', otherCa, 'kcache-worker', 'clientAuth'),
    remove: () => rmSync(dir, { recursive: true, force: true }),
  };
}
