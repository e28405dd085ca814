import type * as ort from 'onnxruntime-node';
import { ModelConfig } from '../../model/model-config';
import { SequenceBlocks } from '../../memory/sequence-blocks';
import { NativeDtype, NativeMemory, NativeOrt, NativeTensor } from '../../ort-native/native-ort';
import { DecodeLayouts } from '../decode-layouts';
import { ExecutionProviderError } from '../execution-provider';
import { IO } from '../graph-io';
import { GraphVariant, hasTopNLayer } from '../graph-variant';
import { KvArenas, placeInGroups } from '../kv-arenas';
import { FeedBuffers } from '../row-tables';
import { BackendGraphOptions, CompiledGraph, DecodeLogits, ExecutionBackend, GraphInputs, GraphKind, PrefillChunk } from './execution-backend';
import { KvWriteBack, KvWriteTarget, separateNewKv } from './kv-write-back';
import { NativeFeedTables } from './native-feed-tables';
import { NativeGraph, nativeGraph } from './native-graph';
import { ArenaPlace, NativeKvMemory, NativeProvider } from './native-kv-memory';

export interface NativeBackendOptions {
  readonly provider: NativeProvider;
  readonly blockSize: number;
  readonly arenaCapacity: { kIds: number; deviceVIds: number; hostVIds: number };
  /** onnxruntime intra-op threads (the CPU provider's; CUDA kernels ignore it); 0 lets onnxruntime choose. */
  readonly numThreads: number;
  /** Arenas made elsewhere: a second runner over the same cache. */
  readonly arenas?: KvArenas;
  /** Host-V arenas living elsewhere (the node's shared host tier: a mapping), registered with the GPU on cuda. */
  readonly hostVArenas?: readonly Float32Array[];
  readonly isHostVBlockReadOnly?: (blockId: number) => boolean;
  /** The GPU (cuda). Default 0. */
  readonly deviceId?: number;
  /** Further CUDA provider options, as onnxruntime takes them (cudaGraphs sets enable_cuda_graph on decode's session). */
  readonly cudaOptions?: Readonly<Record<string, string>>;
  /** Writes onnxruntime's per-node profile (JSON) with this file prefix (and the graph kind). */
  readonly profileFilePrefix?: string;
  /** cpu, for tests: keep K and device V apart from the host view as on a GPU (see NativeKvMemory.create). */
  readonly deviceCopyOnHost?: boolean;
  /**
   * Decode writes each layer's new rows before it reads the past (BackendGraphOptions.currentRowInArena):
   * fewer nodes a step, same math, other rounding than the onnxruntime-node runner. Default off until its
   * speed is measured on a GPU (EngineOptions.currentRowInArena turns it on; off, the native backend is bit-identical with
   * that runner on cpu).
   */
  readonly currentRowInArena?: boolean;
  /**
   * Exact layers as one MultiHeadAttention node where Hkv = H (BackendGraphOptions.fusedAttention; needs
   * currentRowInArena). Default false: not yet measured on a GPU.
   */
  readonly fusedAttention?: boolean;
  /**
   * Every layer's decode attention as one com.kcache PagedDecodeAttention node (BackendGraphOptions.pagedAttention):
   * no gather of the past, TopN layers read only their N host-V rows. Implies currentRowInArena. Default false.
   */
  readonly pagedAttention?: boolean;
  /** cuda: host V allocated here in transparent huge pages registered with the GPU, not cudaHostAlloc (NativeKvMemory). Default false. */
  readonly hostTierHugePages?: boolean;
  /**
   * cuda, with pagedAttention: each decode shape runs as a CUDA graph (onnxruntime's enable_cuda_graph, one
   * gpu_graph_id per padded batch, padded past and N), captured at its first runs and replayed after: one launch a
   * step instead of one per node. Implies fixedShapes. Default false.
   */
  readonly cudaGraphs?: boolean;
  /**
   * With pagedAttention: decode's batch and past padded to the steps of decode-shapes.ts (BackendGraphOptions.fixedShapes),
   * as cudaGraphs needs; on cpu it checks that padding changes no logit. Default: cudaGraphs.
   */
  readonly fixedShapes?: boolean;
}

/**
 * cudaGraphs: decode runs of a shape before its steps are replays (onnxruntime runs a shape once plainly, then
 * captures it on the next run); a benchmark warms each shape up with this many before it times.
 */
export const CUDA_GRAPH_WARM_UP_RUNS = 3;

/** Decode's logits buffer (pinned on cuda) and its tensor per batch size (one per size, so its binding is kept). */
interface LogitsBuffer {
  readonly view: Float32Array;
  readonly pinned: NativeMemory | null;
  tensor(batch: number): NativeTensor;
}

/**
 * The native backend: onnxruntime's C API (the kcache_ort addon, ort-native/) with IO binding over
 * arenas in native memory (NativeKvMemory). On cuda the device tier (K, exact layers' V) lives in GPU
 * memory and host-tier V in pinned (or registered) host memory that the provider's Gather reads in
 * place; on cpu the same code binds the host arenas themselves (tests, CI).
 *
 * A decode step is one run: the small tables go up, the graph gathers the past from the bound arenas,
 * writes the step's new K and V rows into them itself (buildDecodeGraph's writeKvInPlace: ScatterND
 * whose output is bound to the arena it reads) and returns only the logits. Prefill and score read
 * the bound arenas in place too; prefill's new rows come back (few next to its compute), go into the
 * host view (where the node's host tier publishes prompt blocks from) and up to the device a block
 * at a time.
 */
export class NativeBackend implements ExecutionBackend {
  readonly graphOptions: BackendGraphOptions;
  readonly hasResidentDeviceTier = true;
  readonly arenas: KvArenas;
  private readonly memory: NativeKvMemory;
  private readonly writeBack: KvWriteBack;
  /** Per variant: the arena tensors of decode (K/device-V groups, host-V rows) and of prefill/score (per layer). */
  private readonly arenaTensors = new Map<string, Record<string, NativeTensor>>();
  /** Per variant: decode's per-layer views of K and device V (read; with currentRowInArena also written, else the groups are). */
  private readonly layerViews = new Map<string, Record<string, NativeTensor>>();
  /** Prefill's and score's host inputs as addon tensors over the same memory (on cuda onnxruntime copies them when bound); decode's go through feedTables. */
  private readonly hostTensors = new WeakMap<ort.Tensor, NativeTensor>();
  private readonly layouts: DecodeLayouts;
  /** The write tables of decode, kept from step to step (and their addon tensors, through hostTensors): filled just before the run, which is synchronous. */
  private readonly writeBuffers = new FeedBuffers();
  private logits: LogitsBuffer | null = null;
  /** cudaGraphs: the gpu_graph_id of each decode shape, and decode's logits in device memory per padded batch. */
  private readonly graphIds = new Map<string, number>();
  private readonly deviceLogitsByBatch = new Map<number, { memory: NativeMemory; tensor: NativeTensor }>();
  /** Per variant: decode's arena bindings (decodeArenaBindings). */
  private readonly arenaBindings = new Map<string, { inputs: Record<string, NativeTensor>; outputs: Record<string, NativeTensor> }>();
  /** Decode's kept tables (the runner's and the write tables) as tensors bound once per shape (device copies on cuda). */
  private readonly feedTables: NativeFeedTables;

  private constructor(
    private readonly config: ModelConfig,
    private readonly native: NativeOrt,
    private readonly options: NativeBackendOptions,
  ) {
    try {
      this.memory = NativeKvMemory.create(native, options.provider, config, options.blockSize, options.arenaCapacity, {
        ...(options.arenas ? { arenas: options.arenas } : {}),
        ...(options.hostVArenas ? { hostVArenas: options.hostVArenas } : {}),
        deviceId: options.deviceId ?? 0,
        deviceCopyOnHost: options.deviceCopyOnHost ?? false,
        hugePages: options.hostTierHugePages ?? false,
      });
    } catch (error) {
      throw asProviderError(options.provider, error);
    }
    const pagedAttention = options.pagedAttention ?? false;
    const currentRowInArena = (options.currentRowInArena ?? false) || pagedAttention;
    if (options.fusedAttention && !currentRowInArena) throw new RangeError('fusedAttention needs currentRowInArena');
    if (options.fusedAttention && pagedAttention) throw new RangeError('fusedAttention and pagedAttention are two kernels for one place: pick one');
    const cudaGraphs = options.cudaGraphs ?? false;
    const fixedShapes = options.fixedShapes ?? cudaGraphs;
    if (cudaGraphs && options.provider !== 'cuda') throw new RangeError('cudaGraphs needs the cuda provider');
    if (cudaGraphs && !fixedShapes) throw new RangeError('cudaGraphs needs fixedShapes');
    if (fixedShapes && !pagedAttention) throw new RangeError('fixedShapes needs pagedAttention (its operator writes no row for a padded batch row)');
    this.graphOptions = { hostVAsHalves: false, writeKvInPlace: true, layerArenaViews: true, currentRowInArena, fusedAttention: options.fusedAttention ?? false, pagedAttention, fixedShapes };
    this.arenas = this.memory.arenas;
    this.layouts = new DecodeLayouts(this.arenas, config.numKvHeads);
    this.feedTables = new NativeFeedTables(native, options.provider, options.deviceId ?? 0, fixedShapes);
    this.writeBack = new KvWriteBack(this.arenas, options.isHostVBlockReadOnly);
  }

  /** Loads the addon (NativeOrtError, as an ExecutionProviderError on cuda, says how to build or install what is missing). */
  static create(config: ModelConfig, options: NativeBackendOptions): NativeBackend {
    let native: NativeOrt;
    try {
      native = NativeOrt.load();
    } catch (error) {
      throw asProviderError(options.provider, error);
    }
    return new NativeBackend(config, native, options);
  }

  get provider(): NativeProvider {
    return this.options.provider;
  }

  async compile(graph: Uint8Array, kind: GraphKind): Promise<CompiledGraph> {
    const prefix = this.options.profileFilePrefix;
    try {
      return new NativeGraph(
        this.native.session(graph, {
          provider: this.options.provider,
          deviceId: this.options.deviceId ?? 0,
          intraOpNumThreads: this.options.numThreads,
          graphOptimizationLevel: 'all',
          logSeverityLevel: 3,
          ...(this.graphOptions.pagedAttention ? { pagedAttention: true } : {}),
          ...(this.cudaOptionsFor(kind) ? { cudaOptions: this.cudaOptionsFor(kind) } : {}),
          ...(prefix ? { profileFilePrefix: `${prefix}_${kind}` } : {}),
        }),
        prefix !== undefined,
      );
    } catch (error) {
      throw asProviderError(this.options.provider, error);
    }
  }

  async runDecode(graph: CompiledGraph, inputs: GraphInputs, variant: GraphVariant, rows: readonly KvWriteTarget[]): Promise<DecodeLogits> {
    const runBatch = inputs[IO.tokens].dims[0]; // fixedShapes: the padded batch
    // The runner's tables and the write tables go up together (one wait for their copies on cuda).
    const bound = this.feedTables.tensorsFor({ ...inputs, ...this.writeTables(variant, rows, runBatch) });
    const arenas = this.decodeArenaBindings(variant);
    Object.assign(bound, arenas.inputs);
    const outputs: Record<string, NativeTensor> = { ...arenas.outputs };
    const vocab = this.config.vocabSize;
    const batch = rows.length;
    const logits = this.logitsBuffer(runBatch * vocab);
    if (this.options.cudaGraphs) {
      // A CUDA graph replays its writes to the addresses it was captured with, and onnxruntime copies no output
      // after a replay: the logits stay in device memory of this shape's own, and come down here.
      const device = this.deviceLogits(runBatch);
      outputs[IO.logits] = device.tensor;
      nativeGraph(graph).runKeepingBindings(bound, outputs, this.graphId(inputs));
      device.memory.copy('fromDevice', 0, logits.view.subarray(0, runBatch * vocab));
    } else {
      outputs[IO.logits] = logits.tensor(runBatch);
      nativeGraph(graph).runKeepingBindings(bound, outputs);
    }
    // The buffer is the next run's too (DecodeLogits: the runner copies the rows out unless its caller reads them first).
    return { logits: logits.view.subarray(0, batch * vocab), rowStride: vocab };
  }

  /**
   * Decode's arena bindings, per variant: K/device-V groups and host V, or (current row in the arena) every layer's
   * views and host V, as inputs. ScatterND writes them as outputs bound to the arenas' own memory (IO.written); the
   * paged attention operator writes its inputs in place (no outputs). Without the current row in the arena the
   * layer views are read too.
   */
  private decodeArenaBindings(variant: GraphVariant): { inputs: Record<string, NativeTensor>; outputs: Record<string, NativeTensor> } {
    let made = this.arenaBindings.get(variant.key);
    if (!made) {
      const inArena = this.graphOptions.currentRowInArena === true;
      const written = inArena ? { ...this.decodeLayerViews(variant), ...this.hostVTensors(variant) } : this.decodeArenaTensors(variant);
      const outputs: Record<string, NativeTensor> = {};
      if (!this.graphOptions.pagedAttention) for (const [name, tensor] of Object.entries(written)) outputs[IO.written(name)] = tensor;
      made = { inputs: inArena ? written : { ...written, ...this.decodeLayerViews(variant) }, outputs };
      this.arenaBindings.set(variant.key, made);
    }
    return made;
  }

  /** cuda options of a session: decode's with cudaGraphs enables onnxruntime's CUDA graphs. */
  private cudaOptionsFor(kind: GraphKind): Readonly<Record<string, string>> | undefined {
    const graphs = this.options.cudaGraphs && kind === 'decode';
    if (!graphs) return this.options.cudaOptions;
    return { ...this.options.cudaOptions, enable_cuda_graph: '1' };
  }

  /** The gpu_graph_id of a decode run's shapes (padded batch, padded past, N): one CUDA graph each. */
  private graphId(inputs: GraphInputs): number {
    const topN = inputs[IO.topN] ? Number((inputs[IO.topN].data as BigInt64Array)[0]) : 0;
    const key = `${inputs[IO.mask].dims.join('x')}/${topN}`;
    let id = this.graphIds.get(key);
    if (id === undefined) this.graphIds.set(key, (id = this.graphIds.size));
    return id;
  }

  /** cudaGraphs: decode's logits of a padded batch size in device memory of their own (a fixed address per shape). */
  private deviceLogits(batch: number): { memory: NativeMemory; tensor: NativeTensor } {
    let made = this.deviceLogitsByBatch.get(batch);
    if (!made) {
      const memory = this.native.deviceMemory(batch * this.config.vocabSize * 4, this.options.deviceId ?? 0);
      made = { memory, tensor: this.native.tensor(memory, 'float32', [batch, this.config.vocabSize]) };
      this.deviceLogitsByBatch.set(batch, made);
    }
    return made;
  }

  /**
   * Decode's logits land in one buffer kept from run to run (grown as needed): on cuda pinned host memory,
   * bound as host memory, so onnxruntime's copy from the GPU is one DMA instead of a staged pageable copy.
   */
  private logitsBuffer(floats: number): LogitsBuffer {
    if (!this.logits || this.logits.view.length < floats) {
      const length = Math.max(floats, 2 * (this.logits?.view.length ?? 0));
      this.logits?.pinned?.release();
      const pinned = this.options.provider === 'cuda' ? this.native.pinnedMemory(length * 4) : null;
      const view = pinned ? new Float32Array(pinned.buffer!, 0, length) : new Float32Array(length);
      const memory = this.native.hostMemory(view.buffer as ArrayBuffer);
      const tensors = new Map<number, NativeTensor>();
      const vocab = this.config.vocabSize;
      const tensor = (batch: number) => {
        let t = tensors.get(batch);
        if (!t) tensors.set(batch, (t = this.native.tensor(memory, 'float32', [batch, vocab])));
        return t;
      };
      this.logits = { view, pinned, tensor };
    }
    return this.logits;
  }

  async runPrefill(graph: CompiledGraph, inputs: GraphInputs, variant: GraphVariant, chunk: PrefillChunk): Promise<Float32Array> {
    const { logits, newK, newV } = this.runPrefillGraph(graph, inputs, variant, chunk.numRows, 1);
    const newKv = separateNewKv(newK, newV, this.config, this.arenas.headDim);
    for (let i = 0; i < chunk.numRows; i++) this.writeBack.write(newKv, variant, chunk.blocks, chunk.startPosition + i, i);
    this.upload(chunk.blocks, variant, chunk.startPosition, chunk.startPosition + chunk.numRows);
    return logits;
  }

  async runScore(graph: CompiledGraph, inputs: GraphInputs, variant: GraphVariant): Promise<Float32Array> {
    const numRows = inputs[IO.tokens].dims[0];
    return this.runPrefillGraph(graph, inputs, variant, numRows, numRows).logits;
  }

  cachedRowsWritten(blocks: SequenceBlocks, variant: GraphVariant, from: number, to: number): void {
    this.upload(blocks, variant, from, to);
  }

  async reload(): Promise<void> {
    this.memory.reload();
  }

  async release(): Promise<void> {
    for (const { memory } of this.deviceLogitsByBatch.values()) memory.release();
    this.deviceLogitsByBatch.clear();
    this.arenaTensors.clear();
    this.layerViews.clear();
    this.arenaBindings.clear();
    this.logits = null;
    this.feedTables.release();
    this.memory.release();
  }

  private runPrefillGraph(graph: CompiledGraph, inputs: GraphInputs, variant: GraphVariant, numRows: number, numLogitRows: number): { logits: Float32Array; newK: Float32Array; newV: Float32Array } {
    const c = this.config;
    const n = this.native;
    const bound = { ...this.bindHost(inputs), ...this.prefillArenaTensors(variant) };
    const logits = new Float32Array(numLogitRows * c.vocabSize);
    const newK = new Float32Array(numRows * c.numKvHeads * c.numLayers * this.arenas.headDim);
    const newV = new Float32Array(newK.length);
    const kvDims = [numRows, c.numKvHeads, c.numLayers, this.arenas.headDim];
    nativeGraph(graph).runBindingAll(bound, {
      [IO.logits]: n.hostTensor(logits, 'float32', [numLogitRows, c.vocabSize]),
      [IO.newK]: n.hostTensor(newK, 'float32', kvDims),
      [IO.newV]: n.hostTensor(newV, 'float32', kvDims),
    });
    return { logits, newK, newV };
  }

  /** The runner's host tables as addon tensors over the same memory (cached per tensor object). */
  private bindHost(inputs: GraphInputs): Record<string, NativeTensor> {
    const bound: Record<string, NativeTensor> = {};
    for (const [name, tensor] of Object.entries(inputs)) {
      let native = this.hostTensors.get(tensor);
      if (!native) {
        native = this.native.hostTensor(tensor.data as ArrayBufferView, tensor.type as NativeDtype, tensor.dims);
        this.hostTensors.set(tensor, native);
      }
      bound[name] = native;
    }
    return bound;
  }

  /**
   * Where a decode run writes its rows (buildDecodeGraph's writeKvInPlace): per sequence and KV head,
   * K of every layer and V of the exact layers as (slice of the group, row in the block), or with the current
   * row in the arena one (slice, row) for every layer's own arena; host V as a row. In kept buffers, `batch` rows:
   * those past `rows` only pad the batch (fixedShapes) and write nothing.
   */
  private writeTables(variant: GraphVariant, rows: readonly KvWriteTarget[], batch: number): GraphInputs {
    const a = this.arenas;
    const numKv = this.config.numKvHeads;
    const numLayers = this.config.numLayers;
    const inArena = this.graphOptions.currentRowInArena === true;
    const layout = this.layouts.of(variant);
    const numDense = layout.denseFirstSlice.length;
    // In the arena: one write per sequence and KV head, the same slice of every layer's own arena (no layer offsets).
    const kLayers = inArena ? 1 : numLayers;
    const denseTables = inArena ? Math.min(numDense, 1) : numDense;
    const w = this.writeBuffers;
    const kWrites = w.int64(IO.kWrites, [batch, numKv, kLayers, 2]);
    const vWritesDevice = denseTables > 0 ? w.int64(IO.vWritesDevice, [batch, numKv, denseTables, 2]) : null;
    const vWritesHost = hasTopNLayer(variant) ? w.int64(IO.vWritesHost, [batch, numKv, 1, 1]) : null;
    // Rows that only pad the batch write nothing (-1: PagedDecodeAttention skips them).
    for (let at = rows.length * numKv * kLayers * 2; at < batch * numKv * kLayers * 2; at += 2) kWrites.table.set(at, -1);
    for (let at = rows.length * numKv * denseTables * 2; at < batch * numKv * denseTables * 2; at += 2) vWritesDevice!.table.set(at, -1);
    for (let at = rows.length * numKv; vWritesHost && at < batch * numKv; at++) vWritesHost.table.set(at, -1);
    for (let b = 0; b < rows.length; b++) {
      const { blocks, position } = rows[b];
      const block = Math.floor(position / a.blockSize);
      const inBlock = position % a.blockSize;
      for (let h = 0; h < numKv; h++) {
        for (let l = 0; l < kLayers; l++) {
          const at = ((b * numKv + h) * kLayers + l) * 2;
          kWrites.table.set(at, (inArena ? 0 : layout.kFirstSlice[l]) + blocks.kBlockIds[block] * numKv + h);
          kWrites.table.set(at + 1, inBlock);
        }
        for (let i = 0; i < denseTables; i++) {
          const at = ((b * numKv + h) * denseTables + i) * 2;
          vWritesDevice!.table.set(at, (inArena ? 0 : layout.denseFirstSlice[i]) + blocks.deviceVBlockIds[block] * numKv + h);
          vWritesDevice!.table.set(at + 1, inBlock);
        }
      }
      if (vWritesHost) {
        const hostId = blocks.hostVBlockIds[block];
        // Decode positions lie past the prompt, never in a sealed shared prefix block: the graph cannot skip a row.
        if (this.options.isHostVBlockReadOnly?.(hostId)) throw new Error(`decode would write position ${position} into the read-only host-V block ${hostId}`);
        const row = a.rowOf(blocks.hostVBlockIds, position);
        for (let h = 0; h < numKv; h++) vWritesHost.table.set(b * numKv + h, row + h * a.blockSize);
      }
    }
    const tables: GraphInputs = { [IO.kWrites]: kWrites.tensor };
    if (vWritesDevice) tables[IO.vWritesDevice] = vWritesDevice.tensor;
    if (vWritesHost) tables[IO.vWritesHost] = vWritesHost.tensor;
    return tables;
  }

  /** Copies positions [from, to) of K (and exact-layer V) from the host view to the device. */
  private upload(blocks: SequenceBlocks, variant: GraphVariant, from: number, to: number): void {
    if (!this.memory.hasDeviceCopy || to <= from) return;
    variant.isDenseLayer.forEach((dense, layer) => {
      this.memory.uploadPositions('k', layer, blocks.kBlockIds, from, to);
      if (dense) this.memory.uploadPositions('deviceV', layer, blocks.deviceVBlockIds, from, to);
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
      const made: Record<string, NativeTensor> = {};
      a.kGroups.forEach((_, i) => (made[IO.kArenaGroup(i)] = m.tensor(this.native, m.kGroup(i), blocksView(m.kGroup(i)))));
      const denseGroups = new Set(variant.isDenseLayer.flatMap((dense, layer) => (dense ? [placeInGroups(a.deviceVGroups, layer).group] : [])));
      for (const i of denseGroups) made[IO.vArenaDeviceGroup(i)] = m.tensor(this.native, m.deviceVGroup(i), blocksView(m.deviceVGroup(i)));
      variant.isDenseLayer.forEach((dense, layer) => {
        if (!dense) made[IO.vArena(layer)] = m.tensor(this.native, m.hostV(layer), [a.hostV[layer].length / d, d]);
      });
      tensors = made;
      this.arenaTensors.set(key, tensors);
    }
    return tensors;
  }

  /** The TopN layers' host-V arenas, [rows, d] (decode reads and writes them in place). */
  private hostVTensors(variant: GraphVariant): Record<string, NativeTensor> {
    const tensors = this.decodeArenaTensors(variant);
    return Object.fromEntries(variant.isDenseLayer.flatMap((dense, layer) => (dense ? [] : [[IO.vArena(layer), tensors[IO.vArena(layer)]]])));
  }

  /** Decode's per-layer views (graphOptions.layerArenaViews): K of every layer and device V of the exact layers, [slices, blockSize, d]. */
  private decodeLayerViews(variant: GraphVariant): Record<string, NativeTensor> {
    let views = this.layerViews.get(variant.key);
    if (!views) {
      const a = this.arenas;
      const m = this.memory;
      const view = (place: ArenaPlace) => m.tensor(this.native, place, [Math.floor(place.floats / (a.blockSize * a.headDim)), a.blockSize, a.headDim]);
      const made: Record<string, NativeTensor> = {};
      variant.isDenseLayer.forEach((dense, layer) => {
        made[IO.kArena(layer)] = view(m.layerArena('k', layer));
        if (dense) made[IO.vArena(layer)] = view(m.layerArena('deviceV', layer));
      });
      views = made;
      this.layerViews.set(variant.key, views);
    }
    return views;
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
      const made: Record<string, NativeTensor> = {};
      variant.isDenseLayer.forEach((dense, layer) => {
        const k = m.layerArena('k', layer);
        const v = dense ? m.layerArena('deviceV', layer) : m.hostV(layer);
        made[IO.kArena(layer)] = m.tensor(this.native, k, view(k));
        made[IO.vArena(layer)] = m.tensor(this.native, v, view(v));
      });
      tensors = made;
      this.arenaTensors.set(key, tensors);
    }
    return tensors;
  }
}

/** A cuda failure as the ExecutionProviderError the engine reports (its message says what to install); cpu errors pass unchanged. */
function asProviderError(provider: NativeProvider, error: unknown): unknown {
  if (provider === 'cpu' || error instanceof ExecutionProviderError) return error;
  return new ExecutionProviderError('cuda', error instanceof Error ? error.message : String(error));
}
