#!/usr/bin/env node
'use strict';
/**
 * GPU checks of the engine through an onnxruntime execution provider (default webgpu), run by
 * scripts/device/run-gpu.sh on the lent machine (also runs here, where it should fail cleanly).
 *   node scripts/device/gpu-check.js <appRoot> probe|oracle|profile [ep]
 * appRoot: a folder holding libs/kcache/dist and node_modules (the unpacked bundle, or the checkout).
 * probe:   lists onnxruntime's backends and runs a one-node graph on the provider.
 * oracle:  stories260K greedy oracle, every prompt batched, full and kcache N=512, on the provider;
 *          plus the largest logit difference from the CPU provider over one teacher-forced text.
 * profile: onnxruntime's node profile of a few 110M decode steps: time per provider and op type.
 * Exits 1 if a check fails.
 */
const assert = require('node:assert/strict');
const fs = require('node:fs');
const path = require('node:path');

const [appRoot, stage, epArg] = process.argv.slice(2);
if (!appRoot || !stage) {
  process.stderr.write('usage: gpu-check.js <appRoot> probe|oracle|profile [ep]\n');
  process.exit(2);
}
const ep = epArg || 'webgpu';
const dist = path.resolve(appRoot, 'libs/kcache/dist');
const ort = require(path.resolve(appRoot, 'node_modules/onnxruntime-node'));
const k = require(dist);
const testing = require(path.join(dist, 'testing'));
const { benchDecode } = require(path.join(dist, '../../kcache-bench/dist/bench/decode-bench.js'));

const MIB = 1 << 20;
const log = (...args) => process.stdout.write(args.join(' ') + '\n');

async function probe() {
  log('backends', JSON.stringify(ort.listSupportedBackends()));
  const { onnx } = require(path.resolve(appRoot, 'node_modules/onnx-proto'));
  const info = (name) => ({ name, type: { tensorType: { elemType: 1, shape: { dim: [{ dimValue: 4 }] } } } });
  const model = onnx.ModelProto.encode({
    irVersion: 8,
    opsetImport: [{ domain: '', version: 17 }],
    graph: { name: 'probe', node: [{ opType: 'Relu', input: ['x'], output: ['y'] }], input: [info('x')], output: [info('y')] },
  }).finish();
  const session = await ort.InferenceSession.create(model, { executionProviders: [ep] });
  const out = await session.run({ x: new ort.Tensor('float32', Float32Array.of(-1, 2, -3, 4), [4]) });
  log(`probe ${ep}: Relu gave`, Array.from(out.y.data).join(','));
  assert.deepEqual(Array.from(out.y.data), [0, 2, 0, 4]);
}

/** As engine-oracle.test.ts: tokens equal the reference up to the first near tie. */
function matchesOracle(tokenIds, record) {
  const promptLength = record.prompt_token_ids.length;
  const firstTie = Math.min(...record.near_ties.map((pos) => pos - promptLength + 1), Infinity);
  const expected = record.generated_token_ids;
  const upTo = firstTie === Infinity ? Math.max(expected.length, tokenIds.length) : firstTie;
  for (let i = 0; i < upTo; i++) if (tokenIds[i] !== expected[i]) return { ok: false, at: i, compared: upTo };
  return { ok: true, compared: upTo };
}

async function oracle() {
  const model = k.loadModel(testing.stories260kDir());
  const records = testing.loadGreedyOracle();
  let failures = 0;
  const attentions = [
    ['full', k.FULL_ATTENTION],
    ['kcache N=512', { mode: 'kcache', topN: 512, denseLayers: 0, renormalize: false }],
  ];
  for (const [name, attention] of attentions) {
    // Small tiers: the oracle needs little, and a GPU provider copies the device tier to the GPU at the first decode.
    const engine = await k.createEngine(
      { model: testing.stories260kDir(), defaultAttention: attention, numThreads: 1, executionProvider: ep, deviceCapacityBytes: 16 * MIB, hostCapacityBytes: 16 * MIB },
      model,
    );
    const start = performance.now();
    const results = await Promise.all(
      records.map((r) =>
        k.generate(engine, {
          requestId: r.id, promptTokenIds: r.prompt_token_ids, maxNewTokens: 512, sampling: k.GREEDY,
          stopTokenIds: [], stopStrings: [], attention, priority: 0, logprobs: false,
        }),
      ),
    );
    const ms = performance.now() - start;
    let numTokens = 0;
    let matched = 0;
    results.forEach((result, i) => {
      const record = records[i];
      numTokens += result.tokenIds.length;
      const m = matchesOracle(result.tokenIds, record);
      const reason = record.stop_reason === 'bos' ? 'eos' : 'length';
      const ok = m.ok && result.finish.reason === reason;
      if (ok) matched++;
      else {
        failures++;
        log(`  FAIL ${name} ${record.id}: ${m.ok ? `finish ${result.finish.reason}, expected ${reason}` : `token ${m.at} differs (got ${result.tokenIds[m.at]}, expected ${record.generated_token_ids[m.at]})`}`);
      }
    });
    log(`oracle ${ep} ${name}: ${matched}/${records.length} prompts match the reference (${numTokens} tokens, batched, ${ms.toFixed(0)} ms, ${((numTokens / ms) * 1000).toFixed(0)} tok/s)`);
    await engine.close();
  }

  // Teacher-forced logits of one reference text, this provider against the CPU provider.
  const record = records[0];
  const text = [...record.prompt_token_ids, ...record.generated_token_ids].slice(0, model.weights.config.maxSeqLen);
  for (const [name, attention] of attentions) {
    const variant = k.graphVariantOf(attention, model.weights.config.numLayers);
    const logits = {};
    for (const provider of ['cpu', ep]) {
      const kv = new k.KvCacheManager({ model: model.weights.config, deviceCapacityBytes: 4 * MIB, hostCapacityBytes: 4 * MIB });
      const runner = new k.ModelRunner(model.weights, { blockSize: 16, arenaCapacity: kv.arenaCapacity(), numThreads: 1, executionProvider: provider });
      logits[provider] = await runner.score(text, variant, attention.topN, 0);
      await runner.release();
    }
    let maxDiff = 0;
    for (let i = 0; i < logits.cpu.length; i++) maxDiff = Math.max(maxDiff, Math.abs(logits.cpu[i] - logits[ep][i]));
    log(`score ${name}: ${text.length} positions, max |logit(${ep}) - logit(cpu)| = ${maxDiff.toExponential(3)}`);
    if (!(maxDiff < 1e-3)) {
      failures++;
      log(`  FAIL score ${name}: difference above 1e-3`);
    }
  }
  if (failures > 0) throw new Error(`${failures} oracle check(s) failed`);
}

async function profile() {
  const weights = k.loadModel('synthetic:llama-110m').weights;
  const dir = fs.mkdtempSync('/tmp/kcache-profile-');
  for (const [name, attention] of [
    ['full', k.FULL_ATTENTION],
    ['kcache', { mode: 'kcache', topN: 64, denseLayers: 0, renormalize: false }],
  ]) {
    for (const [context, batchSize] of [[512, 1], [512, 32], [2048, 32]]) {
      const prefix = path.join(dir, `${name}_c${context}_b${batchSize}`);
      const r = await benchDecode(weights, { attention, context, batchSize, numSteps: 3, numThreads: 0, blockSize: 16, profileFilePrefix: prefix, executionProvider: ep });
      const files = fs.readdirSync(dir).filter((f) => f.startsWith(path.basename(prefix)) && f.endsWith('.json'));
      const byProvider = new Map();
      const byOp = new Map();
      let sessionRunUs = 0;
      for (const f of files) {
        for (const e of JSON.parse(fs.readFileSync(path.join(dir, f), 'utf8'))) {
          if (e.cat === 'Session' && e.name === 'model_run') sessionRunUs += e.dur;
          if (e.cat !== 'Node' || !e.name.endsWith('_kernel_time')) continue;
          const provider = e.args.provider || '?';
          byProvider.set(provider, (byProvider.get(provider) || 0) + e.dur);
          const key = `${provider} ${e.args.op_name}`;
          byOp.set(key, (byOp.get(key) || 0) + e.dur);
        }
      }
      log(`profile ${ep} 110M ${name} ctx ${context} batch ${batchSize}: ${r.msPerStep.toFixed(2)} ms/step (4 runs profiled, model_run total ${(sessionRunUs / 1000).toFixed(1)} ms)`);
      log('  kernel ms by provider: ' + [...byProvider].map(([p, us]) => `${p} ${(us / 1000).toFixed(1)}`).join(', '));
      const top = [...byOp].sort((a, b) => b[1] - a[1]).slice(0, 12);
      log('  top ops (ms): ' + top.map(([op, us]) => `${op} ${(us / 1000).toFixed(1)}`).join('; '));
    }
  }
}

const stages = { probe, oracle, profile };
if (!stages[stage]) {
  process.stderr.write(`unknown stage '${stage}'\n`);
  process.exit(2);
}
stages[stage]().then(
  () => process.exit(0),
  (error) => {
    process.stderr.write(`gpu-check ${stage} (${ep}) failed: ${error && error.stack ? error.stack : String(error)}\n`);
    process.exit(1);
  },
);
