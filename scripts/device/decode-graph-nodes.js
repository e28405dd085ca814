#!/usr/bin/env node
'use strict';
/**
 * Where a decode step's kernels come from, without a GPU: builds the decode graph the way the native
 * backend does (writeKvInPlace and its layerArenaViews; one arena group) and counts its nodes by
 * operator, as built and after onnxruntime's CPU optimizations (graph level 'all'; the CUDA provider
 * fuses a little differently, e.g. Sigmoid·Mul into QuickGelu on both):
 *   node scripts/device/decode-graph-nodes.js <appRoot> [model] [full|kcache] [--old-tables | --in-arena | --fused | --paged]
 * (defaults: synthetic:llama-110m, full). --old-tables builds the per-layer slice tables (IO.kvSlices)
 * for comparison; --in-arena the graph that writes the current row before reading the past (currentRowInArena,
 * the native backend's default on cuda); --fused that graph with its exact layers as MultiHeadAttention nodes
 * (fusedAttention; where Hkv = H); --paged that graph with every layer's attention as the addon's PagedDecodeAttention
 * node (pagedAttention; counted as built only: onnxruntime-node does not know the operator). Prints the counts and, for each operator, its count per layer where it divides.
 */
const fs = require('node:fs');
const os = require('node:os');
const path = require('node:path');

const args = process.argv.slice(2);
const flags = new Set(args.filter((a) => a.startsWith('--')));
const [appRoot = '.', modelSpec = 'synthetic:llama-110m', mode = 'full'] = args.filter((a) => !a.startsWith('--'));
const dist = path.resolve(appRoot, 'libs/kcache/dist');
const { loadModel } = require(path.join(dist, 'formats'));
const { GraphWeights } = require(path.join(dist, 'runtime/layer-weights-layout.js'));
const { buildDecodeGraph } = require(path.join(dist, 'runtime/decode-graph.js'));
const { graphVariantOf } = require(path.join(dist, 'runtime/graph-variant.js'));
const { stories260kDir } = require(path.join(dist, 'testing'));
const { onnx } = require(require.resolve('onnx-proto', { paths: [dist] }));
const ort = require(require.resolve('onnxruntime-node', { paths: [dist] }));
const log = (...a) => process.stdout.write(a.join(' ') + '\n');

function countOps(modelBytes) {
  const graph = onnx.ModelProto.decode(modelBytes).graph;
  const counts = {};
  for (const node of graph.node) counts[node.opType] = (counts[node.opType] || 0) + 1;
  return { total: graph.node.length, counts, inputs: graph.input.map((i) => i.name) };
}

function print(title, { total, counts }, numLayers) {
  log(`${title}: ${total} nodes`);
  for (const [op, n] of Object.entries(counts).sort((a, b) => b[1] - a[1])) {
    const perLayer = n >= numLayers && n % numLayers <= 1 ? `  (${Math.floor(n / numLayers)} a layer${n % numLayers ? ' + 1' : ''})` : '';
    log(`  ${op.padEnd(34)} ${String(n).padStart(4)}${perLayer}`);
  }
}

async function main() {
  const weights = loadModel(modelSpec === 'stories260K' ? stories260kDir() : modelSpec).weights;
  const config = weights.config;
  const attention = mode === 'full' ? { mode: 'full' } : { mode: 'kcache', topN: 64, denseLayers: 2, renormalize: false };
  const variant = graphVariantOf(attention, config.numLayers);
  const bytes = buildDecodeGraph(new GraphWeights(weights), variant, 16, {
    appendCurrentByCopy: false,
    writeKvInPlace: true,
    layerArenaViews: !flags.has('--old-tables'),
    currentRowInArena: flags.has('--in-arena') || flags.has('--fused') || flags.has('--paged'),
    fusedAttention: flags.has('--fused'),
    pagedAttention: flags.has('--paged'),
  });
  const built = countOps(bytes);
  log(`${modelSpec}, ${variant.key}, ${config.numLayers} layers; inputs: ${built.inputs.filter((n) => !/^(tok_|layers?\.|w)/.test(n)).length}`);
  print('as built', built, config.numLayers);
  if (flags.has('--paged')) return;
  const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'decode-graph-nodes-'));
  const optimized = path.join(dir, 'optimized.onnx');
  const session = await ort.InferenceSession.create(bytes, { executionProviders: ['cpu'], graphOptimizationLevel: 'all', optimizedModelFilePath: optimized, intraOpNumThreads: 1 });
  await session.release();
  print('after onnxruntime optimization (cpu)', countOps(fs.readFileSync(optimized)), config.numLayers);
  fs.rmSync(dir, { recursive: true, force: true });
}

main().catch((error) => { log((error && error.stack) || error); process.exit(1); });
