import { ModelConfig } from '../../model/model-config';
import { ModelWeights } from '../../model/model-weights';
import { SequenceBlocks } from '../../memory/sequence-blocks';
import { NativeOrt, NativeSession, NativeTensor } from '../../ort-native/native-ort';
import { buildDecodeGraph, DecodeArenaGroups } from '../decode-graph';
import { ExecutionProviderError } from '../execution-provider';
import { IO } from '../graph-io';
import { GraphVariant, hasDenseLayer, hasTopNLayer } from '../graph-variant';
import { KvArenas, placeInGroups } from '../kv-arenas';
import { GraphWeights } from '../layer-weights-layout';
import type { DecodeItem, PrefillItem } from '../model-runner';
import { buildPrefillGraph } from '../prefill-graph';
import { fillBlockTable, fillRowTable, fillSliceTable, Int32Table, Int64Builder } from '../row-tables';
import { NativeKvMemory, NativeProvider } from './native-kv-memory';

export interface NativeRunnerOptions {
  readonly provider: NativeProvider;
  readonly blockSize: number;
  readonly arenaCapacity: { kIds: number; deviceVIds: number; hostVIds: number };
  /** onnxruntime intra-op threads (CPU provider); 0 lets onnxruntime choose. */
  readonly numThreads: number;
  /** As ModelRunnerOptions.appendCurrentByCopy. */
  readonly appendCurrentByCopy?: boolean;
  /** Arenas made elsewhere (the node's shared host tier); see NativeKvMemory.create. */
  readonly arenas?: KvArenas;
  readonly isHostVBlockReadOnly?: (blockId: number) => boolean;
  /** GPU (cuda). Default 0. */
  readonly deviceId?: number;
  /** Further CUDA provider options, as onnxruntime takes them (e.g. enable_cuda_graph). */
  readonly cudaOptions?: Readonly<Record<string, string>>;
}

type SessionKind = 'decode' | 'prefill' | 'score';

/**
 * The model's graphs on onnxruntime's C API (the kcache_ort addon) with IO binding over arenas in
 * native memory (NativeKvMemory): the CUDA provider with the device tier resident on the GPU and
 * host-tier V read in place, or the CPU provider over the same code path (tests, CI).
 *
 * A decode step is one run: small tables go up, the graph gathers the past from the bound arenas,
 * writes the step's new K and V rows into them itself (buildDecodeGraph's writeKvInPlace) and returns
 * the logits alone. Prefill reads the bound arenas in place too; its new rows come back (they are few
 * next to its compute), are written to KvArenas' arrays (so the node's host tier can publish prompt
 * blocks) and copied up to the device a block at a time.
 */
export class NativeRunner {
  readonly arenas: KvArenas;
  private readonly native: NativeOrt;
  private readonly memory: NativeKvMemory;
  private readonly graphWeights: GraphWeights;
  private readonly sessions = new Map<string, NativeSession>();
  private readonly arenaTensors = new Map<string, Record<string, NativeTensor>>();

  constructor(
    weights: ModelWeights,
    private readonly options: NativeRunnerOptions,
  ) {
    this.native = loadNative(options.provider);
    this.graphWeights = new GraphWeights(weights);
    try {
      this.memory = NativeKvMemory.create(this.native, options.provider, weights.config, options.blockSize, options.arenaCapacity, options.arenas, options.deviceId ?? 0);
    } catch (error) {
      throw asProviderError(options.provider, error);
    }
    this.arenas = this.memory.arenas;
  }

  get config(): ModelConfig {
    return this.graphWeights.config;
  }

  /** The device tier stays in the provider's memory (on cpu: the host arrays, bound in place). */
  get hasResidentDeviceTier(): boolean {
    return true;
  }

  /** Positions [from, to) were written into KvArenas' K and device-V arrays by someone else: copy their blocks up. */
  noteCachedRowsWritten(blocks: SequenceBlocks, variant: GraphVariant, from: number, to: number): void {
    this.uploadPositions(blocks, variant, from, to);
  }

  /** KvArenas' arrays were rewritten wholesale (benchmarks fill them directly): copy them up again. */
  async reloadDeviceTier(): Promise<void> {
    this.memory.reload();
  }

  /** logits: [items.length, vocab]. */
  async decode(items: readonly DecodeItem[], variant: GraphVariant, topN: number): Promise<Float32Array> {
    const batch = items.length;
    const a = this.arenas;
    const blockSize = a.blockSize;
    const numKv = this.config.numKvHeads;
    const numLayers = this.config.numLayers;
    let numBlocks = 0;
    for (const item of items) numBlocks = Math.max(numBlocks, Math.ceil(item.position / blockSize));
    const past = numBlocks * blockSize;
    const session = this.session(variant, 'decode');
    const layout = this.decodeLayout(variant);
    const numDense = layout.denseFirstSlice.length;
    const topNLayers = hasTopNLayer(variant);

    const tokens = new Int64Builder(batch);
    const positions = new Int64Builder(batch);
    const mask = new Float32Array(batch * (past + 1));
    const slices = new Int32Table(new Int32Array((numLayers + numDense) * batch * numKv * numBlocks));
    const kWrites = new Int64Builder(batch * numKv * numLayers * 2);
    const vWritesDevice = new Int64Builder(batch * numKv * numDense * 2);
    const vRowsHost = topNLayers ? new Int64Builder(batch * past) : null;
    const vWritesHost = new Int64Builder(batch * numKv);
    for (let b = 0; b < batch; b++) {
      const item = items[b];
      const blocks = item.blocks;
      tokens.set(b, item.tokenId);
      positions.set(b, item.position);
      mask.fill(-Infinity, b * (past + 1) + item.position, b * (past + 1) + past);
      const numItemBlocks = Math.ceil(item.position / blockSize);
      for (let l = 0; l < numLayers; l++) {
        fillSliceTable(slices, (l * batch + b) * numKv * numBlocks, blocks.kBlockIds, numItemBlocks, numKv, numBlocks, layout.kFirstSlice[l]);
      }
      for (let i = 0; i < numDense; i++) {
        fillSliceTable(slices, ((numLayers + i) * batch + b) * numKv * numBlocks, blocks.deviceVBlockIds, numItemBlocks, numKv, numBlocks, layout.denseFirstSlice[i]);
      }
      // Where this step's rows go: (slice, row in block) of each layer's group, per KV head.
      const block = Math.floor(item.position / blockSize);
      const inBlock = item.position % blockSize;
      for (let h = 0; h < numKv; h++) {
        for (let l = 0; l < numLayers; l++) {
          const at = ((b * numKv + h) * numLayers + l) * 2;
          kWrites.set(at, layout.kFirstSlice[l] + blocks.kBlockIds[block] * numKv + h);
          kWrites.set(at + 1, inBlock);
        }
        for (let i = 0; i < numDense; i++) {
          const at = ((b * numKv + h) * numDense + i) * 2;
          vWritesDevice.set(at, layout.denseFirstSlice[i] + blocks.deviceVBlockIds[block] * numKv + h);
          vWritesDevice.set(at + 1, inBlock);
        }
      }
      if (vRowsHost) {
        fillRowTable(vRowsHost, b * past, a, blocks.hostVBlockIds, item.position);
        const hostId = blocks.hostVBlockIds[block];
        if (this.options.isHostVBlockReadOnly?.(hostId)) {
          // Decode positions lie past the prompt, never in a sealed shared prefix block.
          throw new Error(`decode would write position ${item.position} into the read-only host-V block ${hostId}`);
        }
        const row = a.rowOf(blocks.hostVBlockIds, item.position);
        for (let h = 0; h < numKv; h++) vWritesHost.set(b * numKv + h, row + h * blockSize);
      }
    }
    const n = this.native;
    const inputs: Record<string, NativeTensor> = {
      [IO.tokens]: n.hostTensor(tokens.values, 'int64', [batch]),
      [IO.positions]: n.hostTensor(positions.values, 'int64', [batch]),
      [IO.mask]: n.hostTensor(mask, 'float32', [batch, 1, 1, past + 1]),
      [IO.kvSlices]: n.hostTensor(slices.values, 'int32', [numLayers + numDense, batch, numKv, numBlocks]),
      [IO.kWrites]: n.hostTensor(kWrites.values, 'int64', [batch, numKv, numLayers, 2]),
    };
    if (numDense > 0) inputs[IO.vWritesDevice] = n.hostTensor(vWritesDevice.values, 'int64', [batch, numKv, numDense, 2]);
    if (vRowsHost) {
      const offsets = new Int64Builder(batch);
      for (let b = 0; b < batch; b++) offsets.set(b, b * past);
      inputs[IO.vRowsHost] = n.hostTensor(vRowsHost.values, 'int64', [batch, past]);
      inputs[IO.rowTableOffsets] = n.hostTensor(offsets.values, 'int64', [batch]);
      inputs[IO.topN] = n.hostTensor(BigInt64Array.of(BigInt(Math.min(topN, past + 1))), 'int64', [1]);
      inputs[IO.vWritesHost] = n.hostTensor(vWritesHost.values, 'int64', [batch, numKv, 1, 1]);
    }
    const arenas = this.decodeArenaTensors(variant);
    const outputs: Record<string, NativeTensor> = {};
    for (const [name, tensor] of Object.entries(arenas)) {
      inputs[name] = tensor;
      outputs[IO.written(name)] = tensor;
    }
    const logits = new Float32Array(batch * this.config.vocabSize);
    outputs[IO.logits] = n.hostTensor(logits, 'float32', [batch, this.config.vocabSize]);
    this.runBound(session, inputs, outputs);
    return logits;
  }

  /** logits: [1, vocab] for the chunk's last position. */
  async prefill(item: PrefillItem, variant: GraphVariant, topN: number): Promise<Float32Array> {
    const numRows = item.tokenIds.length;
    const start = item.startPosition;
    const blockSize = this.arenas.blockSize;
    const numBlocks = Math.ceil(start / blockSize);
    const past = numBlocks * blockSize;
    const numKeys = past + numRows;
    const tokens = new Int64Builder(numRows);
    const positions = new Int64Builder(numRows);
    const mask = new Float32Array(numRows * numKeys);
    const isApproximate = new Uint8Array(numRows);
    for (let i = 0; i < numRows; i++) {
      tokens.set(i, item.tokenIds[i]);
      positions.set(i, start + i);
      mask.fill(-Infinity, i * numKeys + start, i * numKeys + past); // padding of the last past block
      mask.fill(-Infinity, i * numKeys + past + i + 1, (i + 1) * numKeys); // causal
      isApproximate[i] = start + i >= item.numPromptTokens ? 1 : 0;
    }
    const blockTable = (ids: readonly number[]) => {
      const table = new Int64Builder(numBlocks);
      fillBlockTable(table, 0, ids, numBlocks);
      return table.values;
    };
    const blocks = {
      k: blockTable(item.blocks.kBlockIds),
      deviceV: hasDenseLayer(variant) ? blockTable(item.blocks.deviceVBlockIds) : null,
      hostV: hasTopNLayer(variant) ? blockTable(item.blocks.hostVBlockIds) : null,
    };
    const result = this.runPrefillGraph(variant, 'prefill', { tokens, positions, mask, isApproximate, numRows, numKeys, topN, blocks }, 1);
    for (let i = 0; i < numRows; i++) this.writeRow(result, variant, item.blocks, start + i, i);
    this.uploadPositions(item.blocks, variant, start, start + numRows);
    return result.logits;
  }

  /** As ModelRunner.score: teacher-forced logits of a whole text, [tokenIds.length, vocab], nothing cached. */
  async score(tokenIds: readonly number[], variant: GraphVariant, topN: number, numExactPositions: number): Promise<Float32Array> {
    const numRows = tokenIds.length;
    const tokens = new Int64Builder(numRows);
    const positions = new Int64Builder(numRows);
    const mask = new Float32Array(numRows * numRows);
    const isApproximate = new Uint8Array(numRows);
    for (let i = 0; i < numRows; i++) {
      tokens.set(i, tokenIds[i]);
      positions.set(i, i);
      mask.fill(-Infinity, i * numRows + i + 1, (i + 1) * numRows);
      isApproximate[i] = i >= numExactPositions ? 1 : 0;
    }
    const empty = new BigInt64Array(0);
    const blocks = { k: empty, deviceV: hasDenseLayer(variant) ? empty : null, hostV: hasTopNLayer(variant) ? empty : null };
    return this.runPrefillGraph(variant, 'score', { tokens, positions, mask, isApproximate, numRows, numKeys: numRows, topN, blocks }, numRows).logits;
  }

  async warmUp(variant: GraphVariant): Promise<void> {
    this.session(variant, 'prefill');
    this.session(variant, 'decode');
  }

  async release(): Promise<void> {
    for (const session of this.sessions.values()) session.release();
    this.sessions.clear();
    this.arenaTensors.clear();
    this.memory.release();
  }

  private runPrefillGraph(
    variant: GraphVariant,
    kind: 'prefill' | 'score',
    t: {
      tokens: Int64Builder;
      positions: Int64Builder;
      mask: Float32Array;
      isApproximate: Uint8Array;
      numRows: number;
      numKeys: number;
      topN: number;
      blocks: { k: BigInt64Array; deviceV: BigInt64Array | null; hostV: BigInt64Array | null };
    },
    numLogitRows: number,
  ): { logits: Float32Array; newK: Float32Array; newV: Float32Array } {
    const session = this.session(variant, kind);
    const n = this.native;
    const c = this.config;
    const inputs: Record<string, NativeTensor> = {
      [IO.tokens]: n.hostTensor(t.tokens.values, 'int64', [t.numRows]),
      [IO.positions]: n.hostTensor(t.positions.values, 'int64', [t.numRows]),
      [IO.mask]: n.hostTensor(t.mask, 'float32', [t.numRows, t.numKeys]),
      [IO.kBlocks]: n.hostTensor(t.blocks.k, 'int64', [t.blocks.k.length]),
      ...this.prefillArenaTensors(variant),
    };
    if (t.blocks.deviceV) inputs[IO.vBlocksDevice] = n.hostTensor(t.blocks.deviceV, 'int64', [t.blocks.deviceV.length]);
    if (t.blocks.hostV) {
      inputs[IO.vBlocksHost] = n.hostTensor(t.blocks.hostV, 'int64', [t.blocks.hostV.length]);
      inputs[IO.topN] = n.hostTensor(BigInt64Array.of(BigInt(Math.min(t.topN, t.numKeys))), 'int64', [1]);
      inputs[IO.isApproximateQuery] = n.hostTensor(t.isApproximate, 'bool', [t.numRows]);
    }
    const d = this.arenas.headDim;
    const logits = new Float32Array(numLogitRows * c.vocabSize);
    const newK = new Float32Array(t.numRows * c.numKvHeads * c.numLayers * d);
    const newV = new Float32Array(newK.length);
    const kvDims = [t.numRows, c.numKvHeads, c.numLayers, d];
    this.runBound(session, inputs, {
      [IO.logits]: n.hostTensor(logits, 'float32', [numLogitRows, c.vocabSize]),
      [IO.newK]: n.hostTensor(newK, 'float32', kvDims),
      [IO.newV]: n.hostTensor(newV, 'float32', kvDims),
    });
    return { logits, newK, newV };
  }

  private runBound(session: NativeSession, inputs: Record<string, NativeTensor>, outputs: Record<string, NativeTensor>): void {
    session.clear();
    session.bind(inputs, outputs);
    session.run();
  }

  /** Prefill's row `row` (new_k, new_v: [rows, Hkv, numLayers, d]) into KvArenas' arrays; sealed host-V blocks are left alone. */
  private writeRow(result: { newK: Float32Array; newV: Float32Array }, variant: GraphVariant, blocks: SequenceBlocks, position: number, row: number): void {
    const a = this.arenas;
    const d = a.headDim;
    const numLayers = this.config.numLayers;
    const hostId = blocks.hostVBlockIds[Math.floor(position / a.blockSize)];
    const isHostVReadOnly = hostId !== undefined && (this.options.isHostVBlockReadOnly?.(hostId) ?? false);
    const rowStart = row * this.config.numKvHeads * numLayers * d;
    variant.denseLayers.forEach((dense, layer) => {
      const at = { offset: rowStart + layer * d, headStride: numLayers * d };
      a.writePosition(a.k[layer], blocks.kBlockIds, position, result.newK, at);
      if (!dense && isHostVReadOnly) return;
      a.writePosition(dense ? a.deviceV[layer] : a.hostV[layer], dense ? blocks.deviceVBlockIds : blocks.hostVBlockIds, position, result.newV, at);
    });
  }

  /** Copies the K (and exact-layer V) blocks holding positions [from, to) from KvArenas' arrays to the device. */
  private uploadPositions(blocks: SequenceBlocks, variant: GraphVariant, from: number, to: number): void {
    if (!this.memory.hasDeviceCopy || to <= from) return;
    const bs = this.arenas.blockSize;
    const first = Math.floor(from / bs);
    const last = Math.floor((to - 1) / bs);
    const kIds = blocks.kBlockIds.slice(first, last + 1);
    const vIds = blocks.deviceVBlockIds.slice(first, last + 1);
    variant.denseLayers.forEach((dense, layer) => {
      this.memory.uploadBlocks('k', layer, kIds);
      if (dense) this.memory.uploadBlocks('deviceV', layer, vIds);
    });
  }

  /** Decode's arena inputs (each also the target of its ScatterND output): K and device-V groups [slices, blockSize, d], TopN layers' host V [rows, d]. */
  private decodeArenaTensors(variant: GraphVariant): Record<string, NativeTensor> {
    const key = `${variant.key}/decode`;
    let tensors = this.arenaTensors.get(key);
    if (!tensors) {
      const a = this.arenas;
      const m = this.memory;
      const d = a.headDim;
      const blocksView = (place: { floats: number }) => [place.floats / (a.blockSize * d), a.blockSize, d];
      tensors = {};
      for (let i = 0; i < a.kGroups.length; i++) tensors[IO.kArenaGroup(i)] = m.tensor(this.native, m.kGroup(i), blocksView(m.kGroup(i)));
      if (hasDenseLayer(variant)) {
        const used = new Set(variant.denseLayers.flatMap((dense, layer) => (dense ? [placeInGroups(a.deviceVGroups, layer).group] : [])));
        for (const i of used) tensors[IO.vArenaDeviceGroup(i)] = m.tensor(this.native, m.deviceVGroup(i), blocksView(m.deviceVGroup(i)));
      }
      variant.denseLayers.forEach((dense, layer) => {
        if (!dense) tensors![IO.vArena(layer)] = m.tensor(this.native, m.hostV(layer), [a.hostV[layer].length / d, d]);
      });
      this.arenaTensors.set(key, tensors);
    }
    return tensors;
  }

  /** Prefill's (and score's) arena inputs, one per layer, [ids · Hkv, blockSize · d]: read in place. */
  private prefillArenaTensors(variant: GraphVariant): Record<string, NativeTensor> {
    const key = `${variant.key}/prefill`;
    let tensors = this.arenaTensors.get(key);
    if (!tensors) {
      const a = this.arenas;
      const m = this.memory;
      const slice = a.blockSize * a.headDim;
      const view = (place: { floats: number }) => [Math.floor(place.floats / slice), slice];
      tensors = {};
      variant.denseLayers.forEach((dense, layer) => {
        const k = m.layerArena('k', layer);
        const v = dense ? m.layerArena('deviceV', layer) : m.hostV(layer);
        tensors![IO.kArena(layer)] = m.tensor(this.native, k, view(k));
        tensors![IO.vArena(layer)] = m.tensor(this.native, v, view(v));
      });
      this.arenaTensors.set(key, tensors);
    }
    return tensors;
  }

  /** Where decode's slice tables point: the first arena slice of each layer (K) and each exact layer (device V) in its group. */
  private decodeLayout(variant: GraphVariant): { kFirstSlice: number[]; denseFirstSlice: number[] } {
    const a = this.arenas;
    const numKv = this.config.numKvHeads;
    return {
      kFirstSlice: variant.denseLayers.map((_, layer) => placeInGroups(a.kGroups, layer).indexInGroup * a.kIdsPerLayer * numKv),
      denseFirstSlice: variant.denseLayers.flatMap((dense, layer) => (dense ? [placeInGroups(a.deviceVGroups, layer).indexInGroup * a.deviceVIdsPerLayer * numKv] : [])),
    };
  }

  private decodeArenaGroups(): DecodeArenaGroups {
    const layers = Array.from({ length: this.config.numLayers }, (_, layer) => layer);
    return {
      k: layers.map((layer) => placeInGroups(this.arenas.kGroups, layer).group),
      deviceV: layers.map((layer) => placeInGroups(this.arenas.deviceVGroups, layer).group),
    };
  }

  private session(variant: GraphVariant, kind: SessionKind): NativeSession {
    const key = `${variant.key}/${kind}`;
    let session = this.sessions.get(key);
    if (!session) {
      const graph =
        kind === 'decode'
          ? buildDecodeGraph(this.graphWeights, variant, this.arenas.blockSize, {
              appendCurrentByCopy: this.options.appendCurrentByCopy ?? false,
              arenaGroups: this.decodeArenaGroups(),
              writeKvInPlace: true,
            })
          : buildPrefillGraph(this.graphWeights, variant, this.arenas.blockSize, { allLogits: kind === 'score' });
      try {
        session = this.native.session(graph, {
          provider: this.options.provider,
          deviceId: this.options.deviceId ?? 0,
          intraOpNumThreads: this.options.numThreads,
          graphOptimizationLevel: 'all',
          logSeverityLevel: 3,
          ...(this.options.cudaOptions ? { cudaOptions: this.options.cudaOptions } : {}),
        });
      } catch (error) {
        throw asProviderError(this.options.provider, error);
      }
      this.sessions.set(key, session);
    }
    return session;
  }
}

function loadNative(provider: NativeProvider): NativeOrt {
  try {
    return NativeOrt.load();
  } catch (error) {
    throw asProviderError(provider, error);
  }
}

/** A CUDA failure as the ExecutionProviderError the engine reports (its message says what to install); CPU errors pass unchanged. */
function asProviderError(provider: NativeProvider, error: unknown): unknown {
  if (provider === 'cpu') return error;
  return new ExecutionProviderError('cuda', error instanceof Error ? error.message : String(error));
}
