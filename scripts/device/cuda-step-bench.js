#!/usr/bin/env node
'use strict';
/**
 * One ~110M decode step of the engine's own graph on the CUDA provider through the onnxruntime C API
 * addon, beside the same step on the machine's CPU cores; run by scripts/device/run-cuda.sh (stage step).
 *   node scripts/device/cuda-step-bench.js <appRoot> <outDir>
 * The step is recorded from the engine's runner (bench/decode-bench: the cache filled, every sequence
 * at `context`), then run again over its recorded feeds, three ways:
 *   cpu        the CPU provider, all cores, feeds bound in place (what the CPU worker runs)
 *   cuda-copy  the CUDA provider with every feed in host memory, bound again before every run: onnxruntime
 *              copies a host input up when it is bound, so the arenas go up every run (what a session run
 *              through onnxruntime-node's JavaScript API does)
 *   cuda-bound the CUDA provider with the KV arenas in device memory and host-tier V in pinned mapped host
 *              memory, bound once (read in place); only the small tables go up and the outputs come down
 * HBM roofline: (weight bytes + KV bytes read per step) / the card's HBM bandwidth (H200 4.8 TB/s, H100 3.35 TB/s),
 * against the measured step.
 * Prints a table; writes <outDir>/cuda-step-bench.json.
 */
const fs = require('node:fs');
const os = require('node:os');
const path = require('node:path');

const [appRoot, outDir] = process.argv.slice(2);
const dist = path.resolve(appRoot, 'libs/kcache/dist');
const k = require(dist);
const { benchDecode } = require(path.join(dist, '../../kcache-bench/dist/bench/decode-bench.js'));
const { NativeOrt } = require(path.join(dist, 'ort-native/native-ort.js'));
const { recordGraphRuns } = require(path.join(dist, 'testing/recorded-runs.js'));
const { onnx } = require(path.resolve(appRoot, 'node_modules/onnx-proto'));
const log = (...args) => process.stdout.write(args.join(' ') + '\n');
/** The card's HBM bandwidth, by name (H200 4.8 TB/s, H100 SXM 3.35 TB/s). */
const HBM_BYTES_PER_S = /H100/.test(process.env.KCACHE_GPU_NAME || '') ? 3.35e12 : 4.8e12;
const BIG_FEED_BYTES = 1 << 20;

const nbytes = (data) => data.byteLength;

function weightBytes(graph) {
  const model = onnx.ModelProto.decode(graph);
  let bytes = 0;
  for (const t of model.graph.initializer) {
    if (t.rawData && t.rawData.length) bytes += t.rawData.length;
    else bytes += 4 * ((t.floatData || []).length + (t.int32Data || []).length) + 8 * (t.int64Data || []).length;
  }
  return bytes;
}

function timeRuns(session, runs, beforeEach = () => {}) {
  beforeEach();
  session.run();
  const t0 = process.hrtime.bigint();
  for (let i = 0; i < runs; i++) {
    beforeEach();
    session.run();
  }
  return Number(process.hrtime.bigint() - t0) / 1e6 / runs;
}

/** Binds the recorded run: big feeds per `placeBig` (host | device | pinned for host-tier V), outputs in host buffers. */
function bindRun(native, session, run, placeBig) {
  const inputs = {};
  const keep = [];
  for (const [name, t] of Object.entries(run.feeds)) {
    const data = t.data.slice();
    const place = nbytes(data) >= BIG_FEED_BYTES ? placeBig(name) : 'host';
    if (place === 'host') {
      inputs[name] = native.hostTensor(data, t.type, t.dims);
      continue;
    }
    const memory = place === 'device' ? native.deviceMemory(nbytes(data)) : native.pinnedMemory(nbytes(data));
    if (place === 'device') memory.copy('toDevice', 0, data);
    else new Uint8Array(memory.buffer).set(new Uint8Array(data.buffer, data.byteOffset, data.byteLength));
    keep.push(memory);
    inputs[name] = native.tensor(memory, t.type, t.dims);
  }
  const outputs = {};
  for (const [name, t] of Object.entries(run.outputs)) {
    outputs[name] = native.hostTensor(new t.data.constructor(t.data.length), t.type, t.dims);
  }
  session.bind(inputs, outputs);
  return { keep, rebind: () => session.bind(inputs) };
}

async function main() {
  const native = NativeOrt.load();
  const weights = k.loadModel('synthetic:llama-110m').weights;
  const c = weights.config;
  const kvDim = (c.dim / c.numHeads) * c.numKvHeads;
  const cases = [
    { attention: k.FULL_ATTENTION, context: 512, batchSize: 32 },
    { attention: k.FULL_ATTENTION, context: 2048, batchSize: 32 },
    { attention: { mode: 'kcache', topN: 64, denseLayers: 0, renormalize: false }, context: 2048, batchSize: 32 },
  ];
  const rows = [];
  for (const bc of cases) {
    const runs = await recordGraphRuns(() => benchDecode(weights, { ...bc, numSteps: 1, numThreads: 0, blockSize: 16 }).then(() => undefined));
    const run = runs[runs.length - 1];
    const wBytes = weightBytes(run.graph);
    const kcache = bc.attention.mode === 'kcache';
    // K of every layer and position; V of every position (full) or of topN positions per query head (kcache).
    const kBytes = bc.batchSize * bc.context * c.numLayers * kvDim * 4;
    const vBytes = kcache ? bc.batchSize * c.numLayers * c.numHeads * Math.min(bc.attention.topN, bc.context) * (c.dim / c.numHeads) * 4 : kBytes;
    const bytesPerStep = wBytes + kBytes + vBytes;
    const result = { mode: kcache ? `kcache N=${bc.attention.topN}` : 'full', context: bc.context, batchSize: bc.batchSize, weightBytes: wBytes, kvBytesRead: kBytes + vBytes };
    for (const way of ['cpu', 'cuda-copy', 'cuda-bound']) {
      try {
        const session = native.session(run.graph, way === 'cpu' ? { provider: 'cpu', intraOpNumThreads: os.cpus().length } : { provider: 'cuda' });
        const placeBig = way === 'cuda-bound' ? (name) => (/host/.test(name) ? 'pinned' : 'device') : () => 'host';
        const { keep, rebind } = bindRun(native, session, run, placeBig);
        const ms = timeRuns(session, way === 'cpu' ? 3 : 20, way === 'cuda-copy' ? rebind : undefined);
        result[way] = { msPerStep: ms, tokensPerSecond: (bc.batchSize * 1000) / ms, rooflineFraction: bytesPerStep / HBM_BYTES_PER_S / (ms / 1e3) };
        session.release();
        keep.forEach((m) => m.release());
      } catch (error) {
        log(`${way} failed: ${error.message}`);
        result[way] = { msPerStep: NaN, tokensPerSecond: NaN, rooflineFraction: NaN, error: error.message };
      }
    }
    rows.push(result);
    log(JSON.stringify(result), 'feeds:', Object.entries(run.feeds).map(([n, t]) => `${n}:${t.type}[${t.dims}]`).join(' '));
  }
  log('\n| attention | context | batch | weights MB | KV read MB | CPU ms (tok/s) | CUDA copy ms (tok/s) | CUDA bound ms (tok/s) | bound: % of HBM roofline |');
  log('| --- | ---: | ---: | ---: | ---: | ---: | ---: | ---: | ---: |');
  for (const r of rows) {
    const cell = (w) => `${r[w].msPerStep.toFixed(2)} (${r[w].tokensPerSecond.toFixed(0)})`;
    log(`| ${r.mode} | ${r.context} | ${r.batchSize} | ${(r.weightBytes / 1e6).toFixed(0)} | ${(r.kvBytesRead / 1e6).toFixed(0)} | ${cell('cpu')} | ${cell('cuda-copy')} | ${cell('cuda-bound')} | ${(100 * r['cuda-bound'].rooflineFraction).toFixed(1)}% |`);
  }
  fs.mkdirSync(outDir, { recursive: true });
  const machine = { cpu: os.cpus()[0].model, cores: os.cpus().length, gpu: process.env.KCACHE_GPU_NAME || 'see machine.txt' };
  fs.writeFileSync(path.join(outDir, 'cuda-step-bench.json'), JSON.stringify({ machine, hbmBytesPerSecond: HBM_BYTES_PER_S, rows }, null, 2));
}

main().catch((error) => { log(error.stack || error); process.exit(1); });
