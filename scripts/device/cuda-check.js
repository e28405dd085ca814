#!/usr/bin/env node
'use strict';
/**
 * CUDA checks of the onnxruntime C API addon (libs/kcache/native/kcache_ort.cc), run by
 * scripts/device/run-cuda.sh on the lent GPU machine once the CUDA provider files are staged.
 *   node scripts/device/cuda-check.js <appRoot> <outDir>
 * 1. provider: a CUDA session (use_tf32=0) over a small gather graph gives the CPU provider's rows.
 * 2. in place: the graph's arena bound as device memory, as pinned mapped host memory and as registered
 *    host memory; the provider's Gather reads host memory in place (no copy at bind or run); the time per
 *    run of gathering 4096 rows of 64 fp32 from a 256 MiB arena, each way; ScatterND writes the bound
 *    device arena in place.
 * 3. replay: the engine's stories260K prefill and decode runs (full and kcache N=512), recorded on the
 *    CPU provider, replayed on CUDA through the addon; the largest logit difference (target 1e-4).
 * Writes <outDir>/cuda-check.json. Exits 1 if a check fails.
 */
const assert = require('node:assert/strict');
const fs = require('node:fs');
const path = require('node:path');

const [appRoot, outDir] = process.argv.slice(2);
const dist = path.resolve(appRoot, 'libs/kcache/dist');
const k = require(dist);
const testing = require(path.join(dist, 'testing'));
const { NativeOrt } = require(path.join(dist, 'ort-native/native-ort.js'));
const { recordGraphRuns, replayOnNative } = require(path.join(dist, 'testing/recorded-runs.js'));
const { onnx } = require(path.resolve(appRoot, 'node_modules/onnx-proto'));
const log = (...args) => process.stdout.write(args.join(' ') + '\n');
const results = {};
let failures = 0;

function check(name, fn) {
  const t0 = Date.now();
  try {
    const r = fn();
    return Promise.resolve(r).then(
      (value) => { log(`ok   ${name} (${Date.now() - t0} ms)`); return value; },
      (error) => { failures++; log(`FAIL ${name}: ${error && error.stack || error}`); },
    );
  } catch (error) {
    failures++;
    log(`FAIL ${name}: ${error && error.stack || error}`);
    return Promise.resolve();
  }
}

const vi = (name, elemType, dims) => ({ name, type: { tensorType: { elemType, shape: { dim: dims.map((d) => ({ dimValue: d })) } } } });
const F = onnx.TensorProto.DataType.FLOAT, I64 = onnx.TensorProto.DataType.INT64;

/** out = Gather(arena [rows, d], index [n]) ; arena_out = ScatterND(arena, at [1,1], update [1, d]) */
function gatherGraph(rows, d, n, withScatter) {
  const node = [{ opType: 'Gather', input: ['arena', 'index'], output: ['out'], attribute: [{ name: 'axis', type: 2, i: 0 }] }];
  const input = [vi('arena', F, [rows, d]), vi('index', I64, [n])];
  const output = [vi('out', F, [n, d])];
  if (withScatter) {
    node.push({ opType: 'ScatterND', input: ['arena', 'at', 'update'], output: ['arena_out'] });
    input.push(vi('at', I64, [1, 1]), vi('update', F, [1, d]));
    output.push(vi('arena_out', F, [rows, d]));
  }
  return onnx.ModelProto.encode({ irVersion: 8, opsetImport: [{ domain: '', version: 17 }], graph: { name: 'g', node, input, output } }).finish();
}

function timeRuns(session, runs) {
  session.run();
  const t0 = process.hrtime.bigint();
  for (let i = 0; i < runs; i++) session.run();
  return Number(process.hrtime.bigint() - t0) / 1e6 / runs;
}

async function main() {
  const native = NativeOrt.load();
  log('onnxruntime', native.version, native.libraryPath);
  results.onnxruntime = native.version;

  await check('provider: CUDA session gives the CPU rows', () => {
    const graph = gatherGraph(16, 8, 4, false);
    const arena = Float32Array.from({ length: 128 }, (_, i) => Math.sin(i));
    const index = BigInt64Array.of(3n, 15n, 0n, 3n);
    const outs = {};
    for (const provider of ['cpu', 'cuda']) {
      const s = native.session(graph, { provider });
      const out = new Float32Array(32);
      s.bind({ arena: native.hostTensor(arena, 'float32', [16, 8]), index: native.hostTensor(index, 'int64', [4]) }, { out: native.hostTensor(out, 'float32', [4, 8]) });
      s.run();
      outs[provider] = out;
      s.release();
    }
    assert.deepEqual([...outs.cuda], [...outs.cpu]);
  });

  await check('in place: device, pinned and registered arenas; ScatterND writes the device arena in place', () => {
    const d = 64, n = 4096, rows = (256 << 20) / (d * 4);
    const graph = gatherGraph(rows, d, n, false);
    const index = BigInt64Array.from({ length: n }, (_, i) => BigInt((i * 7919) % rows));
    const expected = new Float32Array(n * d);
    const fillRow = (view, r) => { for (let c = 0; c < d; c++) view[r * d + c] = r + c / 64; };
    index.forEach((r, i) => { for (let c = 0; c < d; c++) expected[i * d + c] = Number(r) + c / 64; });
    const bytes = rows * d * 4;
    const timing = {};
    const host = new Float32Array(rows * d);
    for (let r = 0; r < rows; r++) fillRow(host, r);
    const pinned = native.pinnedMemory(bytes);
    new Float32Array(pinned.buffer).set(host);
    const device = native.deviceMemory(bytes);
    device.copy('toDevice', 0, host);
    const registeredBuffer = new ArrayBuffer(bytes);
    new Float32Array(registeredBuffer).set(host);
    const registered = native.registeredMemory(registeredBuffer);
    for (const [name, memory] of [['device', device], ['pinned', pinned], ['registered', registered]]) {
      const s = native.session(graph, { provider: 'cuda' });
      const out = new Float32Array(n * d);
      const idx = index.slice();
      s.bind({ arena: native.tensor(memory, 'float32', [rows, d]), index: native.hostTensor(idx, 'int64', [n]) }, { out: native.hostTensor(out, 'float32', [n, d]) });
      s.run();
      assert.deepEqual(out, expected, `${name}: gathered rows`);
      timing[name] = timeRuns(s, 200);
      if (name !== 'device') {
        // In place: a row changed on the host after binding is what the GPU reads next run.
        const view = new Float32Array(name === 'pinned' ? pinned.buffer : registeredBuffer);
        const r = Number(idx[0]);
        view[r * d] = -1;
        s.run();
        assert.equal(out[0], -1, `${name}: the GPU read the host row as it is now`);
        view[r * d] = r;
      }
      s.release();
    }
    const gathered = n * d * 4;
    results.gather = Object.fromEntries(Object.entries(timing).map(([k2, ms]) => [k2, { msPerRun: ms, gbPerS: gathered / (ms / 1e3) / 1e9 }]));
    log('gather 4096 x 64 fp32 from 256 MiB:', JSON.stringify(results.gather));

    const scatter = native.session(gatherGraph(rows, d, 1, true), { provider: 'cuda' });
    const arenaTensor = native.tensor(device, 'float32', [rows, d]);
    const out = new Float32Array(d);
    const at = BigInt64Array.of(5n), update = Float32Array.from({ length: d }, (_, c) => 1000 + c);
    scatter.bind({ arena: arenaTensor, index: native.hostTensor(BigInt64Array.of(5n), 'int64', [1]), at: native.hostTensor(at, 'int64', [1, 1]), update: native.hostTensor(update, 'float32', [1, d]) },
      { out: native.hostTensor(out, 'float32', [1, d]), arena_out: arenaTensor });
    scatter.run();
    const back = new Float32Array(d * 8);
    device.copy('fromDevice', 0, back);
    assert.deepEqual([...back.subarray(5 * d, 6 * d)], [...update], 'row 5 written in place');
    assert.deepEqual([...back.subarray(4 * d, 5 * d)], [...host.subarray(4 * d, 5 * d)], 'row 4 untouched');
    results.scatterInPlaceMs = timeRuns(scatter, 100);
    log('ScatterND of one row into a bound 256 MiB device arena:', results.scatterInPlaceMs.toFixed(4), 'ms a run');
    scatter.release();
    [device, pinned, registered].forEach((m) => m.release());
  });

  const records = testing.loadGreedyOracle();
  for (const [name, attention] of [['full', k.FULL_ATTENTION], ['kcache N=512', { mode: 'kcache', topN: 512, denseLayers: 0, renormalize: false }]]) {
    await check(`replay ${name}: stories260K engine runs on CUDA within 1e-4 of the CPU`, async () => {
      const runs = await recordGraphRuns(async () => {
        const engine = await k.createEngine({ model: testing.stories260kDir(), defaultAttention: attention, numThreads: 4 });
        await Promise.all(records.slice(0, 4).map((r, i) => k.generate(engine, {
          requestId: `r${i}`, promptTokenIds: r.prompt_token_ids, maxNewTokens: 24, sampling: k.GREEDY,
          stopTokenIds: [], stopStrings: [], attention, priority: 0, logprobs: false,
        })));
        await engine.close();
      }, 40);
      let maxDiff = 0, values = 0;
      for (const run of runs) {
        const replayed = replayOnNative(native, run, { provider: 'cuda' });
        for (const [out, expected] of Object.entries(run.outputs)) {
          const a = replayed[out].data, b = expected.data;
          if (!(b instanceof Float32Array)) { assert.deepEqual(a, b, out); continue; }
          for (let i = 0; i < b.length; i++) maxDiff = Math.max(maxDiff, Math.abs(a[i] - b[i]));
          values += b.length;
        }
      }
      results[`replay ${name}`] = { runs: runs.length, values, maxAbsDiff: maxDiff };
      log(`replay ${name}: ${runs.length} runs, ${values} values, max |cuda - cpu| = ${maxDiff.toExponential(3)}`);
      assert.ok(maxDiff <= 1e-4, `max difference ${maxDiff}`);
    });
  }

  fs.mkdirSync(outDir, { recursive: true });
  fs.writeFileSync(path.join(outDir, 'cuda-check.json'), JSON.stringify(results, null, 2));
  log(failures === 0 ? 'cuda-check: all passed' : `cuda-check: ${failures} failed`);
  process.exit(failures === 0 ? 0 : 1);
}

main().catch((error) => { log(error.stack || error); process.exit(1); });
