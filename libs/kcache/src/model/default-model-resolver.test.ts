import assert from 'node:assert/strict';
import { existsSync, mkdirSync, mkdtempSync, readFileSync, readdirSync, rmSync, writeFileSync } from 'node:fs';
import { createServer, Server } from 'node:http';
import { AddressInfo } from 'node:net';
import { tmpdir } from 'node:os';
import { join, resolve } from 'node:path';
import { PassThrough } from 'node:stream';
import { after, afterEach, before, beforeEach, describe, it } from 'node:test';
import { repoRoot, stories260kDir } from '../testing/reference-data';
import { resolveDefaultModelDir } from './default-model-resolver';
import { fileSha256 } from './file-sha256';
import { ModelChecksumError, ModelDownloadError, ModelNotFoundError } from './model-errors';
import { STORIES260K_FILES } from './stories260k-files';

/** Serves the shared stories260K files over real HTTP; `corrupt` flips one byte of every body. */
class FileServer {
  readonly requests: string[] = [];
  corrupt = false;
  private server: Server | null = null;
  private readonly dir = mkdtempSync(join(tmpdir(), 'kcache-served-'));

  async start(): Promise<string> {
    for (const file of STORIES260K_FILES) {
      writeFileSync(join(this.dir, file.fileName), readFileSync(join(stories260kDir(), file.fileName)));
    }
    this.server = createServer((request, response) => {
      this.requests.push(request.url ?? '');
      const name = (request.url ?? '').replace(/^\/models\//, '');
      const path = join(this.dir, name);
      if (!/^[\w.]+$/.test(name) || !existsSync(path)) {
        response.writeHead(404).end('not found');
        return;
      }
      const body = readFileSync(path);
      if (this.corrupt) body[body.length >> 1] ^= 0xff;
      response.writeHead(200, { 'content-length': body.length }).end(body);
    });
    await new Promise<void>((resolve) => this.server!.listen(0, '127.0.0.1', resolve));
    return `http://127.0.0.1:${(this.server.address() as AddressInfo).port}/models`;
  }

  async stop(): Promise<void> {
    await new Promise<void>((resolve) => this.server?.close(() => resolve()));
    rmSync(this.dir, { recursive: true, force: true });
  }
}

function collectOutput(): { stream: PassThrough; text: () => string } {
  const stream = new PassThrough();
  const chunks: Buffer[] = [];
  stream.on('data', (chunk: Buffer) => chunks.push(chunk));
  return { stream, text: () => Buffer.concat(chunks).toString('utf8') };
}

describe('resolveDefaultModelDir', () => {
  const server = new FileServer();
  let baseUrl = '';
  let scratch = '';
  let cacheDir = '';
  const noSharedRoot = (): string => join(scratch, 'checkout'); // its ../shared does not exist

  before(async () => {
    baseUrl = await server.start();
  });
  after(() => server.stop());
  beforeEach(() => {
    scratch = mkdtempSync(join(tmpdir(), 'kcache-resolver-'));
    cacheDir = join(scratch, 'cache');
    server.requests.length = 0;
    server.corrupt = false;
  });
  afterEach(() => rmSync(scratch, { recursive: true, force: true }));

  it('uses a configured path as is', async () => {
    const resolved = await resolveDefaultModelDir({ configuredPath: stories260kDir(), repoRoot: noSharedRoot(), cacheDir });
    assert.deepEqual(resolved, { path: stories260kDir(), source: 'configured' });
  });

  it('rejects a configured path that does not exist, naming it', async () => {
    const missing = join(scratch, 'no-such-model');
    await assert.rejects(
      resolveDefaultModelDir({ configuredPath: missing, repoRoot: repoRoot(), cacheDir }),
      (error: unknown) => error instanceof ModelNotFoundError && error.message.includes(missing),
    );
  });

  it('finds the shared reference copy beside the checkout', async () => {
    const resolved = await resolveDefaultModelDir({ repoRoot: repoRoot(), cacheDir, baseUrl });
    assert.deepEqual(resolved, { path: resolve(repoRoot(), '..', 'shared', 'models', 'stories260K'), source: 'shared' });
    assert.equal(server.requests.length, 0);
  });

  it('downloads into the cache with progress, then hits the cache', async () => {
    const output = collectOutput();
    const downloaded = await resolveDefaultModelDir({ repoRoot: noSharedRoot(), cacheDir, baseUrl, progress: output.stream });
    assert.deepEqual(downloaded, { path: join(cacheDir, 'stories260K'), source: 'download' });
    assert.deepEqual(server.requests, ['/models/stories260K.bin', '/models/tok512.bin']);
    for (const file of STORIES260K_FILES) assert.equal(await fileSha256(join(downloaded.path, file.fileName)), file.sha256);
    assert.match(output.text(), /stories260K\.bin: 1056540\/1056540 bytes \(100\.0%\)/);
    assert.match(output.text(), /tok512\.bin: 6227\/6227 bytes \(100\.0%\)/);
    assert.deepEqual(readdirSync(downloaded.path).sort(), ['stories260K.bin', 'tok512.bin']);

    const cached = await resolveDefaultModelDir({ repoRoot: noSharedRoot(), cacheDir, baseUrl });
    assert.deepEqual(cached, { path: downloaded.path, source: 'cache' });
    assert.equal(server.requests.length, 2);
  });

  it('downloads a corrupted cached file again', async () => {
    const cached = join(cacheDir, 'stories260K');
    mkdirSync(cached, { recursive: true });
    writeFileSync(join(cached, 'tok512.bin'), readFileSync(join(stories260kDir(), 'tok512.bin')));
    writeFileSync(join(cached, 'stories260K.bin'), 'not a model');
    const output = collectOutput();
    const resolved = await resolveDefaultModelDir({ cacheDir, baseUrl, progress: output.stream });
    assert.equal(resolved.source, 'download');
    assert.deepEqual(server.requests, ['/models/stories260K.bin']);
    assert.equal(await fileSha256(join(cached, 'stories260K.bin')), STORIES260K_FILES[0].sha256);
    assert.match(output.text(), /is not the pinned b0a507e7/);
  });

  it('throws ModelChecksumError on wrong bytes and leaves no file behind', async () => {
    server.corrupt = true;
    await assert.rejects(resolveDefaultModelDir({ cacheDir, baseUrl }), (error: unknown) => {
      assert.ok(error instanceof ModelChecksumError);
      assert.equal(error.expectedSha256, STORIES260K_FILES[0].sha256);
      assert.match(error.actualSha256, /^[0-9a-f]{64}$/);
      assert.notEqual(error.actualSha256, error.expectedSha256);
      assert.match(error.message, /stories260K\.bin: sha256 mismatch: expected b0a507e7.*, got /);
      return true;
    });
    assert.deepEqual(readdirSync(join(cacheDir, 'stories260K')), []);
  });

  it('reports an HTTP 404 with the URL and status', async () => {
    await assert.rejects(resolveDefaultModelDir({ cacheDir, baseUrl: `${baseUrl}/missing` }), (error: unknown) => {
      assert.ok(error instanceof ModelDownloadError);
      assert.match(error.message, /download of http:\/\/127\.0\.0\.1:\d+\/models\/missing\/stories260K\.bin failed: HTTP 404/);
      return true;
    });
    assert.deepEqual(readdirSync(join(cacheDir, 'stories260K')), []);
  });

  it('reports a refused connection as ModelDownloadError with its cause', async () => {
    await assert.rejects(resolveDefaultModelDir({ cacheDir, baseUrl: 'http://127.0.0.1:1' }), (error: unknown) => {
      assert.ok(error instanceof ModelDownloadError);
      assert.ok(error.cause !== undefined);
      return true;
    });
  });

  it('says where it looked when there is no shared copy and no cache dir', async () => {
    await assert.rejects(
      resolveDefaultModelDir({ repoRoot: noSharedRoot() }),
      (error: unknown) =>
        error instanceof ModelNotFoundError &&
        error.message.includes(join(scratch, 'shared', 'models', 'stories260K')) &&
        /no cacheDir/.test(error.message),
    );
  });
});
