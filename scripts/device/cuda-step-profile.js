#!/usr/bin/env node
'use strict';
/**
 * Where a decode step of the native backend goes, from onnxruntime's per-node profile, run by
 * scripts/device/run-cuda.sh's `profile` stage:
 *   node scripts/device/cuda-step-profile.js <appRoot> <outDir> [cuda|cpu] [model] [context] [batch] [in-arena|apart|fused|paged] [full|kcache]
 * (defaults: cuda, synthetic:llama-110m, 512, 32, the backend's default graph; full attention; kcache: TopN 64 in
 * every layer, its V in the host tier). in-arena / apart:
 * the decode graph that writes the current row into the arena before reading the past, or the one that keeps
 * it apart (NativeBackendOptions.currentRowInArena), or in-arena with the exact layers as MultiHeadAttention nodes
 * (fusedAttention), or every layer's attention as the addon's PagedDecodeAttention kernel (pagedAttention), to compare them on one machine. Decode steps with the cache filled
 * (bench/decode-bench.ts), profiled; per step: the run's wall time (median), the number of kernels, and
 * kernel time by operator (onnxruntime times each node on the host: on cuda that is mostly its launch,
 * so a step whose kernel sum is near its wall time is bound by launches, not by the GPU).
 * Writes <outDir>/cuda-step-profile.json.
 */
const fs = require('node:fs');
const os = require('node:os');
const path = require('node:path');

const [appRoot, outDir, provider = 'cuda', modelSpec = 'synthetic:llama-110m', contextArg = '512', batchArg = '32', graphArg = '', attentionArg = 'full'] = process.argv.slice(2);
if (!['', 'in-arena', 'apart', 'fused', 'paged'].includes(graphArg)) throw new Error(`graph: in-arena, apart, fused or paged, got ${graphArg}`);
if (!['full', 'kcache'].includes(attentionArg)) throw new Error(`attention: full or kcache, got ${attentionArg}`);
const dist = path.resolve(appRoot, 'libs/kcache/dist');
const k = require(dist);
const { benchDecode } = require(path.join(dist, '../../kcache-bench/dist/bench/decode-bench.js'));
const { stories260kDir } = require(path.join(dist, 'testing'));
const log = (...args) => process.stdout.write(args.join(' ') + '\n');

async function main() {
  const weights = k.loadModel(modelSpec === 'stories260K' ? stories260kDir() : modelSpec).weights;
  const context = Number(contextArg);
  const batchSize = Number(batchArg);
  const numSteps = 8;
  const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'kcache-step-profile-'));
  const result = await benchDecode(weights, {
    attention: attentionArg === 'kcache' ? { mode: 'kcache', topN: 64, denseLayers: 0, renormalize: false } : k.FULL_ATTENTION, context, batchSize, numSteps, numThreads: 0, blockSize: 16,
    executionProvider: provider, nativeBackend: true, profileFilePrefix: path.join(dir, 'step'),
    ...(graphArg ? { currentRowInArena: graphArg !== 'apart', fusedAttention: graphArg === 'fused', pagedAttention: graphArg === 'paged' } : {}),
  });
  const file = fs.readdirSync(dir).find((f) => f.startsWith('step_decode'));
  if (!file) throw new Error(`no decode profile in ${dir}: ${fs.readdirSync(dir).join(', ')}`);
  const events = JSON.parse(fs.readFileSync(path.join(dir, file), 'utf8'));
  const runs = events.filter((e) => e.cat === 'Session' && e.name === 'model_run').map((e) => e.dur / 1000);
  const kernels = events.filter((e) => e.cat === 'Node' && /_kernel_time$/.test(e.name));
  const byOp = {};
  for (const e of kernels) {
    const op = `${e.args.op_name} (${(e.args.provider || '').replace('ExecutionProvider', '')})`;
    byOp[op] = byOp[op] || { ms: 0, count: 0 };
    byOp[op].ms += e.dur / 1000 / runs.length;
    byOp[op].count += 1 / runs.length;
  }
  const sortedRuns = [...runs].sort((a, b) => a - b);
  const summary = {
    provider, graph: graphArg || 'default', attention: attentionArg, model: modelSpec, context, batchSize, msPerStepTimed: result.msPerStep,
    runMsMedian: sortedRuns[Math.floor(sortedRuns.length / 2)], runs: runs.length,
    kernelsPerStep: kernels.length / runs.length,
    kernelMsPerStep: Object.values(byOp).reduce((sum, o) => sum + o.ms, 0),
    byOp: Object.fromEntries(Object.entries(byOp).sort((a, b) => b[1].ms - a[1].ms).map(([op, o]) => [op, { ms: +o.ms.toFixed(4), count: +o.count.toFixed(1) }])),
  };
  log(`${modelSpec} ${attentionArg} (${summary.graph} graph), context ${context}, batch ${batchSize} on ${provider}: ${result.msPerStep.toFixed(3)} ms/step timed, ` +
    `run ${summary.runMsMedian.toFixed(3)} ms (median of ${runs.length}), ${summary.kernelsPerStep.toFixed(0)} kernels, ` +
    `${summary.kernelMsPerStep.toFixed(3)} ms of kernel time per step`);
  for (const [op, o] of Object.entries(summary.byOp).slice(0, 15)) log(`  ${op.padEnd(40)} ${o.ms.toFixed(3)} ms  x${o.count}`);
  fs.mkdirSync(outDir, { recursive: true });
  fs.writeFileSync(path.join(outDir, `cuda-step-profile${graphArg ? `-${graphArg}` : ''}${attentionArg === 'full' ? '' : `-${attentionArg}-${context}-b${batchSize}`}.json`), JSON.stringify(summary, null, 2));
  fs.rmSync(dir, { recursive: true, force: true });
}

main().catch((error) => { log((error && error.stack) || error); process.exit(1); });
