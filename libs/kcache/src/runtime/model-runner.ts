import * as ort from 'onnxruntime-node';
import { ModelConfig } from '../model/model-config';
import { ModelWeights } from '../model/model-weights';
import { emptySequenceBlocks, SequenceBlocks } from '../memory/sequence-blocks';
import { buildDecodeGraph, DecodeArenaGroups } from './decode-graph';
import { DeviceArenaMirror } from './device-arena-mirror';
import { ExecutionProviderName, providerError, providerSessionOptions } from './execution-provider';
import { graphForProvider } from './execution-provider-graph';
import { GraphSession } from './graph-session';
import { IO } from './graph-io';
import { GraphVariant, hasDenseLayer, hasTopNLayer } from './graph-variant';
import { ArenaGroup, KvArenas, placeInGroups } from './kv-arenas';
import { packedRowWidth } from './llama-graph';
import { GraphWeights } from './layer-weights-layout';
import { compactBlocks } from './compact-past';
import { buildPrefillGraph } from './prefill-graph';
import { FeedBuffers, fillBlockTable, fillRowTable, fillSliceTable, Int64Builder } from './row-tables';

export interface DecodeItem {
  readonly tokenId: number;
  /** Position of tokenId; positions [0, position) are cached. */
  readonly position: number;
  readonly blocks: SequenceBlocks;
}

export interface PrefillItem {
  /** Tokens at positions [startPosition, startPosition + tokenIds.length). */
  readonly tokenIds: readonly number[];
  readonly startPosition: number;
  readonly numPromptTokens: number;
  readonly blocks: SequenceBlocks;
}

export interface ModelRunnerOptions {
  readonly blockSize: number;
  readonly arenaCapacity: { kIds: number; deviceVIds: number; hostVIds: number };
  /** onnxruntime intra-op threads; 0 lets onnxruntime choose. */
  readonly numThreads: number;
  /**
   * Decode graph for the current token's k/v (see buildDecodeGraph): true copies it onto the past,
   * false (the default) adds it as separate terms. Fixed per runner, never chosen per step: the two
   * graphs round differently in the last bits, and a sequence's tokens must not depend on which
   * other sequences share its batch (seeded sampling is replayed exactly when a job moves worker).
   * Measured on stories260K, separate terms are 8-26% faster from batch 8 up and 1-4% slower at batch 1.
   */
  readonly appendCurrentByCopy?: boolean;
  /** Writes onnxruntime's per-node profile (JSON) with this file prefix. */
  readonly profileFilePrefix?: string;
  /** onnxruntime execution provider. Default cpu. */
  readonly executionProvider?: ExecutionProviderName;
  /** Physical KV storage to use instead of allocating it: a second runner over the same cache (e.g. a profiled one). */
  readonly arenas?: KvArenas;
  /** Host-V blocks never to write (shared prefix blocks of the node's host tier, sealed). Default: none. */
  readonly isHostVBlockReadOnly?: (blockId: number) => boolean;
  /**
   * Keep the device tier (K, exact layers' V) in the provider's memory between steps
   * (DeviceArenaMirror), gather TopN layers' host-tier V rows on the host (the decode graph's
   * hostVAsHalves), and give prefill only its own sequence's past. Default: on for GPU providers,
   * off for cpu (where graph inputs are read in place and none of this is needed; tests turn it on
   * there to check the path).
   */
  readonly residentDeviceTier?: boolean;
}

type SessionKind = 'decode' | 'decodeByCopy' | 'prefill' | 'score';

/**
 * Where a run left its new K/V rows: K of (row, KV head h, layer) starts at
 * k[row · rowStride + kOffset + layer · d + h · headStride], V likewise from v and vOffset.
 */
interface NewKv {
  readonly k: Float32Array;
  readonly v: Float32Array;
  readonly rowStride: number;
  readonly kOffset: number;
  readonly vOffset: number;
  readonly headStride: number;
}

type VariantSessions = Partial<Record<SessionKind, GraphSession>>;

/**
 * Runs the model's graphs on onnxruntime and owns the physical KV arenas. One session.run per
 * decode batch and per prefill chunk; new K/V rows are appended to the arenas after each run.
 * Makes no scheduling or sampling decisions.
 */
export class ModelRunner {
  readonly arenas: KvArenas;
  private readonly graphWeights: GraphWeights;
  private readonly sessions = new Map<string, VariantSessions>();
  /** The arenas as input tensors, per variant (they wrap the arenas; nothing is copied). */
  private readonly arenaFeeds = new Map<string, Record<string, ort.Tensor>>();
  /** Decode's small input tables, kept from step to step (see FeedBuffers). */
  private readonly decodeBuffers = new FeedBuffers();
  private decodeBuffersInUse = false;
  private readonly decodeLayouts = new Map<string, { kFirstSlice: number[]; denseFirstSlice: number[] }>();
  /** The device tier in the provider's memory (residentDeviceTier), made at the first decode. */
  private mirror: Promise<DeviceArenaMirror> | null = null;
  private createdMirror: DeviceArenaMirror | null = null;
  private readonly resident: boolean;

  constructor(
    weights: ModelWeights,
    private readonly options: ModelRunnerOptions,
  ) {
    this.graphWeights = new GraphWeights(weights);
    this.arenas = options.arenas ?? new KvArenas(weights.config, options.blockSize, options.arenaCapacity);
    this.resident = options.residentDeviceTier ?? (options.executionProvider ?? 'cpu') !== 'cpu';
  }

  /** True when the device tier lives in the provider's memory (see ModelRunnerOptions.residentDeviceTier). */
  get hasResidentDeviceTier(): boolean {
    return this.resident;
  }

  /**
   * Positions [from, to) of a sequence were written into the K and device-V host arenas by someone
   * other than this runner (the node's host tier restoring a shared prefix): the resident copy takes
   * them at the next decode. Nothing to do without a resident device tier.
   */
  noteCachedRowsWritten(blocks: SequenceBlocks, variant: GraphVariant, from: number, to: number): void {
    // Before the copy exists there is nothing to update: it is made from the host arenas.
    const mirror = this.createdMirror;
    if (!mirror) return;
    for (let position = from; position < to; position++) mirror.recordPosition(blocks, variant.denseLayers, position);
  }

  /** The host arenas were rewritten wholesale (benchmarks fill them directly): copy them to the resident device tier again. */
  async reloadDeviceTier(): Promise<void> {
    if (this.mirror) await (await this.mirror).reload();
  }

  private deviceMirror(): Promise<DeviceArenaMirror> {
    if (!this.mirror) {
      const provider = this.options.executionProvider ?? 'cpu';
      this.mirror = DeviceArenaMirror.create(this.arenas, provider, this.options.numThreads).then((mirror) => (this.createdMirror = mirror)).catch((error) => {
        this.mirror = null;
        throw providerError(provider, error);
      });
    }
    return this.mirror;
  }

  private get decodeKind(): SessionKind {
    return this.options.appendCurrentByCopy ? 'decodeByCopy' : 'decode';
  }

  get config(): ModelConfig {
    return this.graphWeights.config;
  }

  /** logits: [items.length, vocab]. */
  async decode(items: readonly DecodeItem[], variant: GraphVariant, topN: number): Promise<Float32Array> {
    const batch = items.length;
    const blockSize = this.options.blockSize;
    let numBlocks = 0;
    for (const item of items) numBlocks = Math.max(numBlocks, Math.ceil(item.position / blockSize));
    const past = numBlocks * blockSize;
    const session = this.cachedSession(variant, this.decodeKind) ?? (await this.session(variant, this.decodeKind));
    const mirror = this.resident ? await this.deviceMirror() : null;
    if (mirror) await mirror.flush();
    // The kept buffers, unless another decode is between filling them and its run (then new ones).
    const buffers = this.decodeBuffersInUse ? new FeedBuffers() : this.decodeBuffers;
    const ownsKeptBuffers = buffers === this.decodeBuffers;
    this.decodeBuffersInUse = true;
    let results: ort.InferenceSession.OnnxValueMapType;
    try {
      const feeds = this.decodeFeeds(buffers, items, variant, topN, numBlocks, past);
      mirror?.addFeeds(feeds, hasDenseLayer(variant));
      results = await session.run(feeds);
    } finally {
      if (ownsKeptBuffers) this.decodeBuffersInUse = false;
    }
    const packed = results[IO.logitsAndKv].data as Float32Array; // [batch, packedRowWidth]
    const newKv = this.packedKv(packed);
    for (let b = 0; b < batch; b++) this.appendKv(newKv, variant, items[b].blocks, items[b].position, b, mirror);
    const vocab = this.config.vocabSize;
    if (batch === 1) return packed.subarray(0, vocab);
    const logits = new Float32Array(batch * vocab);
    for (let b = 0; b < batch; b++) logits.set(packed.subarray(b * newKv.rowStride, b * newKv.rowStride + vocab), b * vocab);
    return logits;
  }

  private decodeFeeds(
    buffers: FeedBuffers,
    items: readonly DecodeItem[],
    variant: GraphVariant,
    topN: number,
    numBlocks: number,
    past: number,
  ): Record<string, ort.Tensor> {
    const batch = items.length;
    const blockSize = this.options.blockSize;
    const numKv = this.config.numKvHeads;
    const layout = this.decodeLayout(variant);
    const numLayers = layout.kFirstSlice.length;
    const numDense = layout.denseFirstSlice.length;
    const tokens = buffers.int64(IO.tokens, [batch]);
    const positions = buffers.int64(IO.positions, [batch]);
    const mask = buffers.float32(IO.mask, [batch, 1, 1, past + 1]);
    const slices = buffers.int32(IO.kvSlices, [numLayers + numDense, batch, numKv, numBlocks]);
    const vRowsHost = hasTopNLayer(variant) ? buffers.int64(IO.vRowsHost, [batch, past]) : null;
    for (let b = 0; b < batch; b++) {
      const item = items[b];
      tokens.table.set(b, item.tokenId);
      positions.table.set(b, item.position);
      mask.values.fill(-Infinity, b * (past + 1) + item.position, b * (past + 1) + past);
      const numItemBlocks = Math.ceil(item.position / blockSize);
      // Table t of sequence b starts at (t · batch + b) · Hkv · numBlocks.
      for (let l = 0; l < numLayers; l++) {
        fillSliceTable(slices.table, (l * batch + b) * numKv * numBlocks, item.blocks.kBlockIds, numItemBlocks, numKv, numBlocks, layout.kFirstSlice[l]);
      }
      for (let i = 0; i < numDense; i++) {
        const at = ((numLayers + i) * batch + b) * numKv * numBlocks;
        fillSliceTable(slices.table, at, item.blocks.deviceVBlockIds, numItemBlocks, numKv, numBlocks, layout.denseFirstSlice[i]);
      }
      if (vRowsHost) fillRowTable(vRowsHost.table, b * past, this.arenas, item.blocks.hostVBlockIds, item.position);
    }
    const feeds: Record<string, ort.Tensor> = {
      [IO.tokens]: tokens.tensor,
      [IO.positions]: positions.tensor,
      [IO.mask]: mask.tensor,
      [IO.kvSlices]: slices.tensor,
    };
    if (vRowsHost) {
      feeds[IO.vRowsHost] = vRowsHost.tensor;
      feeds[IO.topN] = scalarInt64(Math.min(topN, past + 1));
      const offsets = buffers.int64(IO.rowTableOffsets, [batch]);
      for (let b = 0; b < batch; b++) offsets.table.set(b, b * past);
      feeds[IO.rowTableOffsets] = offsets.tensor;
    }
    this.addArenaFeeds(feeds, variant, 'decode');
    return feeds;
  }

  /** logits: [1, vocab] for the chunk's last position. */
  async prefill(item: PrefillItem, variant: GraphVariant, topN: number): Promise<Float32Array> {
    const session = await this.session(variant, 'prefill');
    const numRows = item.tokenIds.length;
    const start = item.startPosition;
    const numBlocks = Math.ceil(start / this.options.blockSize);
    const past = numBlocks * this.options.blockSize;
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
      return int64(table, [numBlocks]);
    };
    const feeds: Record<string, ort.Tensor> = {
      [IO.tokens]: int64(tokens, [numRows]),
      [IO.positions]: int64(positions, [numRows]),
      [IO.mask]: new ort.Tensor('float32', mask, [numRows, numKeys]),
      [IO.kBlocks]: blockTable(item.blocks.kBlockIds),
    };
    if (hasDenseLayer(variant)) feeds[IO.vBlocksDevice] = blockTable(item.blocks.deviceVBlockIds);
    if (hasTopNLayer(variant)) {
      feeds[IO.vBlocksHost] = blockTable(item.blocks.hostVBlockIds);
      feeds[IO.topN] = scalarInt64(Math.min(topN, numKeys));
      feeds[IO.isApproximateQuery] = new ort.Tensor('bool', isApproximate, [numRows]);
    }
    if (this.resident) this.addCompactPastFeeds(feeds, variant, item.blocks, numBlocks);
    else this.addArenaFeeds(feeds, variant, 'prefill');
    const results = await session.run(feeds);
    const newKv = this.separateKv(results);
    const mirror = this.resident ? await this.deviceMirror() : null;
    for (let i = 0; i < numRows; i++) this.appendKv(newKv, variant, item.blocks, start + i, i, mirror);
    return results[IO.logits].data as Float32Array;
  }

  /**
   * Teacher-forced logits of a whole text, [tokenIds.length, vocab], with nothing cached: row t
   * predicts token t+1. Query rows at positions >= numExactPositions use the variant's TopN
   * selection in its TopN layers (KCache applied to every position), earlier rows exact attention.
   */
  async score(tokenIds: readonly number[], variant: GraphVariant, topN: number, numExactPositions: number): Promise<Float32Array> {
    const session = await this.session(variant, 'score');
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
    const empty = new Int64Builder(0);
    const feeds: Record<string, ort.Tensor> = {
      [IO.tokens]: int64(tokens, [numRows]),
      [IO.positions]: int64(positions, [numRows]),
      [IO.mask]: new ort.Tensor('float32', mask, [numRows, numRows]),
      [IO.kBlocks]: int64(empty, [0]),
    };
    if (hasDenseLayer(variant)) feeds[IO.vBlocksDevice] = int64(empty, [0]);
    if (hasTopNLayer(variant)) {
      feeds[IO.vBlocksHost] = int64(empty, [0]);
      feeds[IO.topN] = scalarInt64(Math.min(topN, numRows));
      feeds[IO.isApproximateQuery] = new ort.Tensor('bool', isApproximate, [numRows]);
    }
    if (this.resident) this.addCompactPastFeeds(feeds, variant, NO_BLOCKS, 0);
    else this.addArenaFeeds(feeds, variant, 'score');
    const results = await session.run(feeds);
    return results[IO.logits].data as Float32Array;
  }

  /** Builds (and caches) a variant's sessions ahead of the first request. */
  async warmUp(variant: GraphVariant): Promise<void> {
    await this.session(variant, 'prefill');
    await this.session(variant, this.decodeKind);
  }

  async release(): Promise<void> {
    if (this.mirror) await (await this.mirror.catch(() => null))?.release();
    this.mirror = null;
    this.createdMirror = null;
    for (const sessions of this.sessions.values()) {
      for (const session of Object.values(sessions)) {
        if (this.options.profileFilePrefix) session.endProfiling();
        await session.release();
      }
    }
    this.sessions.clear();
  }

  /**
   * The arenas as input tensors (wrapping them; nothing is copied), cached per graph. Prefill's
   * arenas are viewed as [numIds · Hkv, blockSize · d]; decode reads K and device V by arena group
   * (one input per buffer of several layers) as [slices, blockSize, d], unless a resident device
   * tier feeds its copies instead, and the TopN V as rows [·, d] (or their uint16 halves).
   */
  private addArenaFeeds(feeds: Record<string, ort.Tensor>, variant: GraphVariant, kind: SessionKind): void {
    const key = `${variant.key}/${kind}`;
    let arenaFeeds = this.arenaFeeds.get(key);
    if (!arenaFeeds) {
      const d = this.arenas.headDim;
      const blockSize = this.options.blockSize;
      const slice = blockSize * d;
      const view = (arena: Float32Array, width: number) => new ort.Tensor('float32', arena, [arena.length / width, width]);
      // The host-tier rows as uint16 halves (the same bytes; see buildDecodeGraph's hostVAsHalves).
      const halvesView = (arena: Float32Array) => new ort.Tensor('uint16', new Uint16Array(arena.buffer, arena.byteOffset, 2 * arena.length), [arena.length / d, 2 * d]);
      const blocksView = (arena: Float32Array) => new ort.Tensor('float32', arena, [arena.length / slice, blockSize, d]);
      const tensors: Record<string, ort.Tensor> = {};
      if (kind === 'decode') {
        if (!this.resident) {
          this.arenas.kGroups.forEach((group, i) => (tensors[IO.kArenaGroup(i)] = blocksView(group.buffer)));
          if (hasDenseLayer(variant)) this.arenas.deviceVGroups.forEach((group, i) => (tensors[IO.vArenaDeviceGroup(i)] = blocksView(group.buffer)));
        }
        variant.denseLayers.forEach((dense, layer) => {
          if (!dense) tensors[IO.vArena(layer)] = this.resident ? halvesView(this.arenas.hostV[layer]) : view(this.arenas.hostV[layer], d);
        });
      } else {
        variant.denseLayers.forEach((dense, layer) => {
          tensors[IO.kArena(layer)] = view(this.arenas.k[layer], slice);
          tensors[IO.vArena(layer)] = view(dense ? this.arenas.deviceV[layer] : this.arenas.hostV[layer], slice);
        });
      }
      arenaFeeds = tensors;
      this.arenaFeeds.set(key, arenaFeeds);
    }
    Object.assign(feeds, arenaFeeds);
  }

  /**
   * Prefill's past as compact copies of the sequence's own blocks (compactBlocks), with block tables
   * 0..numBlocks-1: what a resident device tier feeds instead of the whole arenas.
   */
  private addCompactPastFeeds(feeds: Record<string, ort.Tensor>, variant: GraphVariant, blocks: SequenceBlocks, numBlocks: number): void {
    const a = this.arenas;
    const slice = a.blockSize * a.headDim;
    const floatsPerBlock = a.rowsPerBlock * a.headDim;
    const identity = new Int64Builder(numBlocks);
    for (let i = 0; i < numBlocks; i++) identity.set(i, i);
    for (const name of [IO.kBlocks, IO.vBlocksDevice, IO.vBlocksHost]) if (feeds[name]) feeds[name] = int64(identity, [numBlocks]);
    const compact = (arena: Float32Array, ids: readonly number[]) => {
      const values = compactBlocks(arena, ids, numBlocks, floatsPerBlock);
      return new ort.Tensor('float32', values, [values.length / slice, slice]);
    };
    variant.denseLayers.forEach((dense, layer) => {
      feeds[IO.kArena(layer)] = compact(a.k[layer], blocks.kBlockIds);
      feeds[IO.vArena(layer)] = dense ? compact(a.deviceV[layer], blocks.deviceVBlockIds) : compact(a.hostV[layer], blocks.hostVBlockIds);
    });
  }

  /** Where decode's slice tables point: the first arena slice of each layer (K) and each exact layer (device V) in its group's buffer. */
  private decodeLayout(variant: GraphVariant): { kFirstSlice: number[]; denseFirstSlice: number[] } {
    let layout = this.decodeLayouts.get(variant.key);
    if (!layout) {
      const a = this.arenas;
      const numKv = this.config.numKvHeads;
      const firstSlice = (groups: readonly ArenaGroup[], idsPerLayer: number, layer: number) => placeInGroups(groups, layer).indexInGroup * idsPerLayer * numKv;
      layout = {
        kFirstSlice: variant.denseLayers.map((_, layer) => firstSlice(a.kGroups, a.kIdsPerLayer, layer)),
        denseFirstSlice: variant.denseLayers.flatMap((dense, layer) => (dense ? [firstSlice(a.deviceVGroups, a.deviceVIdsPerLayer, layer)] : [])),
      };
      this.decodeLayouts.set(variant.key, layout);
    }
    return layout;
  }

  /** Each layer's arena group, for the decode graph. */
  private decodeArenaGroups(): DecodeArenaGroups {
    const layers = Array.from({ length: this.config.numLayers }, (_, layer) => layer);
    return {
      k: layers.map((layer) => placeInGroups(this.arenas.kGroups, layer).group),
      deviceV: layers.map((layer) => placeInGroups(this.arenas.deviceVGroups, layer).group),
    };
  }

  /** Prefill's new K/V outputs, each [rows, Hkv, numLayers, d]. */
  private separateKv(results: ort.InferenceSession.OnnxValueMapType): NewKv {
    const d = this.arenas.headDim;
    const numLayers = this.config.numLayers;
    return {
      k: results[IO.newK].data as Float32Array,
      v: results[IO.newV].data as Float32Array,
      rowStride: this.config.numKvHeads * numLayers * d,
      kOffset: 0,
      vOffset: 0,
      headStride: numLayers * d,
    };
  }

  /** Decode's packed output: per row, logits then [Hkv, 2 · numLayers, d] (packedRowWidth). */
  private packedKv(packed: Float32Array): NewKv {
    const d = this.arenas.headDim;
    const numLayers = this.config.numLayers;
    const vocab = this.config.vocabSize;
    return { k: packed, v: packed, rowStride: packedRowWidth(this.config), kOffset: vocab, vOffset: vocab + numLayers * d, headStride: 2 * numLayers * d };
  }

  private appendKv(newKv: NewKv, variant: GraphVariant, blocks: SequenceBlocks, position: number, row: number, mirror: DeviceArenaMirror | null): void {
    const d = this.arenas.headDim;
    const hostId = blocks.hostVBlockIds[Math.floor(position / this.options.blockSize)];
    const isHostVReadOnly = hostId !== undefined && (this.options.isHostVBlockReadOnly?.(hostId) ?? false);
    const rowStart = row * newKv.rowStride;
    const layers = variant.denseLayers;
    for (let layer = 0; layer < layers.length; layer++) {
      const dense = layers[layer];
      const k = { offset: rowStart + newKv.kOffset + layer * d, headStride: newKv.headStride };
      this.arenas.writePosition(this.arenas.k[layer], blocks.kBlockIds, position, newKv.k, k);
      if (!dense && isHostVReadOnly) continue;
      const vArena = dense ? this.arenas.deviceV[layer] : this.arenas.hostV[layer];
      const v = { offset: rowStart + newKv.vOffset + layer * d, headStride: newKv.headStride };
      this.arenas.writePosition(vArena, dense ? blocks.deviceVBlockIds : blocks.hostVBlockIds, position, newKv.v, v);
    }
    mirror?.recordPosition(blocks, layers, position);
  }

  private cachedSession(variant: GraphVariant, kind: SessionKind): GraphSession | undefined {
    return this.sessions.get(variant.key)?.[kind];
  }

  private async session(variant: GraphVariant, kind: SessionKind): Promise<GraphSession> {
    let entry = this.sessions.get(variant.key);
    if (!entry) {
      entry = {};
      this.sessions.set(variant.key, entry);
    }
    let session = entry[kind];
    if (!session) {
      const graph =
        kind === 'decode' || kind === 'decodeByCopy'
          ? buildDecodeGraph(this.graphWeights, variant, this.options.blockSize, {
              appendCurrentByCopy: kind === 'decodeByCopy',
              arenaGroups: this.decodeArenaGroups(),
              hostVAsHalves: this.resident,
            })
          : buildPrefillGraph(this.graphWeights, variant, this.options.blockSize, { allLogits: kind === 'score' });
      const provider = this.options.executionProvider ?? 'cpu';
      try {
        const sessionOptions: ort.InferenceSession.SessionOptions = {
          intraOpNumThreads: this.options.numThreads,
          interOpNumThreads: 1,
          executionMode: 'sequential',
          graphOptimizationLevel: 'all',
          logSeverityLevel: 3,
          ...(this.options.profileFilePrefix ? { enableProfiling: true, profileFilePrefix: `${this.options.profileFilePrefix}_${kind}` } : {}),
          ...providerSessionOptions(provider),
        };
        // CPU runs go straight to the native binding (synchronous, see GraphSession); GPU providers use the public API.
        session = await GraphSession.create(graphForProvider(graph, provider), sessionOptions, provider === 'cpu');
      } catch (error) {
        throw providerError(provider, error);
      }
      entry[kind] = session;
    }
    return session;
  }
}

const NO_BLOCKS: SequenceBlocks = emptySequenceBlocks();

function int64(builder: Int64Builder, dims: readonly number[]): ort.Tensor {
  return new ort.Tensor('int64', builder.values, dims);
}

function scalarInt64(value: number): ort.Tensor {
  return new ort.Tensor('int64', BigInt64Array.of(BigInt(value)), [1]);
}
