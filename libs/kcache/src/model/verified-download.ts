import { randomBytes, createHash } from 'node:crypto';
import { open, rename, rm } from 'node:fs/promises';
import { basename } from 'node:path';
import { ModelChecksumError, ModelDownloadError } from './model-errors';

export interface VerifiedDownload {
  readonly url: string;
  readonly destination: string;
  readonly expectedSha256: string;
  /** Total for progress when the server sends no Content-Length. */
  readonly expectedBytes: number;
  /** Progress lines ("name: done/total bytes (pct%)") go here, at most one a second plus the last. */
  readonly progress?: NodeJS.WritableStream | null;
}

/**
 * Downloads to a temp file beside `destination`, checks the sha256, then renames it into place, so
 * `destination` only ever holds verified bytes. On any failure the temp file is removed.
 */
export async function downloadVerifiedFile(download: VerifiedDownload): Promise<void> {
  const { url, destination, expectedSha256, progress } = download;
  const tempPath = `${destination}.download-${process.pid}-${randomBytes(4).toString('hex')}`;
  const file = await open(tempPath, 'wx');
  try {
    let response: Response;
    try {
      response = await fetch(url);
    } catch (error) {
      throw new ModelDownloadError(url, 'request failed', { cause: error });
    }
    if (!response.ok || response.body === null) {
      throw new ModelDownloadError(url, `HTTP ${response.status} ${response.statusText}`.trim());
    }
    const totalBytes = Number(response.headers.get('content-length')) || download.expectedBytes;
    const hash = createHash('sha256');
    let doneBytes = 0;
    let lastReportMs = Date.now();
    const report = (): void => {
      const percent = ((100 * doneBytes) / totalBytes).toFixed(1);
      progress?.write(`${basename(destination)}: ${doneBytes}/${totalBytes} bytes (${percent}%)\n`);
    };
    try {
      for await (const chunk of response.body) {
        hash.update(chunk);
        await file.write(chunk);
        doneBytes += chunk.byteLength;
        if (Date.now() - lastReportMs >= 1000) {
          lastReportMs = Date.now();
          report();
        }
      }
    } catch (error) {
      throw new ModelDownloadError(url, `connection failed after ${doneBytes} bytes`, { cause: error });
    }
    report();
    await file.close();
    const actualSha256 = hash.digest('hex');
    if (actualSha256 !== expectedSha256) throw new ModelChecksumError(url, expectedSha256, actualSha256);
    await rename(tempPath, destination);
  } catch (error) {
    await file.close().catch(() => undefined);
    await rm(tempPath, { force: true });
    throw error;
  }
}
