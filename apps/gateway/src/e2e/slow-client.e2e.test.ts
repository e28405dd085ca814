import assert from 'node:assert/strict';
import { readFileSync } from 'node:fs';
import { ClientHttp2Session, connect, constants } from 'node:http2';
import { after, before, describe, it } from 'node:test';
import { stories260kDir } from '@kcache-serve/kcache/testing';
import { GenerateRequest } from '@kcache-serve/proto';
import { collectStream, ServingCluster, waitFor } from '@kcache-serve/proto/dist/testing';

/**
 * A client that reads nothing: a raw HTTP/2 connection whose stream window is 0, so the gateway can send
 * no DATA at all. The gateway buffers at most SLOW_CLIENT_MAX_BUFFERED_EVENTS events beyond the
 * transport's own high-water mark (or waits SLOW_CLIENT_TIMEOUT_MS), then resets the stream
 * (RST_STREAM ENHANCE_YOUR_CALM, which gRPC clients report as RESOURCE_EXHAUSTED), stops the
 * generation, and its memory stays bounded while many such clients come and go.
 */
const MAX_BUFFERED_EVENTS = 32;
const TIMEOUT_MS = 1500;

let cluster: ServingCluster;

before(async () => {
  cluster = await ServingCluster.start({
    model: stories260kDir(),
    numWorkers: 1,
    gatewayEnv: { SLOW_CLIENT_MAX_BUFFERED_EVENTS: String(MAX_BUFFERED_EVENTS), SLOW_CLIENT_TIMEOUT_MS: String(TIMEOUT_MS) },
  });
});

after(async () => {
  await cluster?.stop();
});

/** A gRPC frame: 1 byte "not compressed", 4 bytes length, the message. */
function grpcFrame(request: Partial<GenerateRequest>): Buffer {
  const message = Buffer.from(GenerateRequest.encode(GenerateRequest.fromPartial(request)).finish());
  const header = Buffer.alloc(5);
  header.writeUInt32BE(message.length, 1);
  return Buffer.concat([header, message]);
}

/** Opens Generate on `session` and never reads: resolves with the RST_STREAM code and when it came. */
function stalledGenerate(session: ClientHttp2Session, request: Partial<GenerateRequest>): Promise<{ rstCode: number; afterMs: number }> {
  const startedAt = Date.now();
  const stream = session.request({ ':method': 'POST', ':path': '/kcache.v1.Generation/Generate', 'content-type': 'application/grpc', te: 'trailers' });
  stream.end(grpcFrame(request));
  stream.pause();
  stream.on('error', () => undefined); // the reset arrives as an error too; 'close' carries its code
  return new Promise((resolve) => stream.on('close', () => resolve({ rstCode: stream.rstCode ?? -1, afterMs: Date.now() - startedAt })));
}

function rssBytes(pid: number): number {
  return Number(/VmRSS:\s+(\d+) kB/.exec(readFileSync(`/proc/${pid}/status`, 'utf8'))![1]) * 1024;
}

async function metrics(): Promise<string> {
  return (await fetch(`${cluster.httpUrl}/metrics`)).text();
}

describe('a client that reads nothing', () => {
  let session: ClientHttp2Session;
  before(() => {
    session = connect(`http://${cluster.grpcAddress}`, { settings: { initialWindowSize: 0 } });
  });
  after(() => session.close());

  it('a long stream is cut once MAX_BUFFERED_EVENTS wait, and its job ends', async () => {
    const { rstCode, afterMs } = await stalledGenerate(session, { requestId: 'stalled-long', prompt: 'Once upon a time', maxNewTokens: 480, sampling: { temperature: 1, seed: 1 } });
    assert.equal(rstCode, constants.NGHTTP2_ENHANCE_YOUR_CALM);
    assert.ok(afterMs < TIMEOUT_MS, `cut by the buffer bound, not the timeout (${afterMs} ms)`);
    const queue = cluster.queue();
    await waitFor(async () => (await queue.getJob('gen-stalled-long')) === undefined, 5000, 'the job to end');
    assert.match(await metrics(), /kcache_gateway_slow_clients_total\{transport="grpc"\} 1/);
    assert.match(await metrics(), /^kcache_gateway_active_streams 0$/m);
  });

  it('a short stream that finished but is never read is cut after SLOW_CLIENT_TIMEOUT_MS', async () => {
    const { rstCode, afterMs } = await stalledGenerate(session, { prompt: 'Once upon a time', maxNewTokens: 20, sampling: { temperature: 0 } });
    assert.equal(rstCode, constants.NGHTTP2_ENHANCE_YOUR_CALM);
    assert.ok(afterMs >= TIMEOUT_MS && afterMs < TIMEOUT_MS + 3000, `cut after the timeout (${afterMs} ms)`);
  });

  it('40 stalled clients at once: all cut, gateway memory bounded, and it keeps serving readers', async () => {
    const pid = cluster.gateway.child.pid!;
    const rssBefore = rssBytes(pid);
    const sessions = Array.from({ length: 4 }, () => connect(`http://${cluster.grpcAddress}`, { settings: { initialWindowSize: 0 } }));
    try {
      const cut = await Promise.all(
        Array.from({ length: 40 }, (_, i) => stalledGenerate(sessions[i % sessions.length], { prompt: 'Once upon a time', maxNewTokens: 480, sampling: { temperature: 1, seed: i } })),
      );
      assert.ok(cut.every((c) => c.rstCode === constants.NGHTTP2_ENHANCE_YOUR_CALM), JSON.stringify(cut.map((c) => c.rstCode)));
    } finally {
      for (const s of sessions) s.close();
    }
    const rssGrowth = rssBytes(pid) - rssBefore;
    assert.ok(rssGrowth < 64 * 1024 * 1024, `gateway RSS grew ${rssGrowth} bytes`);
    assert.match(await metrics(), /^kcache_gateway_active_streams 0$/m);
    const reader = await collectStream(cluster.client(), { prompt: 'Once upon a time', maxNewTokens: 16 }, 10_000);
    assert.equal(reader.error, null);
    assert.equal(reader.tokens.length, 16);
    console.log(`slow clients: 42 stalled streams cut; gateway RSS ${(rssBefore / 2 ** 20).toFixed(1)} → ${(rssBytes(pid) / 2 ** 20).toFixed(1)} MiB`);
  });
});
