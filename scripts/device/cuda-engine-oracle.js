#!/usr/bin/env node
'use strict';
/**
 * The engine on the native backend (onnxruntime's C API, arenas bound in place), run by
 * scripts/device/run-cuda.sh's `oracle` stage on the lent GPU machine:
 *   node scripts/device/cuda-engine-oracle.js <appRoot> <outDir> [cuda|cpu]
 * 1. oracle: stories260K, all 12 greedy oracle prompts batched through the engine, full and kcache
 *    N=512: the reference tokens (up to a prompt's first near tie, as engine-oracle.test.ts) and stop reason.
 * 2. teacher-forced logits: every oracle text scored (prompt exact, generated positions with the
 *    variant's TopN) by the native runner against onnxruntime-node's CPU provider; largest difference
 *    (target 1e-4).
 * `cpu` runs the same checks on the CPU provider through the same addon (no GPU needed).
 * Writes <outDir>/cuda-engine-oracle.json. Exits 1 if a check fails.
 */
const assert = require('node:assert/strict');
const fs = require('node:fs');
const path = require('node:path');

const [appRoot, outDir, provider = 'cuda'] = process.argv.slice(2);
const k = require(path.resolve(appRoot, 'libs/kcache/dist'));
const { loadGreedyOracle, stories260kDir } = require(path.resolve(appRoot, 'libs/kcache/dist/testing'));
const log = (...args) => process.stdout.write(args.join(' ') + '\n');
const KCACHE_512 = { mode: 'kcache', topN: 512, denseLayers: 0, renormalize: false };
const modes = [['full', k.FULL_ATTENTION], ['kcache N=512', KCACHE_512]];
// The onnx operators' decode graph, the one that writes the current row into the arena first
// (EngineOptions.currentRowInArena), and the one whose attention is the addon's PagedDecodeAttention kernel
// (pagedAttention, the default on cuda where its kernels are built), that one run as CUDA graphs (cudaGraphs): the
// oracle through the engine with each (KCACHE_ORACLE_GRAPHS=default,in-arena,paged,paged-graphs picks).
const allGraphs = {
  default: [' (onnx operators)', { pagedAttention: false }],
  'in-arena': [' (current row in the arena)', { currentRowInArena: true, pagedAttention: false }],
  paged: [' (PagedDecodeAttention kernel)', { pagedAttention: true }],
  'paged-graphs': [' (PagedDecodeAttention kernel, CUDA graphs)', { pagedAttention: true, cudaGraphs: true }],
};
const graphs = (process.env.KCACHE_ORACLE_GRAPHS || `default,in-arena,paged${provider === 'cuda' ? ',paged-graphs' : ''}`).split(',').map((name) => allGraphs[name]);
// Teacher-forced decode runs with the kernel, and with the kernel as CUDA graphs (cuda only).
const decodeRuns = [['PagedDecodeAttention', { pagedAttention: true }], ...(provider === 'cuda' ? [['PagedDecodeAttention, CUDA graphs', { pagedAttention: true, cudaGraphs: true }]] : [])];
const results = { provider };
let failures = 0;

async function check(name, fn) {
  const t0 = Date.now();
  try {
    await fn();
    log(`ok   ${name} (${Date.now() - t0} ms)`);
  } catch (error) {
    failures++;
    log(`FAIL ${name}: ${(error && error.stack) || error}`);
  }
}

/** Tokens equal the reference up to the prompt's first near tie (where fp32 order may flip the pick). */
function matchesOracle(tokenIds, record) {
  const firstTie = Math.min(...record.near_ties.map((pos) => pos - record.prompt_token_ids.length + 1), Infinity);
  const expected = record.generated_token_ids;
  const n = firstTie === Infinity ? Math.max(expected.length, tokenIds.length) : firstTie;
  for (let i = 0; i < n; i++) if (tokenIds[i] !== expected[i]) return false;
  return true;
}

async function main() {
  const records = loadGreedyOracle();
  const model = k.loadModel(stories260kDir());
  const native = { executionProvider: provider, nativeBackend: true };

  for (const [graphName, graph] of graphs) for (const [modeName, attention] of modes) {
    const name = modeName + graphName;
    await check(`oracle ${name}: ${records.length} prompts batched through the engine on ${provider} (native backend)`, async () => {
      const engine = await k.createEngine({ model: stories260kDir(), defaultAttention: attention, numThreads: 4, ...native, ...graph }, model);
      const t0 = performance.now();
      const outs = await Promise.all(records.map((r) => k.generate(engine, {
        requestId: r.id, promptTokenIds: r.prompt_token_ids, maxNewTokens: 512, sampling: k.GREEDY,
        stopTokenIds: [], stopStrings: [], attention, priority: 0, logprobs: false,
      })));
      const seconds = (performance.now() - t0) / 1000;
      const tokens = outs.reduce((n, o) => n + o.tokenIds.length, 0);
      const matches = outs.filter((o, i) => matchesOracle(o.tokenIds, records[i]) && o.finish.reason === (records[i].stop_reason === 'bos' ? 'eos' : 'length')).length;
      await engine.close();
      results[`oracle ${name}`] = { matches, prompts: records.length, tokens, tokensPerSecond: tokens / seconds };
      log(`oracle ${name}: ${matches}/${records.length} match, ${tokens} tokens, ${(tokens / seconds).toFixed(0)} tok/s`);
      assert.equal(matches, records.length);
    });
  }

  for (const [name, attention] of modes) {
    await check(`teacher-forced logits ${name}: native ${provider} within 1e-4 of onnxruntime-node's CPU provider`, async () => {
      const config = model.weights.config;
      const variant = k.graphVariantOf(attention, config.numLayers);
      const options = { blockSize: 16, arenaCapacity: { kIds: 1, deviceVIds: 1, hostVIds: 1 }, numThreads: 4 };
      const reference = new k.ModelRunner(model.weights, options);
      const runner = new k.ModelRunner(model.weights, { ...options, ...native });
      let maxDiff = 0, positions = 0;
      for (const r of records) {
        const text = [...r.prompt_token_ids, ...r.generated_token_ids].slice(0, config.maxSeqLen);
        const a = await runner.score(text, variant, attention.topN, r.prompt_token_ids.length);
        const b = await reference.score(text, variant, attention.topN, r.prompt_token_ids.length);
        for (let i = 0; i < b.length; i++) maxDiff = Math.max(maxDiff, Math.abs(a[i] - b[i]));
        positions += text.length;
      }
      await runner.release();
      await reference.release();
      results[`teacher-forced ${name}`] = { positions, maxAbsDiff: maxDiff };
      log(`teacher-forced ${name}: ${positions} positions, max |${provider} - cpu| = ${maxDiff.toExponential(3)}`);
      assert.ok(maxDiff <= 1e-4, `max difference ${maxDiff}`);
    });
  }

  for (const [runName, runOptions] of decodeRuns) for (const [name, attention] of modes) {
    await check(`teacher-forced decode logits ${name}, ${runName}: native ${provider} within 1e-4 of onnxruntime-node's CPU provider`, async () => {
      const { KvCacheManager } = require(path.resolve(appRoot, 'libs/kcache/dist/memory/kv-cache-manager'));
      const { emptySequenceBlocks } = require(path.resolve(appRoot, 'libs/kcache/dist/memory/sequence-blocks'));
      const config = model.weights.config;
      const variant = k.graphVariantOf(attention, config.numLayers);
      const topN = attention.mode === 'kcache' ? attention.topN : 0;
      const kv = new KvCacheManager({ model: config, deviceCapacityBytes: 64 << 20, hostCapacityBytes: 64 << 20 });
      const options = { blockSize: 16, arenaCapacity: kv.arenaCapacity(), numThreads: 4 };
      const reference = new k.ModelRunner(model.weights, options);
      const runner = new k.ModelRunner(model.weights, { ...options, ...native, ...runOptions });
      // The oracle texts decoded in one batch, teacher-forced: each step feeds every text's next reference token.
      const texts = records.map((r) => [...r.prompt_token_ids, ...r.generated_token_ids].slice(0, config.maxSeqLen));
      const seqs = records.map((r, i) => {
        const seq = { blocks: emptySequenceBlocks(), attention };
        kv.allocate(seq, texts[i].length + 1);
        return { blocks: seq.blocks, promptLength: r.prompt_token_ids.length, text: texts[i] };
      });
      for (const s of seqs) {
        const prompt = s.text.slice(0, s.promptLength);
        for (const r of [reference, runner]) await r.prefill({ tokenIds: prompt, startPosition: 0, numPromptTokens: prompt.length, blocks: s.blocks }, variant, topN);
      }
      let maxDiff = 0, positions = 0;
      for (let step = 0; ; step++) {
        const live = seqs.filter((s) => s.promptLength + step < s.text.length);
        if (live.length === 0) break;
        const items = live.map((s) => ({ tokenId: s.text[s.promptLength + step], position: s.promptLength + step, blocks: s.blocks }));
        const a = await runner.decode(items, variant, topN);
        const b = await reference.decode(items, variant, topN);
        for (let i = 0; i < b.length; i++) maxDiff = Math.max(maxDiff, Math.abs(a[i] - b[i]));
        positions += items.length;
      }
      await runner.release();
      await reference.release();
      results[`teacher-forced decode ${name} ${runOptions.cudaGraphs ? 'paged-graphs' : 'paged'}`] = { positions, maxAbsDiff: maxDiff };
      log(`teacher-forced decode ${name} (${runName}): ${positions} positions, max |${provider} - cpu| = ${maxDiff.toExponential(3)}`);
      assert.ok(maxDiff <= 1e-4, `max difference ${maxDiff}`);
    });
  }

  fs.mkdirSync(outDir, { recursive: true });
  fs.writeFileSync(path.join(outDir, 'cuda-engine-oracle.json'), JSON.stringify(results, null, 2));
  log(failures === 0 ? 'cuda-engine-oracle: all passed' : `cuda-engine-oracle: ${failures} failed`);
  process.exit(failures === 0 ? 0 : 1);
}

main().catch((error) => { log((error && error.stack) || error); process.exit(1); });
