// k6 load test of the streaming Generate RPC (kcache.v1.Generation/Generate, server streaming).
// Proto: libs/proto/proto/kcache/v1/generation.proto. Measures time to first token and inter-token
// latency per stream, and checks every stream ends in one FinalEvent with a normal finish reason.
//
//   k6 run deploy/k6/generate-stream.ts                                   # k6 >= 0.57 runs TypeScript
//   k6 run -e GATEWAY=gateway.kcache:50051 -e API_KEY=$KCACHE_API_KEY -e VUS=32 -e DURATION=5m -e ATTENTION_MODE=ATTENTION_MODE_FULL deploy/k6/generate-stream.ts
//
// Env: GATEWAY (host:port, default localhost:50051), API_KEY (sent as `authorization: Bearer <key>`;
//      the gateway requires one unless it runs with AUTH_MODE=off), TLS (1: TLS instead of plaintext), VUS (8), DURATION (1m), PROMPT, MAX_NEW_TOKENS (64),
//      ATTENTION_MODE (ATTENTION_MODE_KCACHE), TOP_N (32), TTFT_P95_MS (1000), ITL_P95_MS (100).
import { check } from 'k6';
import exec from 'k6/execution';
import grpc from 'k6/net/grpc';
import { Counter, Rate, Trend } from 'k6/metrics';
import type { Options } from 'k6/options';

const GATEWAY = __ENV.GATEWAY ?? 'localhost:50051';
const METADATA = __ENV.API_KEY ? { authorization: `Bearer ${__ENV.API_KEY}` } : {};
const MAX_NEW_TOKENS = Number(__ENV.MAX_NEW_TOKENS ?? 64);
const ttftP95Ms = Number(__ENV.TTFT_P95_MS ?? 1000);
const itlP95Ms = Number(__ENV.ITL_P95_MS ?? 100);

// Field names as protojson writes them (lowerCamelCase), as k6 sends and receives them.
interface TokenEvent {
  index: number;
  tokenId: number;
  text: string;
}
interface FinalEvent {
  finishReason: string;
  usage?: { promptTokens: number; completionTokens: number };
  timings?: { queueMs: number; ttftMs: number; totalMs: number };
  requestId: string;
}
interface GenerateResponse {
  token?: TokenEvent;
  final?: FinalEvent;
}

const NORMAL_FINISH = new Set(['FINISH_REASON_LENGTH', 'FINISH_REASON_STOP', 'FINISH_REASON_EOS']);

const ttft = new Trend('kcache_ttft', true);
const interToken = new Trend('kcache_inter_token_latency', true);
const serverQueue = new Trend('kcache_server_queue', true);
const tokens = new Counter('kcache_tokens');
const streamErrors = new Rate('kcache_stream_errors');

export const options: Options = {
  scenarios: {
    streams: {
      executor: 'ramping-vus',
      startVUs: 1,
      stages: [
        { duration: '15s', target: Number(__ENV.VUS ?? 8) },
        { duration: __ENV.DURATION ?? '1m', target: Number(__ENV.VUS ?? 8) },
        { duration: '10s', target: 0 },
      ],
      gracefulRampDown: '30s',
    },
  },
  thresholds: {
    kcache_ttft: [`p(95)<${ttftP95Ms}`],
    kcache_inter_token_latency: [`p(95)<${itlP95Ms}`],
    kcache_stream_errors: ['rate<0.01'],
    checks: ['rate>0.99'],
  },
};

const client = new grpc.Client();
// Paths are relative to this script.
client.load(['../../libs/proto/proto'], 'kcache/v1/generation.proto');
let isConnected = false; // per VU: each VU has its own copy of this module

export default function (): void {
  if (!isConnected) {
    client.connect(GATEWAY, { plaintext: __ENV.TLS !== '1', timeout: '10s' });
    isConnected = true;
  }

  const request = {
    requestId: `k6-${exec.vu.idInTest}-${exec.vu.iterationInScenario}`,
    prompt: __ENV.PROMPT ?? 'Once upon a time',
    maxNewTokens: MAX_NEW_TOKENS,
    sampling: { temperature: 0 },
    attention: {
      mode: __ENV.ATTENTION_MODE ?? 'ATTENTION_MODE_KCACHE',
      topN: Number(__ENV.TOP_N ?? 32),
    },
  };

  const startedMs = Date.now();
  let lastTokenMs: number | null = null;
  let numTokens = 0;
  let indicesInOrder = true;
  let final: FinalEvent | null = null;
  let failed = false;

  const stream = new grpc.Stream(client, 'kcache.v1.Generation/Generate', { timeout: '120s', metadata: METADATA });

  stream.on('data', (data) => {
    const response = data as GenerateResponse;
    if (response.token) {
      const nowMs = Date.now();
      if (lastTokenMs === null) ttft.add(nowMs - startedMs);
      else interToken.add(nowMs - lastTokenMs);
      lastTokenMs = nowMs;
      indicesInOrder &&= response.token.index === numTokens;
      numTokens += 1;
      tokens.add(1);
    } else if (response.final) {
      final = response.final;
    }
  });

  stream.on('error', (err) => {
    failed = true;
    console.error(`stream ${request.requestId}: ${JSON.stringify(err)}`);
  });

  stream.on('end', () => {
    streamErrors.add(failed);
    const finalEvent = final as FinalEvent | null;
    if (finalEvent?.timings) serverQueue.add(finalEvent.timings.queueMs);
    check(finalEvent, {
      'stream ended with a FinalEvent': (f) => f !== null,
      'finish reason is LENGTH, STOP or EOS': (f) => f !== null && NORMAL_FINISH.has(f.finishReason),
      'token indices are 0, 1, 2, ... without gaps': () => indicesInOrder,
      'usage.completionTokens equals the tokens streamed': (f) => f?.usage?.completionTokens === numTokens,
      'at most max_new_tokens tokens': () => numTokens <= MAX_NEW_TOKENS,
    });
  });

  stream.write(request);
  stream.end();
}
