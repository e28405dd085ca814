import type * as ort from 'onnxruntime-node';
import { SequenceBlocks } from '../../memory/sequence-blocks';
import { ExecutionProviderName } from '../execution-provider';
import { GraphVariant } from '../graph-variant';
import { KvArenas } from '../kv-arenas';
import { KvWriteTarget } from './kv-write-back';

/** The graphs a runner compiles per variant (see GraphSessions). */
export type GraphKind = 'decode' | 'decodeByCopy' | 'prefill' | 'score';

/**
 * A run's small input tables by graph input name (IO), built by the runner in host memory: tokens,
 * positions, mask, block or slice tables, row tables, topN. The backend adds the arena inputs.
 */
export type GraphInputs = Record<string, ort.Tensor>;

/** A graph compiled by a backend; only the backend that compiled it runs it. */
export interface CompiledGraph {
  endProfiling(): void;
  release(): Promise<void>;
}

/** How the graphs must be built to run on a backend (passed to the graph builders). */
export interface BackendGraphOptions {
  /** Decode reads the TopN layers' host-tier V as uint16 halves (see buildDecodeGraph's hostVAsHalves). */
  readonly hostVAsHalves: boolean;
  /**
   * Decode writes its new K/V rows into the arenas it reads (see buildDecodeGraph's writeKvInPlace) and
   * outputs only IO.logits; the backend supplies the row indices (from runDecode's rows). Default false.
   */
  readonly writeKvInPlace?: boolean;
  /**
   * Decode reads each layer's K and device V through its own arena view (IO.kArena(layer), IO.vArena(layer))
   * indexed by one slice table for K and one for device V (IO.kSlices, IO.vSlicesDevice), instead of a
   * table per layer split off IO.kvSlices (see buildDecodeGraph's layerArenaViews). Default false.
   */
  readonly layerArenaViews?: boolean;
  /**
   * Decode writes each layer's new K and V rows into the layer's arena before it gathers the past, so the
   * current position is one more column of the past (mask [B, 1, 1, T], T covering position t_b): no
   * separate score and value terms for it (see buildDecodeGraph's currentRowInArena). Same math, other
   * rounding (the softmax and P·V sum the current column in another place). Needs layerArenaViews. Default false.
   */
  readonly currentRowInArena?: boolean;
  /**
   * With currentRowInArena: exact layers run as one com.microsoft MultiHeadAttention node where every query head
   * has its own KV head (see inArenaAttention). Default false.
   */
  readonly fusedAttention?: boolean;
  /**
   * With currentRowInArena: every layer's decode attention as one com.kcache PagedDecodeAttention node of the
   * kcache_ort addon (runtime/paged-attention-op.ts), reading the arenas in place. Native backend only. Default false.
   */
  readonly pagedAttention?: boolean;
  /**
   * With pagedAttention: decode pads its batch and its past to the steps of decode-shapes.ts (padded rows are fully
   * masked and write no K or V), so a run's shapes repeat: what a CUDA graph per shape needs. Default false.
   */
  readonly fixedShapes?: boolean;
}

/**
 * A decode run's logits: row b's vocab logits start at logits[b · rowStride]. They may lie in a buffer the
 * backend reuses (NativeBackend's pinned one): valid until its next run, so the runner copies them out unless its
 * caller reads them before the next decode (ModelRunner.decode's untilNextDecode).
 */
export interface DecodeLogits {
  readonly logits: Float32Array;
  readonly rowStride: number;
}

/** A prefill chunk's place: rows [0, numRows) of the run are positions startPosition + row of blocks' sequence. */
export interface PrefillChunk {
  readonly blocks: SequenceBlocks;
  readonly startPosition: number;
  readonly numRows: number;
  /** Blocks of past before the chunk, ceil(startPosition / blockSize): the inputs' block tables have this many. */
  readonly numPastBlocks: number;
}

/**
 * Where the KV arenas live and how a graph runs over them. The runner builds graphs and their small
 * input tables; a backend
 * - allocates the arenas (`arenas`: the host view, which the node's host tier, preemption and
 *   benchmarks read and write; a backend may keep the device tier in its own memory besides),
 * - compiles graphs (compile) and runs them with the arena inputs bound over memory it owns,
 * - writes each run's new K/V rows at the positions it is given (KV write-back), after the run or
 *   inside it.
 * cpu: arenas in JavaScript memory fed to onnxruntime in place (createExecutionBackend picks it for the
 * cpu provider). resident device tier: a copy of the device tier in the provider's memory, updated
 * a row at a time (webgpu, and cuda through onnxruntime-node).
 */
export interface ExecutionBackend {
  readonly provider: ExecutionProviderName;
  readonly arenas: KvArenas;
  readonly graphOptions: BackendGraphOptions;
  /** True when the device tier is kept in the provider's memory between steps. */
  readonly hasResidentDeviceTier: boolean;

  compile(graph: Uint8Array, kind: GraphKind): Promise<CompiledGraph>;

  /**
   * One decode run of a batch; run row b's new K/V go to rows[b]. Synchronous where the graph runs
   * synchronously (the CPU path), so the step pays no promise for it.
   */
  runDecode(graph: CompiledGraph, inputs: GraphInputs, variant: GraphVariant, rows: readonly KvWriteTarget[]): DecodeLogits | Promise<DecodeLogits>;

  /**
   * One prefill chunk: inputs hold block tables over the whole arenas (numPastBlocks entries), which a
   * backend may replace (feeding only the sequence's own past). Returns the last row's logits [1, vocab].
   */
  runPrefill(graph: CompiledGraph, inputs: GraphInputs, variant: GraphVariant, chunk: PrefillChunk): Promise<Float32Array>;

  /** A score run (teacher-forced, nothing cached, nothing written): every row's logits. */
  runScore(graph: CompiledGraph, inputs: GraphInputs, variant: GraphVariant): Promise<Float32Array>;

  /**
   * Positions [from, to) of a sequence were written into the host arenas by someone else (the node's
   * host tier restoring a shared prefix): a device copy must take them before the next run.
   */
  cachedRowsWritten(blocks: SequenceBlocks, variant: GraphVariant, from: number, to: number): void;

  /** The host arenas were rewritten wholesale (benchmarks fill them): copy them to the device again. */
  reload(): Promise<void>;

  release(): Promise<void>;
}
