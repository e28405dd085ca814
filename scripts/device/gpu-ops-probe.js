#!/usr/bin/env node
'use strict';
/**
 * Which ONNX ops onnxruntime's WebGPU provider runs itself, and what keeping an arena on the GPU
 * costs, on the lent GPU machine (run by scripts/device/run-gpu.sh, stage `ops`).
 *   node scripts/device/gpu-ops-probe.js <appRoot> [ep]
 * 1. For each op the engine's GPU-resident device tier could use, a one-node session created with
 *    CPU fallback disabled: it starts only if the provider has a kernel for the node.
 * 2. ScatterND of a few rows into a 1 GiB arena kept on the GPU (gpu-buffer output fed back as
 *    the next run's input): ms per run, and the rows read back through an Identity session.
 * 3. A host-side gather: TopK on the GPU, GatherND of rows from a 1 GiB CPU arena (the op on the
 *    CPU provider if the GPU has none): ms per run, so whether the arena crosses every run.
 */
const assert = require('node:assert/strict');
const path = require('node:path');

const [appRoot, epArg] = process.argv.slice(2);
const ep = epArg || 'webgpu';
const ort = require(path.resolve(appRoot, 'node_modules/onnxruntime-node'));
const { onnx } = require(path.resolve(appRoot, 'node_modules/onnx-proto'));
const log = (...args) => process.stdout.write(args.join(' ') + '\n');

const FLOAT = 1;
const INT64 = 7;
const info = (name, elemType, dims) => ({ name, type: { tensorType: { elemType, shape: { dim: dims.map((d) => (typeof d === 'number' ? { dimValue: d } : { dimParam: d })) } } } });
const model = (nodes, inputs, outputs, initializers = []) =>
  onnx.ModelProto.encode({ irVersion: 8, opsetImport: [{ domain: '', version: 17 }], graph: { name: 'probe', node: nodes, input: inputs, output: outputs, initializer: initializers } }).finish();
const int64Const = (name, values) => ({ name, dataType: INT64, dims: [values.length], int64Data: values });

const noFallback = { executionProviders: [ep], extra: { session: { disable_cpu_ep_fallback: '1' } }, logSeverityLevel: 3 };

async function kernels() {
  const f = (n, d) => info(n, FLOAT, d);
  const i = (n, d) => info(n, INT64, d);
  const cases = {
    ScatterND: model([{ opType: 'ScatterND', input: ['data', 'idx', 'upd'], output: ['y'] }], [f('data', [8, 4]), i('idx', [2, 1]), f('upd', [2, 4])], [f('y', [8, 4])]),
    ScatterElements: model([{ opType: 'ScatterElements', input: ['data', 'idx', 'upd'], output: ['y'], attribute: [{ name: 'axis', type: 2, i: 0 }] }], [f('data', [8, 4]), i('idx', [2, 4]), f('upd', [2, 4])], [f('y', [8, 4])]),
    GatherND: model([{ opType: 'GatherND', input: ['data', 'idx'], output: ['y'] }], [f('data', [8, 4]), i('idx', [2, 1])], [f('y', [2, 4])]),
    Gather: model([{ opType: 'Gather', input: ['data', 'idx'], output: ['y'] }], [f('data', [8, 4]), i('idx', [2])], [f('y', [2, 4])]),
    GatherElements: model([{ opType: 'GatherElements', input: ['data', 'idx'], output: ['y'], attribute: [{ name: 'axis', type: 2, i: 0 }] }], [f('data', [8, 4]), i('idx', [2, 4])], [f('y', [2, 4])]),
    TopK: model([{ opType: 'TopK', input: ['x', 'k'], output: ['v', 'ix'] }], [f('x', [2, 8]), i('k', [1])], [f('v', [2, 'n']), i('ix', [2, 'n'])]),
    'Cast float->int64': model([{ opType: 'Cast', input: ['x'], output: ['y'], attribute: [{ name: 'to', type: 2, i: INT64 }] }], [f('x', [4])], [i('y', [4])]),
    'Add int64': model([{ opType: 'Add', input: ['a', 'b'], output: ['y'] }], [i('a', [4]), i('b', [4])], [i('y', [4])]),
  };
  for (const [name, bytes] of Object.entries(cases)) {
    try {
      const s = await ort.InferenceSession.create(bytes, noFallback);
      await s.release();
      log(`kernel ${name}: on ${ep}`);
    } catch (error) {
      log(`kernel ${name}: NOT on ${ep} (${String(error.message || error).split('\n')[0].slice(0, 200)})`);
    }
  }
}

/** Reads a gpu-buffer tensor through an Identity session whose output is on the CPU. */
async function readBack(tensor, dims) {
  const s = await ort.InferenceSession.create(model([{ opType: 'Identity', input: ['x'], output: ['y'] }], [info('x', FLOAT, dims)], [info('y', FLOAT, dims)]), { executionProviders: [ep], preferredOutputLocation: 'cpu' });
  const out = await s.run({ x: tensor });
  return out.y.data;
}

async function residentScatter() {
  const width = 1024;
  const rows = Number(process.env.PROBE_ROWS || 256 * 1024); // 1 GiB of fp32 by default
  const upload = await ort.InferenceSession.create(model([{ opType: 'Identity', input: ['x'], output: ['y'] }], [info('x', FLOAT, [rows, width])], [info('y', FLOAT, [rows, width])]), { executionProviders: [ep], preferredOutputLocation: 'gpu-buffer' });
  const host = new Float32Array(rows * width);
  let t0 = performance.now();
  let arena = (await upload.run({ x: new ort.Tensor('float32', host, [rows, width]) })).y;
  log(`resident: upload of 1 GiB ${(performance.now() - t0).toFixed(1)} ms, location ${arena.location}`);
  const scatter = await ort.InferenceSession.create(
    model([{ opType: 'ScatterND', input: ['arena', 'idx', 'upd'], output: ['next'] }], [info('arena', FLOAT, [rows, width]), info('idx', INT64, ['m', 1]), info('upd', FLOAT, ['m', width])], [info('next', FLOAT, [rows, width])]),
    { executionProviders: [ep], preferredOutputLocation: 'gpu-buffer', logSeverityLevel: 3 },
  );
  const m = 64;
  const times = [];
  for (let step = 0; step < 12; step++) {
    const idx = new BigInt64Array(m);
    const upd = new Float32Array(m * width);
    for (let j = 0; j < m; j++) {
      idx[j] = BigInt(step * 1000 + j * 7);
      upd.fill(step * 100 + j, j * width, (j + 1) * width);
    }
    t0 = performance.now();
    const next = (await scatter.run({ arena, idx: new ort.Tensor('int64', idx, [m, 1]), upd: new ort.Tensor('float32', upd, [m, width]) })).next;
    times.push(performance.now() - t0);
    arena.dispose();
    arena = next;
  }
  log(`resident: ScatterND of ${m} rows into a 1 GiB gpu-buffer arena: ms per run ${times.map((t) => t.toFixed(2)).join(' ')}`);
  t0 = performance.now();
  const back = await readBack(arena, [rows, width]);
  log(`resident: read back 1 GiB ${(performance.now() - t0).toFixed(1)} ms`);
  for (let step = 0; step < 12; step++) for (let j = 0; j < m; j += 21) assert.equal(back[(step * 1000 + j * 7) * width + 5], step * 100 + j);
  assert.equal(back[3 * width], 0);
  log('resident: every scattered row reads back as written');
}

async function hostGather() {
  const width = 64;
  const rows = 4 * 1024 * 1024; // 1 GiB of fp32 on the host
  const n = 2048;
  const k = 64;
  const session = await ort.InferenceSession.create(
    model(
      [
        { opType: 'TopK', input: ['scores', 'k'], output: ['vals', 'ix'] },
        { opType: 'Unsqueeze', input: ['ix', 'axes'], output: ['ix3'] },
        { opType: 'GatherND', input: ['arena', 'ix3'], output: ['rowsOut'] },
        { opType: 'ReduceSum', input: ['rowsOut', 'rowAxis'], output: ['sum'] },
      ],
      [info('scores', FLOAT, [8, n]), info('arena', FLOAT, [rows, width])],
      [info('sum', FLOAT, [8, 1, width]), info('vals', FLOAT, [8, k])],
      [int64Const('k', [k]), int64Const('axes', [2]), int64Const('rowAxis', [1])],
    ),
    { executionProviders: [ep], logSeverityLevel: 3 },
  );
  const arenaHost = new Float32Array(rows * width);
  for (let r = 0; r < n; r++) arenaHost[r * width] = r;
  const scores = new Float32Array(8 * n);
  for (let i = 0; i < scores.length; i++) scores[i] = Math.sin(i * 12.9898) * 43758.5453 % 1;
  const times = [];
  let out;
  for (let step = 0; step < 8; step++) {
    const t0 = performance.now();
    out = await session.run({ scores: new ort.Tensor('float32', scores, [8, n]), arena: new ort.Tensor('float32', arenaHost, [rows, width]) });
    times.push(performance.now() - t0);
  }
  log(`host gather: TopK(${k} of ${n}) + GatherND from a 1 GiB CPU arena: ms per run ${times.map((t) => t.toFixed(2)).join(' ')} (an upload of the arena would take several hundred ms)`);
  // Row r holds r in column 0, so the sum of column 0 over the TopK rows is the sum of their indices.
  for (let b = 0; b < 8; b++) {
    const idx = [...scores.subarray(b * n, (b + 1) * n)].map((v, i) => [v, i]).sort((x, y) => y[0] - x[0] || x[1] - y[1]).slice(0, k);
    const want = idx.reduce((s, [, i]) => s + i, 0);
    assert.ok(Math.abs(out.sum.data[b * width] - want) < 1e-3 * want, `row ${b}: ${out.sum.data[b * width]} vs ${want}`);
  }
  log('host gather: the gathered rows are the TopK rows');
}

(async () => {
  let failed = false;
  for (const [name, fn] of [['kernels', kernels], ['residentScatter', residentScatter], ['hostGather', hostGather]]) {
    try {
      await fn();
    } catch (error) {
      failed = true;
      log(`${name} failed: ${error && error.stack ? error.stack : String(error)}`);
    }
  }
  process.exit(failed ? 1 : 0);
})();
