import assert from 'node:assert/strict';
import { mkdtempSync, readFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { describe, it } from 'node:test';
import { onnx } from 'onnx-proto';
import * as ort from 'onnxruntime-node';
import { createEngine } from '../engine/create-engine';
import { generate } from '../engine/generate';
import { FULL_ATTENTION } from '../attention/attention-config';
import { GREEDY } from '../sampling/sampling-params';
import { loadGreedyOracle, stories260kDir } from '../testing/reference-data';
import { NativeOrt, NativeSession } from './native-ort';
import { NativeOrtError } from './native-ort-error';
import { recordGraphRuns, replayOnNative } from '../testing/recorded-runs';

const FLOAT = onnx.TensorProto.DataType.FLOAT;
const INT64 = onnx.TensorProto.DataType.INT64;

function valueInfo(name: string, elemType: number, dims: readonly number[]): onnx.IValueInfoProto {
  return { name, type: { tensorType: { elemType, shape: { dim: dims.map((d) => ({ dimValue: d })) } } } };
}

/**
 * rows = Gather(arena [8, 4], index [2]) · w [4, 3]; arena_out = ScatterND(arena, at [1, 1], update [1, 4]).
 * The arena is the shape of a KV arena: read by a gather, one row written per step.
 */
function gatherMatMulScatterGraph(): Uint8Array {
  return onnx.ModelProto.encode({
    irVersion: 8,
    opsetImport: [{ domain: '', version: 17 }],
    graph: {
      name: 'arena',
      node: [
        { opType: 'Gather', input: ['arena', 'index'], output: ['gathered'], attribute: [{ name: 'axis', type: onnx.AttributeProto.AttributeType.INT, i: 0 }] },
        { opType: 'MatMul', input: ['gathered', 'w'], output: ['rows'] },
        { opType: 'ScatterND', input: ['arena', 'at', 'update'], output: ['arena_out'] },
      ],
      input: [valueInfo('arena', FLOAT, [8, 4]), valueInfo('index', INT64, [2]), valueInfo('w', FLOAT, [4, 3]), valueInfo('at', INT64, [1, 1]), valueInfo('update', FLOAT, [1, 4])],
      output: [valueInfo('rows', FLOAT, [2, 3]), valueInfo('arena_out', FLOAT, [8, 4])],
    },
  }).finish();
}

const arenaValues = () => Float32Array.from({ length: 32 }, (_, i) => i / 4);
const w = Float32Array.from({ length: 12 }, (_, i) => (i % 5) - 2);

function expectedRows(arena: Float32Array, index: readonly number[]): number[] {
  const out: number[] = [];
  for (const r of index) for (let c = 0; c < 3; c++) {
    let sum = 0;
    for (let k = 0; k < 4; k++) sum += arena[r * 4 + k] * w[k * 3 + c];
    out.push(sum);
  }
  return out;
}

/**
 * Binds gatherMatMulScatterGraph's feeds over arrays kept here: the arena (written in place: bound as an input and as
 * arena_out), the rows to gather (1 and 6), the row ScatterND writes (3) and its values; rows is the output.
 */
function bindGatherMatMulScatter(native: NativeOrt, session: NativeSession): { arena: Float32Array; index: BigInt64Array; at: BigInt64Array; rows: Float32Array } {
  const arena = arenaValues();
  const arenaTensor = native.tensor(native.hostMemory(arena.buffer), 'float32', [8, 4]);
  const index = BigInt64Array.of(1n, 6n);
  const at = BigInt64Array.of(3n);
  const rows = new Float32Array(6);
  session.bind(
    { arena: arenaTensor, index: native.hostTensor(index, 'int64', [2]), w: native.hostTensor(w, 'float32', [4, 3]), at: native.hostTensor(at, 'int64', [1, 1]), update: native.hostTensor(Float32Array.of(9, 8, 7, 6), 'float32', [1, 4]) },
    { rows: native.hostTensor(rows, 'float32', [2, 3]), arena_out: arenaTensor },
  );
  return { arena, index, at, rows };
}

describe('onnxruntime C API addon (CPU provider)', () => {
  const native = NativeOrt.load();

  it('loads the onnxruntime that onnxruntime-node ships, so the process has one', () => {
    assert.equal(native.version, ort.env.versions.common);
  });

  it('runs over bound buffers in place: outputs land in the engine\'s arrays, a changed input is read on the next run, and ScatterND writes the bound arena itself', () => {
    const session = native.session(gatherMatMulScatterGraph(), { provider: 'cpu', intraOpNumThreads: 1 });
    assert.deepEqual([...session.inputNames].sort(), ['arena', 'at', 'index', 'update', 'w']);
    const { arena, index, at, rows } = bindGatherMatMulScatter(native, session);
    session.run();
    assert.deepEqual([...rows], expectedRows(arenaValues(), [1, 6]));
    assert.deepEqual([...arena.subarray(12, 16)], [9, 8, 7, 6], 'row 3 of the bound arena was written in place');
    assert.deepEqual([...arena.subarray(0, 12)], [...arenaValues().subarray(0, 12)], 'other rows are untouched');

    index[1] = 3n; // no rebinding: the bound buffer is read as it is now
    at[0] = 0n;
    session.run();
    assert.deepEqual([...rows.subarray(3)], expectedRows(arena, [3]), 'the row written by the previous run is read back');
    assert.deepEqual([...arena.subarray(0, 4)], [9, 8, 7, 6]);
    session.release();
  });

  it('run(graphId) takes a CUDA graph id (the CPU provider runs as usual) and refuses a negative one, naming it', () => {
    const session = native.session(gatherMatMulScatterGraph(), { provider: 'cpu', intraOpNumThreads: 1 });
    const { rows } = bindGatherMatMulScatter(native, session);
    session.run(2);
    assert.deepEqual([...rows], expectedRows(arenaValues(), [1, 6]));
    session.run(2);
    session.run(0);
    assert.throws(() => session.run(-1), /graphId must not be negative, got -1/);
    session.release();
  });

  it('gives the same results as onnxruntime-node for the same graph', async () => {
    const graph = gatherMatMulScatterGraph();
    const feeds = {
      arena: new ort.Tensor('float32', arenaValues(), [8, 4]),
      index: new ort.Tensor('int64', BigInt64Array.of(7n, 0n), [2]),
      w: new ort.Tensor('float32', w, [4, 3]),
      at: new ort.Tensor('int64', BigInt64Array.of(5n), [1, 1]),
      update: new ort.Tensor('float32', Float32Array.of(1, 2, 3, 4), [1, 4]),
    };
    const reference = await (await ort.InferenceSession.create(graph)).run(feeds);
    const [recorded] = [{ graph, feeds, outputs: reference }];
    const replayed = replayOnNative(native, recorded, { provider: 'cpu' });
    assert.deepEqual([...(replayed.rows.data as Float32Array)], [...(reference.rows.data as Float32Array)]);
    assert.deepEqual([...(replayed.arena_out.data as Float32Array)], [...(reference.arena_out.data as Float32Array)]);
  });

  it('replays the engine\'s own stories260K prefill and first decode runs bit for bit', async () => {
    const record = loadGreedyOracle()[0];
    const runs = await recordGraphRuns(async () => {
      const engine = await createEngine({ model: stories260kDir(), defaultAttention: FULL_ATTENTION, numThreads: 1, deviceCapacityBytes: 8 << 20, hostCapacityBytes: 8 << 20 });
      await generate(engine, {
        requestId: 'replay', promptTokenIds: record.prompt_token_ids, maxNewTokens: 4, sampling: GREEDY,
        stopTokenIds: [], stopStrings: [], attention: FULL_ATTENTION, priority: 0, logprobs: false,
      });
      await engine.close();
    }, 3);
    assert.ok(runs.length === 3, `recorded ${runs.length} runs`);
    for (const run of runs) {
      const replayed = replayOnNative(native, run, { provider: 'cpu', intraOpNumThreads: 1 });
      for (const [name, expected] of Object.entries(run.outputs)) {
        assert.deepEqual(replayed[name].data, expected.data, `output ${name} differs`);
      }
    }
  });

  it("writes onnxruntime's per-node profile when asked (profileFilePrefix, endProfiling)", () => {
    const dir = mkdtempSync(join(tmpdir(), 'kcache-native-profile-'));
    try {
      const session = native.session(gatherMatMulScatterGraph(), { provider: 'cpu', intraOpNumThreads: 1, profileFilePrefix: join(dir, 'arena') });
      const arena = arenaValues();
      const arenaTensor = native.tensor(native.hostMemory(arena.buffer), 'float32', [8, 4]);
      session.bind(
        { arena: arenaTensor, index: native.hostTensor(BigInt64Array.of(1n, 6n), 'int64', [2]), w: native.hostTensor(w, 'float32', [4, 3]), at: native.hostTensor(BigInt64Array.of(3n), 'int64', [1, 1]), update: native.hostTensor(new Float32Array(4), 'float32', [1, 4]) },
        { rows: native.hostTensor(new Float32Array(6), 'float32', [2, 3]), arena_out: arenaTensor },
      );
      session.run();
      const file = session.endProfiling();
      assert.ok(file.startsWith(join(dir, 'arena')), file);
      const ops = (JSON.parse(readFileSync(file, 'utf8')) as Array<{ cat: string; args?: { op_name?: string } }>).filter((e) => e.cat === 'Node').map((e) => e.args?.op_name);
      assert.ok(['Gather', 'MatMul', 'ScatterND'].every((op) => ops.includes(op)), ops.join(', '));
      session.release();
    } finally {
      rmSync(dir, { recursive: true, force: true });
    }
  });

  it('names the graph input a binding gets wrong, and refuses a tensor outside its memory', () => {
    const session = native.session(gatherMatMulScatterGraph(), { provider: 'cpu' });
    const rows = new Float32Array(6);
    assert.throws(() => session.bind({ arenas: native.hostTensor(rows, 'float32', [2, 3]) }), /no input named 'arenas'/);
    assert.throws(() => native.hostTensor(rows, 'float32', [2, 4]), (e: unknown) => e instanceof NativeOrtError && /does not fit the memory's 24 bytes/.test(e.message));
    session.release();
    assert.throws(() => session.run(), /session was released/);
  });

  it('says what to install when the CUDA provider or runtime is missing (or, where they are installed, starts it)', () => {
    let session;
    try {
      session = native.session(gatherMatMulScatterGraph(), { provider: 'cuda' });
    } catch (error) {
      assert.ok(error instanceof NativeOrtError, String(error));
      assert.match(error.message, /--onnxruntime-node-install=cuda12|no usable GPU/);
      return;
    }
    session.release();
  });
});
