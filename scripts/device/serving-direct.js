#!/usr/bin/env node
'use strict';
/**
 * The serving run's baseline, run by scripts/device/cuda-serving.sh: the worker's own engine (built from the
 * same environment as the worker: EXECUTION_PROVIDER, MODEL, NUM_THREADS, ENGINE_THREAD, ...) driven directly
 * in this process, with the workload that serving-client.py sends through the gateway:
 *   node scripts/device/serving-direct.js <appRoot> <outFile> [--concurrency 32] [--requests 128]
 *        [--max-new-tokens 128] [--attention full|kcache] [--top-n 512]
 * Prompt "Once upon a time", temperature 0.8, seed = request index; a closed loop of `concurrency` clients.
 * One warm-up level (concurrency requests of 16 tokens) runs first. Writes <outFile> (JSON) and a line on stdout.
 */
const fs = require('node:fs');
const path = require('node:path');
const { parseArgs } = require('node:util');

const [appRoot, outFile, ...rest] = process.argv.slice(2);
if (!appRoot || !outFile) {
  console.error('usage: serving-direct.js <appRoot> <outFile> [--concurrency N] [--requests N] [--max-new-tokens N] [--attention full|kcache] [--top-n N]');
  process.exit(2);
}
const k = require(path.resolve(appRoot, 'libs/kcache/dist'));
const { parseWorkerConfig } = require(path.resolve(appRoot, 'apps/worker/dist/worker-config'));
const { directLevel } = require(path.resolve(appRoot, 'apps/worker/dist/bench/direct-level'));

const PROMPT = 'Once upon a time';
const TEMPERATURE = 0.8;

async function main() {
  const { values } = parseArgs({
    args: rest,
    options: {
      concurrency: { type: 'string', default: '32' },
      requests: { type: 'string', default: '128' },
      'max-new-tokens': { type: 'string', default: '128' },
      attention: { type: 'string', default: 'full' },
      'top-n': { type: 'string', default: '512' },
    },
  });
  const concurrency = Number(values.concurrency);
  const numRequests = Number(values.requests);
  const maxNewTokens = Number(values['max-new-tokens']);
  const attention = values.attention === 'kcache' ? { mode: 'kcache', topN: Number(values['top-n']), denseLayers: 0, renormalize: false } : k.FULL_ATTENTION;
  const config = parseWorkerConfig(process.env);
  const engineOptions = { model: await k.resolveModelSpec(config.model), ...config.engine };
  const t0 = performance.now();
  const engine = config.isEngineThreaded ? await k.ThreadedEngine.start(engineOptions) : await k.createEngine(engineOptions);
  const startSeconds = (performance.now() - t0) / 1000;
  const model = k.loadModel(engineOptions.model);
  const promptTokenIds = model.tokenizer.encode(PROMPT);
  const request = (tag, tokens) => (i) => ({
    requestId: `direct-${tag}-${i}`,
    promptTokenIds,
    maxNewTokens: tokens,
    sampling: { temperature: TEMPERATURE, topK: 0, topP: 1, seed: i },
    stopTokenIds: [],
    stopStrings: [],
    attention,
    priority: 0,
    logprobs: false,
  });
  try {
    await directLevel(engine, concurrency, concurrency, request('warmup', 16));
    const level = await directLevel(engine, concurrency, numRequests, request('run', maxNewTokens));
    const report = {
      path: 'direct',
      executionProvider: config.engine.executionProvider,
      nativeBackend: config.engine.nativeBackend ?? config.engine.executionProvider === 'cuda',
      engineThread: config.isEngineThreaded,
      numThreads: config.engine.numThreads ?? null,
      model: config.model ?? 'stories260K',
      attention: values.attention,
      maxNewTokens,
      engineStartSeconds: startSeconds,
      ...level,
    };
    fs.mkdirSync(path.dirname(path.resolve(outFile)), { recursive: true });
    fs.writeFileSync(outFile, JSON.stringify(report, null, 2) + '\n');
    console.log(
      `direct  ${config.engine.executionProvider}${config.engine.nativeBackend ? ' (native backend)' : ''} c=${concurrency} ${numRequests} requests x ${maxNewTokens} tokens: ` +
        `${level.tokensPerSecond.toFixed(0)} tok/s, TTFT p50 ${level.ttftMs.p50.toFixed(1)} ms, ITL p50 ${level.interTokenMs.p50.toFixed(2)} ms, errors ${level.numErrors}`,
    );
  } finally {
    await engine.close();
  }
}

main().catch((error) => {
  console.error(error);
  process.exit(1);
});
