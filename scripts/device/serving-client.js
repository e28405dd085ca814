#!/usr/bin/env node
'use strict';
/**
 * The serving client's fallback, for a machine where no python3 imports grpc (cuda-serving.sh picks it then):
 * the same checks and load as serving-client.py, written against the public .proto with @grpc/grpc-js and
 * @grpc/proto-loader only (no project code; but the same gRPC library as the gateway, so less independent).
 *   node serving-client.js --app APP --target HOST:PORT --oracle ORACLE.json --out OUT.json [--api-key KEY]
 *        [--concurrency 32] [--requests 128] [--max-new-tokens 128] [--attention full|kcache] [--top-n 512]
 * Writes OUT.json in serving-client.py's shape; exits 1 when a check fails.
 */
const fs = require('node:fs');
const path = require('node:path');
const { parseArgs } = require('node:util');

const { values: args } = parseArgs({
  options: {
    app: { type: 'string' }, target: { type: 'string' }, oracle: { type: 'string' }, out: { type: 'string' },
    'api-key': { type: 'string' }, concurrency: { type: 'string', default: '32' }, requests: { type: 'string', default: '128' },
    'max-new-tokens': { type: 'string', default: '128' }, attention: { type: 'string', default: 'full' }, 'top-n': { type: 'string', default: '512' },
  },
});
const requireFromApp = (name) => require(require.resolve(name, { paths: [args.app] }));
const grpc = requireFromApp('@grpc/grpc-js');
const protoLoader = requireFromApp('@grpc/proto-loader');
const PROMPT = 'Once upon a time';
const FINISH = { FINISH_REASON_LENGTH: 'LENGTH', FINISH_REASON_STOP: 'STOP', FINISH_REASON_EOS: 'EOS', FINISH_REASON_CANCELLED: 'CANCELLED' };
const log = (line) => process.stdout.write(line + '\n');

const definition = protoLoader.loadSync('kcache/v1/generation.proto', { includeDirs: [path.join(args.app, 'libs/proto/proto')], keepCase: true, enums: String, longs: Number, defaults: false, oneofs: true });
const Generation = grpc.loadPackageDefinition(definition).kcache.v1.Generation;
const client = new Generation(args.target, grpc.credentials.createInsecure(), { 'grpc.max_receive_message_length': 16 << 20 });
const metadata = () => {
  const m = new grpc.Metadata();
  if (args['api-key']) m.set('authorization', `Bearer ${args['api-key']}`);
  return m;
};

function runStream(request, onToken) {
  return new Promise((resolve) => {
    const tokens = [];
    let final = null;
    const call = client.Generate(request, metadata());
    call.on('data', (response) => {
      if (response.token) {
        tokens.push(response.token);
        onToken?.();
      } else if (response.final) final = response.final;
    });
    call.on('error', (error) => resolve({ tokens, final, error: `${grpc.status[error.code]}: ${error.details}` }));
    call.on('end', () => resolve({ tokens, final, error: null }));
  });
}

function checkRecord(record, { tokens, final, error }) {
  if (error) return [error, false];
  if (tokens.some((t, i) => (t.index ?? 0) !== i)) return [`token indexes are not 0..${tokens.length - 1}`, false];
  const got = tokens.map((t) => t.token_id ?? 0);
  const want = record.generated_token_ids;
  if (got.length === want.length && got.every((t, i) => t === want[i])) {
    const expected = record.stop_reason === 'bos' ? 'EOS' : 'LENGTH';
    const finish = final ? FINISH[final.finish_reason] : null;
    return finish === expected ? [null, false] : [`finish ${finish}, oracle stop ${record.stop_reason}`, false];
  }
  let diff = got.findIndex((t, i) => t !== want[i]);
  if (diff < 0) diff = Math.min(got.length, want.length);
  const ties = record.near_ties.map((pos) => pos - record.prompt_token_ids.length + 1);
  if (ties.some((t) => diff >= t)) return [null, true];
  return [`token ${diff}: got ${JSON.stringify(got.slice(diff, diff + 5))}, oracle ${JSON.stringify(want.slice(diff, diff + 5))} (${got.length} vs ${want.length} tokens)`, false];
}

async function checkOracle(records, kcache, runId) {
  const name = kcache ? `kcache N=${args['top-n']}` : 'full';
  const attention = kcache ? { mode: 'ATTENTION_MODE_KCACHE', top_n: Number(args['top-n']) } : { mode: 'ATTENTION_MODE_FULL' };
  const t0 = performance.now();
  const results = await Promise.all(records.map((r) => runStream({
    request_id: `${runId}-oracle-${kcache ? 'kcache' : 'full'}-${r.id}`,
    ...(r.prompt ? { prompt: r.prompt } : { prompt_token_ids: r.prompt_token_ids }),
    max_new_tokens: 512, sampling: { temperature: 0, seed: 0 }, attention,
  })));
  const seconds = (performance.now() - t0) / 1000;
  const rows = records.map((record, i) => {
    let [reason, atTie] = checkRecord(record, results[i]);
    const promptTokens = results[i].final?.usage?.prompt_tokens ?? null;
    if (reason === null && promptTokens !== null && promptTokens !== record.prompt_token_ids.length) reason = `prompt encoded to ${promptTokens} tokens, oracle ${record.prompt_token_ids.length}`;
    return { id: record.id, ok: reason === null, exact: reason === null && !atTie, reason, tokens: results[i].tokens.length, promptTokens, finish: results[i].final ? FINISH[results[i].final.finish_reason] ?? null : null };
  });
  const tokens = rows.reduce((n, r) => n + r.tokens, 0);
  const summary = { attention: name, matches: rows.filter((r) => r.ok).length, exact: rows.filter((r) => r.exact).length, prompts: records.length, tokens, seconds, tokensPerSecond: tokens / seconds, rows };
  log(`oracle ${name}: ${summary.matches}/${records.length} match (${summary.exact} exact), ${tokens} tokens in ${seconds.toFixed(2)} s`);
  for (const r of rows) if (!r.ok) log(`  FAIL ${r.id}: ${r.reason}`); else if (!r.exact) log(`  ${r.id}: differs only at or after its near tie`);
  return summary;
}

function percentiles(values) {
  const sorted = [...values].sort((a, b) => a - b);
  const at = (q) => (sorted.length === 0 ? NaN : sorted[Math.min(sorted.length - 1, Math.floor(q * sorted.length))]);
  return { p50: at(0.5), p90: at(0.9), p99: at(0.99) };
}

async function closedLoop(concurrency, numRequests, maxNewTokens, tag) {
  const kcache = args.attention === 'kcache';
  const attention = kcache ? { mode: 'ATTENTION_MODE_KCACHE', top_n: Number(args['top-n']) } : { mode: 'ATTENTION_MODE_FULL' };
  const ttft = [], itl = [], requestMs = [], errors = [];
  let tokens = 0, next = 0;
  const cpu0 = process.cpuUsage();
  const t0 = performance.now();
  await Promise.all(Array.from({ length: concurrency }, async () => {
    for (let i = next++; i < numRequests; i = next++) {
      const sent = performance.now();
      let last = sent;
      const result = await runStream({ request_id: `${tag}-${i}`, prompt: PROMPT, max_new_tokens: maxNewTokens, sampling: { temperature: 0.8, seed: i }, attention }, () => {
        const now = performance.now();
        (last === sent ? ttft : itl).push(now - last);
        last = now;
      });
      requestMs.push(performance.now() - sent);
      tokens += result.tokens.length;
      if (result.error) errors.push(result.error);
    }
  }));
  const wall = (performance.now() - t0) / 1000;
  const cpu = process.cpuUsage(cpu0);
  return { concurrency, numRequests, numErrors: errors.length, errors: errors.slice(0, 5), wallSeconds: wall, tokens, tokensPerSecond: tokens / wall,
    ttftMs: percentiles(ttft), interTokenMs: percentiles(itl), requestMs: percentiles(requestMs), clientCpuFraction: (cpu.user + cpu.system) / 1e6 / wall };
}

async function main() {
  const records = JSON.parse(fs.readFileSync(args.oracle, 'utf8')).prompts;
  const runId = `n${Date.now() % 1e9}`;
  const grpcVersion = JSON.parse(fs.readFileSync(path.join(path.dirname(require.resolve('@grpc/grpc-js/package.json', { paths: [args.app] })), 'package.json'), 'utf8')).version;
  const report = { client: `node ${process.version}, @grpc/grpc-js ${grpcVersion} with @grpc/proto-loader (fallback: no python3 with grpc)`, target: args.target, schema: { skipped: 'messages come from the .proto itself' }, oracle: [] };
  let failed = false;
  for (const kcache of [false, true]) {
    const summary = await checkOracle(records, kcache, runId);
    report.oracle.push(summary);
    failed ||= summary.matches !== summary.prompts;
  }
  const concurrency = Number(args.concurrency);
  const maxNewTokens = Number(args['max-new-tokens']);
  await closedLoop(concurrency, concurrency, 16, `${runId}-warmup`);
  const load = await closedLoop(concurrency, Number(args.requests), maxNewTokens, `${runId}-load`);
  Object.assign(load, { path: 'serving', attention: args.attention, maxNewTokens });
  report.load = load;
  failed ||= load.numErrors > 0;
  log(`serving c=${concurrency} ${load.numRequests} requests x ${maxNewTokens} tokens: ${load.tokensPerSecond.toFixed(0)} tok/s, TTFT p50 ${load.ttftMs.p50.toFixed(1)} ms, ` +
    `ITL p50 ${load.interTokenMs.p50.toFixed(2)} ms, errors ${load.numErrors}, client CPU ${(load.clientCpuFraction * 100).toFixed(0)}%`);
  for (const error of load.errors) log(`  error: ${error}`);
  fs.writeFileSync(args.out, JSON.stringify(report, null, 2) + '\n');
  client.close();
  process.exitCode = failed ? 1 : 0;
}

main().catch((error) => {
  console.error(error);
  process.exit(1);
});
