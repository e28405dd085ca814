/**
 * `npm run bench:host-tier`: what the node's shared host tier costs against the in-process one.
 * 1. V gather: onnxruntime Gather of random rows [n, headDim] from a 1 GiB arena that is either a
 *    Float32Array of this process or a mapping of the tier's file (rows/s, GB/s).
 * 2. Decode steps of the 110M synthetic model with a filled cache at context 2048, KCache N=64,
 *    host V in each tier, measured in alternating rounds (tokens/s, V rows gathered/s).
 * 3. A prefix hit: time to first token of a request whose 512-token prefix is in the tier, with
 *    prefixKeys 'spill' (K copied back) and 'recompute', against no sharing.
 *    A second in-process setup ('in-process (control)') measures the noise between identical setups.
 * Prints a table and writes bench/results/host-tier.json. Flags: --quick (smaller, for smoke
 * tests), --threads N (onnxruntime threads; default all cores), --dir PATH (tier directory, default
 * /dev/shm), --only gather|decode|prefix.
 */
import * as ort from 'onnxruntime-node';
import { mkdtempSync, rmSync } from 'node:fs';
import { KCacheAttention } from '@kcache-serve/kcache/dist/attention/attention-config';
import { formatTable, saveBenchResults } from '../bench/bench-results';
import { createEngine } from '@kcache-serve/kcache/dist/engine/create-engine';
import { generate } from '@kcache-serve/kcache/dist/engine/generate';
import { KvCacheManager } from '@kcache-serve/kcache/dist/memory/kv-cache-manager';
import { KvSequence } from '@kcache-serve/kcache/dist/memory/kv-cache-types';
import { emptySequenceBlocks } from '@kcache-serve/kcache/dist/memory/sequence-blocks';
import { headDimOf, kvDimOf } from '@kcache-serve/kcache/dist/model/model-config';
import { loadModel, LoadedModel } from '@kcache-serve/kcache/dist/formats/model-source';
import { Xoshiro128Random } from '@kcache-serve/kcache/dist/model/xoshiro128-random';
import { GraphBuilder } from '@kcache-serve/kcache/dist/runtime/graph-builder';
import { graphVariantOf } from '@kcache-serve/kcache/dist/runtime/graph-variant';
import { KvArenas } from '@kcache-serve/kcache/dist/runtime/kv-arenas';
import { DecodeItem, ModelRunner } from '@kcache-serve/kcache/dist/runtime/model-runner';
import { GREEDY } from '@kcache-serve/kcache/dist/sampling/sampling-params';
import { resolveSharedHostTierOptions } from '@kcache-serve/kcache/dist/host-tier/host-tier-options';
import { loadNativeShm } from '@kcache-serve/kcache/dist/host-tier/native-shm';
import { SharedHostTier } from '@kcache-serve/kcache/dist/host-tier/shared-host-tier';
import { SharedHostVBlocks } from '@kcache-serve/kcache/dist/host-tier/shared-host-v-blocks';

const KCACHE_64: KCacheAttention = { mode: 'kcache', topN: 64, denseLayers: 0, renormalize: false };
const GIB = 2 ** 30;

interface Row {
  readonly benchmark: string;
  readonly tier: string;
  readonly setting: string;
  readonly value: number;
  readonly unit: string;
  readonly extra: string;
}

function median(values: readonly number[]): number {
  const sorted = [...values].sort((a, b) => a - b);
  return sorted[Math.floor(sorted.length / 2)];
}

/** 1. Gather throughput of onnxruntime reading rows from either arena. */
async function benchGather(directory: string, numThreads: number, quick: boolean): Promise<Row[]> {
  const headDim = 64;
  const arenaBytes = quick ? GIB / 8 : GIB;
  const numRows = arenaBytes / (headDim * 4);
  const g = new GraphBuilder('gather');
  const arena = g.input('arena', 'float32', ['rows', headDim]);
  const index = g.input('index', 'int64', ['n']);
  g.output(g.op('Gather', [arena, index], { axis: 0 }), 'out', 'float32', ['n', headDim]);
  const session = await ort.InferenceSession.create(g.toBytes(), { intraOpNumThreads: numThreads, interOpNumThreads: 1, graphOptimizationLevel: 'all' });

  const native = loadNativeShm();
  const { openSync, closeSync, unlinkSync } = await import('node:fs');
  const path = `${directory}/kcache-bench-gather.${process.pid}`;
  const fd = openSync(path, 'w+');
  native.fallocate(fd, arenaBytes);
  const shared = new Float32Array(native.map(fd, 0, arenaBytes, false));
  const heap = new Float32Array(arenaBytes / 4);
  const random = new Xoshiro128Random(3);
  for (let i = 0; i < heap.length; i += 1024) heap[i] = shared[i] = random.nextFloat(); // commit every page
  const arenas = { 'in-process': heap, shared };
  const tensors = Object.fromEntries(Object.entries(arenas).map(([k, a]) => [k, new ort.Tensor('float32', a, [numRows, headDim])]));

  const rows: Row[] = [];
  for (const n of [4096, 65536]) {
    const indices = new BigInt64Array(n);
    for (let i = 0; i < n; i++) indices[i] = BigInt(Math.floor(random.nextFloat() * numRows));
    const indexTensor = new ort.Tensor('int64', indices, [n]);
    const times: Record<string, number[]> = { 'in-process': [], shared: [] };
    const runsPerRound = quick ? 5 : 20;
    for (let round = 0; round < (quick ? 3 : 7); round++) {
      for (const tier of Object.keys(arenas)) {
        await session.run({ arena: tensors[tier], index: indexTensor });
        const start = performance.now();
        for (let r = 0; r < runsPerRound; r++) await session.run({ arena: tensors[tier], index: indexTensor });
        times[tier].push((performance.now() - start) / runsPerRound);
      }
    }
    for (const tier of Object.keys(arenas)) {
      const ms = median(times[tier]);
      const rowsPerSecond = (n / ms) * 1000;
      rows.push({ benchmark: 'V gather', tier, setting: `${n} random rows of ${headDim} fp32 from ${arenaBytes / GIB} GiB`, value: rowsPerSecond, unit: 'rows/s', extra: `${((rowsPerSecond * headDim * 4) / 1e9).toFixed(2)} GB/s, ${ms.toFixed(3)} ms/run` });
    }
  }
  await session.release();
  closeSync(fd);
  unlinkSync(path);
  return rows;
}

/** 2. Decode steps of one model with a filled cache, host V in this process or in the shared tier. */
async function benchDecodeTiers(model: LoadedModel, directory: string, numThreads: number, quick: boolean): Promise<Row[]> {
  const config = model.weights.config;
  const blockSize = 16;
  const context = quick ? 512 : 2048;
  const batchSizes = quick ? [1] : [1, 8];
  const kvBytesPerToken = config.numLayers * kvDimOf(config) * 4;
  const rows: Row[] = [];
  for (const batchSize of batchSizes) {
    const numTokens = batchSize * (context + blockSize);
    const hostBytes = numTokens * kvBytesPerToken;
    const tier = SharedHostTier.open(
      resolveSharedHostTierOptions({ kind: 'shared', directory, name: `bench-decode-${process.pid}`, capacityBytes: hostBytes + 2 * blockSize * kvBytesPerToken, prefixKeys: 'recompute' }, 0),
      { blockSize, numLayers: config.numLayers, numKvHeads: config.numKvHeads, headDim: headDimOf(config) },
    );
    const sharedBlocks = new SharedHostVBlocks(tier, { blockSize, numLayers: config.numLayers, prefixSharing: false, modelFingerprint: '' });
    const setups = (['in-process', 'shared', 'in-process (control)'] as const).map((name) => {
      const kv = new KvCacheManager({
        model: config,
        blockSize,
        deviceCapacityBytes: numTokens * kvBytesPerToken + 1,
        hostCapacityBytes: hostBytes + 1,
        ...(name === 'shared' ? { externalHostTier: sharedBlocks } : {}),
      });
      const arenas = name === 'shared' ? new KvArenas(config, blockSize, kv.arenaCapacity(), tier.v) : undefined;
      const runner = new ModelRunner(model.weights, { blockSize, arenaCapacity: kv.arenaCapacity(), numThreads, ...(arenas ? { arenas } : {}) });
      const sequences: KvSequence[] = [];
      for (let b = 0; b < batchSize; b++) {
        const seq = { blocks: emptySequenceBlocks(), attention: KCACHE_64 };
        kv.allocate(seq, context + 1);
        sequences.push(seq);
      }
      fillUsedBlocks(runner.arenas, sequences, new Xoshiro128Random(7));
      const items: DecodeItem[] = sequences.map((s, b) => ({ tokenId: 3 + b, position: context, blocks: s.blocks }));
      return { name, kv, runner, items, sequences };
    });
    const variant = graphVariantOf(KCACHE_64, config.numLayers);
    for (const s of setups) await s.runner.decode(s.items, variant, KCACHE_64.topN); // compile + warm-up
    const msPerStep: Record<string, number[]> = Object.fromEntries(setups.map((s) => [s.name, []]));
    const stepsPerRound = quick ? 2 : batchSize === 1 ? 10 : 4;
    for (let round = 0; round < (quick ? 2 : 10); round++) {
      // Each round runs the setups in a rotated order, so none is always first or last.
      for (let j = 0; j < setups.length; j++) {
        const s = setups[(round + j) % setups.length];
        const start = performance.now();
        for (let i = 0; i < stepsPerRound; i++) await s.runner.decode(s.items, variant, KCACHE_64.topN);
        msPerStep[s.name].push((performance.now() - start) / stepsPerRound);
      }
    }
    const rowsPerStep = batchSize * config.numHeads * Math.min(KCACHE_64.topN, context + 1) * config.numLayers;
    for (const s of setups) {
      const ms = median(msPerStep[s.name]);
      const rounds = msPerStep[s.name].map((m) => m.toFixed(1)).join(' ');
      rows.push({ benchmark: 'decode', tier: s.name, setting: `llama-110m ctx ${context} batch ${batchSize} N=64`, value: (batchSize * 1000) / ms, unit: 'tokens/s', extra: `${ms.toFixed(1)} ms/step (median; rounds: ${rounds}), ${((rowsPerStep * 1000) / ms / 1e6).toFixed(2)} M V rows/s` });
      for (const seq of s.sequences) s.kv.free(seq);
      await s.runner.release();
    }
    tier.close();
    rmSync(tier.path, { force: true });
  }
  return rows;
}

/** Random values in the blocks the sequences hold, in every arena (commits their pages like real K/V). */
function fillUsedBlocks(arenas: KvArenas, sequences: readonly KvSequence[], random: Xoshiro128Random): void {
  const floats = arenas.rowsPerBlock * arenas.headDim;
  const fill = (arena: Float32Array, id: number) => {
    for (let i = id * floats; i < (id + 1) * floats; i++) arena[i] = random.nextFloat() - 0.5;
  };
  for (const seq of sequences) {
    for (let l = 0; l < arenas.k.length; l++) {
      for (const id of seq.blocks.kBlockIds) fill(arenas.k[l], id);
      for (const id of seq.blocks.hostVBlockIds) fill(arenas.hostV[l], id);
    }
  }
}

/** 3. Time to first token of a request whose prefix another request left in the tier. */
async function benchPrefixHit(model: LoadedModel, directory: string, numThreads: number, quick: boolean): Promise<Row[]> {
  const prefixLength = quick ? 128 : 512;
  const random = new Xoshiro128Random(11);
  const prefix = [1, ...Array.from({ length: prefixLength - 1 }, () => 3 + Math.floor(random.nextFloat() * 1000))];
  const request = (id: string, suffix: number) => ({
    requestId: id,
    promptTokenIds: [...prefix, ...Array.from({ length: 16 }, (_, i) => 2000 + suffix * 16 + i)],
    maxNewTokens: 1,
    sampling: GREEDY,
    stopTokenIds: [],
    stopStrings: [],
    attention: KCACHE_64,
    priority: 0,
    logprobs: false,
  });
  const rows: Row[] = [];
  const cases = [
    { tier: 'in-process', label: 'no sharing', hostTier: undefined },
    { tier: 'shared', label: "prefixKeys 'recompute'", hostTier: { kind: 'shared' as const, directory, name: `bench-prefix-r-${process.pid}`, prefixKeys: 'recompute' as const } },
    { tier: 'shared', label: "prefixKeys 'spill'", hostTier: { kind: 'shared' as const, directory, name: `bench-prefix-s-${process.pid}`, prefixKeys: 'spill' as const } },
  ];
  for (const c of cases) {
    const engine = await createEngine(
      { model: model.name, numThreads, defaultAttention: KCACHE_64, hostCapacityBytes: 256 << 20, deviceCapacityBytes: 256 << 20, maxNumBatchedTokens: 2048, ...(c.hostTier ? { hostTier: c.hostTier } : {}) },
      model,
    );
    await generate(engine, request('owner', 0)); // computes the prefix (and publishes it)
    const times: number[] = [];
    for (let i = 1; i <= (quick ? 2 : 5); i++) {
      const start = performance.now();
      await generate(engine, request(`hit-${i}`, i));
      times.push(performance.now() - start);
    }
    const hits = engine.stats().hostTier?.prefixHits ?? 0;
    await engine.close();
    if (c.hostTier) rmSync(`${directory}/kcache-${c.hostTier.name}.tier`, { force: true });
    rows.push({ benchmark: 'prefix hit', tier: c.tier, setting: `${c.label}: ${prefixLength}-token cached prefix + 16 new`, value: median(times), unit: 'ms to first token', extra: `${hits} prefix blocks hit` });
  }
  return rows;
}

async function main(): Promise<void> {
  const args = process.argv.slice(2);
  const quick = args.includes('--quick');
  const flag = (name: string) => (args.indexOf(name) >= 0 ? args[args.indexOf(name) + 1] : undefined);
  const numThreads = Number(flag('--threads') ?? 0);
  const parent = flag('--dir') ?? '/dev/shm';
  const directory = mkdtempSync(`${parent}/kcache-bench-`);
  const log = (text: string) => process.stderr.write(`${text}\n`);
  const only = flag('--only');
  const rows: Row[] = [];
  try {
    if (!only || only === 'gather') {
      log('V gather (onnxruntime Gather) ...');
      rows.push(...(await benchGather(directory, numThreads, quick)));
    }
    if (!only || only === 'decode' || only === 'prefix') {
      log('loading synthetic:llama-110m ...');
      const model = loadModel('synthetic:llama-110m');
      if (!only || only === 'decode') {
        log('decode steps ...');
        rows.push(...(await benchDecodeTiers(model, directory, numThreads, quick)));
      }
      if (!only || only === 'prefix') {
        log('prefix hits ...');
        rows.push(...(await benchPrefixHit(model, directory, numThreads, quick)));
      }
    }
  } finally {
    rmSync(directory, { recursive: true, force: true });
  }
  const table = formatTable(
    ['benchmark', 'tier', 'setting', 'value', 'unit', 'extra'],
    rows.map((r) => [r.benchmark, r.tier, r.setting, r.value >= 1000 ? r.value.toExponential(3) : r.value.toFixed(1), r.unit, r.extra]),
  );
  process.stdout.write(`${table}\n`);
  const costs = rows
    .filter((r) => r.benchmark === 'decode' && r.tier === 'shared')
    .map((shared) => {
      const find = (tier: string) => rows.find((r) => r.benchmark === 'decode' && r.tier === tier && r.setting === shared.setting)!;
      const local = find('in-process');
      const control = find('in-process (control)');
      return {
        setting: shared.setting,
        sharedTierCostPercent: (100 * (local.value - shared.value)) / local.value,
        controlDifferencePercent: (100 * (local.value - control.value)) / local.value,
      };
    });
  for (const c of costs) {
    process.stdout.write(
      `shared tier cost, ${c.setting}: ${c.sharedTierCostPercent.toFixed(1)}% of decode tokens/s (target <= 5%; ` +
        `two identical in-process setups differ by ${c.controlDifferencePercent.toFixed(1)}%)\n`,
    );
  }
 const path = saveBenchResults(quick || only ? `host-tier.${quick ? 'quick' : only}` : 'host-tier', { quick, numThreads, tierDirectory: parent, topN: 64, blockSize: 16, costs }, rows);
  process.stdout.write(`wrote ${path}\n`);
}

main().catch((error) => {
  process.stderr.write(`${error instanceof Error ? (error.stack ?? error.message) : String(error)}\n`);
  process.exit(1);
});
