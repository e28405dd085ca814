import { headDimOf } from '../model/model-config';
import { float32FromHalves } from './float32-from-halves';
import { GraphBuilder } from './graph-builder';
import { IO } from './graph-io';
import { inArenaAttention } from './in-arena-attention';

import { GraphVariant, hasTopNLayer } from './graph-variant';
import { GraphWeights } from './layer-weights-layout';
import { buildLlamaGraph } from './llama-graph';
import { PagedGather } from './paged-gather';

/**
 * [n, ...] → n tensors [...]. WebGPU binds every output of a node as a storage buffer (at most 16
 * per shader, the input included), so a Split has at most MAX_SPLIT_OUTPUTS outputs: more tables are
 * split in chunks first.
 */
function splitTables(g: GraphBuilder, table: string, n: number): string[] {
  const axis0 = g.constInt([0]);
  const unstack = (chunk: string, count: number) => (count === 1 ? [chunk] : g.opMulti('Split', [chunk], count, { axis: 0 })).map((t) => g.op('Squeeze', [t, axis0]));
  if (n <= MAX_SPLIT_OUTPUTS) return unstack(table, n);
  const sizes = Array.from({ length: Math.ceil(n / MAX_SPLIT_OUTPUTS) }, (_, i) => Math.min(MAX_SPLIT_OUTPUTS, n - i * MAX_SPLIT_OUTPUTS));
  const chunks = g.opMulti('Split', [table, g.constInt(sizes)], sizes.length, { axis: 0 });
  return chunks.flatMap((chunk, i) => unstack(chunk, sizes[i]));
}

const MAX_SPLIT_OUTPUTS = 15;

/** The arena group (KvArenas.kGroups, deviceVGroups) of each layer's K and device V: which input it gathers from. */
export interface DecodeArenaGroups {
  readonly k: readonly number[];
  readonly deviceV: readonly number[];
}

/**
 * One decode step for B sequences, each computing its next position t_b (its "current" token).
 * Past K/V (positions < t_b) are gathered from the arenas a block at a time (the runner passes each
 * block's arena slices, IO.kvSlices), padded to T = numBlocks · blockSize columns; the current
 * token's k/v come from the graph itself (the runner writes them to the arenas after the run) and
 * form column T. The mask input is [B, 1, 1, T + 1]: -inf on padding. One output, IO.logitsAndKv: each
 * row's logits and new K/V (onnxruntime-node's cost per input and output tensor is a sizeable part
 * of a small model's step, as is every node).
 *
 * Exact layers: out = P · [V_past; v_cur].
 * TopN layers (KCache): [w, idx] = TopK(P, N) per query head (ties → lower index), and only the
 * selected V rows are gathered from the host-tier arena: out = Σ_i w_i · V[idx_i]. TopK is sorted:
 * an unsorted TopK returns the same set in an order that depends on T, so the sum would round
 * differently with the batch's padding (sorting costs ~10% of a stories260K step, ~0% at 110M).
 */
export function buildDecodeGraph(
  weights: GraphWeights,
  variant: GraphVariant,
  blockSize: number,
  options: {
    appendCurrentByCopy: boolean;
    arenaGroups?: DecodeArenaGroups;
    /**
     * TopN layers read the host-tier V arenas as uint16 halves ([rows, 2d]) and rebuild the gathered
     * rows in fp32 (float32FromHalves, exact). No GPU provider has a uint16 Gather (or Cast), so
     * onnxruntime runs those two on the CPU provider: the arena stays in host memory and per layer
     * the TopN indices come down and only the selected rows go up. (Measured on WebGPU, this was
     * 4-6x faster than naming the fp32 Gather in the provider's forceCpuNodeNames; docs/gpu.md.)
     */
    hostVAsHalves?: boolean;
    /**
     * The graph writes every layer's new K and V rows into the arenas it reads (ScatterND whose output,
     * IO.written(arena), the caller binds to the arena's own memory, so only the rows are written), and
     * outputs only IO.logits. The row indices come in IO.kWrites, vWritesDevice and vWritesHost. For
     * IO binding over arenas the caller owns (the native backend): one run per step, nothing comes back
     * but the logits. The current position is masked in the past the graph reads, so writing it
     * before or after the layer's gather gives the same result.
     */
    writeKvInPlace?: boolean;
    /**
     * Each layer's K and device V are read through the layer's own arena view, IO.kArena(layer) and
     * IO.vArena(layer) ([slices, blockSize, d], over the layer's part of its group buffer), indexed by
     * one table for K and one for device V (IO.kSlices, IO.vSlicesDevice: no layer offsets). Saves the
     * per-layer table nodes (a Split per 15 tables, a Squeeze per table) and uploads 2 tables a step
     * instead of numLayers + numExactLayers. Only with writeKvInPlace (the group inputs stay, as the
     * targets of the writes).
     */
    layerArenaViews?: boolean;
    /**
     * Each layer writes its new rows into its arena views before it gathers the past, which then holds
     * the current position (inArenaAttention; BackendGraphOptions.currentRowInArena). Needs layerArenaViews.
     */
    currentRowInArena?: boolean;
    /** With currentRowInArena: exact layers through MultiHeadAttention where Hkv = H (see inArenaAttention). */
    fusedAttention?: boolean;
    /** Every layer's attention as one com.kcache PagedDecodeAttention node (see inArenaAttention), and its feed-forward gate as one com.kcache SwiGlu node. Implies currentRowInArena. */
    pagedAttention?: boolean;
  },
): Uint8Array {
  if (options.fusedAttention && !options.currentRowInArena) throw new Error('fusedAttention needs currentRowInArena');
  if (options.pagedAttention && options.fusedAttention) throw new Error('pagedAttention and fusedAttention are two kernels for one place: pick one');
  const currentRowInArena = (options.currentRowInArena ?? false) || (options.pagedAttention ?? false);
  if (currentRowInArena && !options.layerArenaViews) throw new Error('currentRowInArena needs layerArenaViews');
  if (options.layerArenaViews && !options.writeKvInPlace) throw new Error('layerArenaViews needs writeKvInPlace');
  if (options.writeKvInPlace && options.hostVAsHalves) throw new Error('writeKvInPlace writes fp32 host-V rows: it cannot read them as halves');
  const config = weights.config;
  const g = new GraphBuilder(`decode_${variant.key}`);
  const names = weights.addTo(g);
  const d = headDimOf(config);
  const numKv = config.numKvHeads;
  if (currentRowInArena) {
    const attention = inArenaAttention(g, variant, { blockSize, d, numKv, numHeads: config.numHeads, dim: config.dim }, options.pagedAttention ? 'paged' : options.fusedAttention ? 'fused' : 'onnx');
    buildLlamaGraph(g, config, names, attention, { lastRowLogitsOnly: false, writeNewKv: () => undefined, kcacheSwiGlu: options.pagedAttention ?? false });
    return g.toBytes();
  }

  const numLayers = config.numLayers;
  const denseLayers = variant.isDenseLayer.flatMap((dense, layer) => (dense ? [layer] : []));
  const arenaGroups = options.arenaGroups ?? { k: Array.from({ length: numLayers }, () => 0), deviceV: Array.from({ length: numLayers }, () => 0) };
  const mask = g.input(IO.mask, 'float32', ['batch', 1, 1, 'columns']); // [B, 1, 1, T + 1]
  // Each layer's slice indices [B, Hkv, nb], split off the table (K of every layer, then device V of the exact layers).
  const numTables = numLayers + denseLayers.length;
  // int32: a GPU provider splits and gathers with it directly (int64 tables are split on the CPU and each part uploaded).
  let kSlices: (layer: number) => string;
  let vSlicesDevice: (layer: number) => string;
  if (options.layerArenaViews) {
    const kTable = g.input(IO.kSlices, 'int32', ['batch', numKv, 'past_blocks']);
    const vTable = denseLayers.length > 0 ? g.input(IO.vSlicesDevice, 'int32', ['batch', numKv, 'past_blocks']) : '';
    kSlices = () => kTable;
    vSlicesDevice = () => vTable;
  } else {
    const tables = splitTables(g, g.input(IO.kvSlices, 'int32', [numTables, 'batch', numKv, 'past_blocks']), numTables);
    kSlices = (layer) => tables[layer];
    vSlicesDevice = (layer) => tables[numLayers + denseLayers.indexOf(layer)];
  }
  // K and device-V arenas: one input per group of layers sharing a buffer, viewed as [slices, blockSize, d]
  // (a row per position, so a GPU-resident copy can be updated a row at a time: DeviceArenaMirror).
  const declaredArenas = new Set<string>();
  const groupArena = (name: string) => {
    if (!declaredArenas.has(name)) g.input(name, 'float32', [`${name}_slices`, blockSize, d]);
    declaredArenas.add(name);
    return name;
  };
  const vRowsHost = hasTopNLayer(variant) ? g.input(IO.vRowsHost, 'int64', ['batch', 'past']) : '';
  const topN = hasTopNLayer(variant) ? g.input(IO.topN, 'int64', [1]) : '';
  const rowTableOffsets = hasTopNLayer(variant) ? g.input(IO.rowTableOffsets, 'int64', ['batch']) : '';

  const paged = new PagedGather(g, numKv, d);
  const zero = g.constFloat([0], []);
  // Exact layers split P into past and current columns: sizes [T, 1], from the mask's width T + 1.
  let splitSizes = '';
  const pastAndCurrent = () => {
    if (!splitSizes) {
      const one = g.constInt([1]);
      const columns = g.op('Slice', [g.op('Shape', [mask]), g.constInt([3]), g.constInt([4])]);
      splitSizes = g.op('Concat', [g.op('Sub', [columns, one]), one], { axis: 0 });
    }
    return splitSizes;
  };
  // The current token's k/v join the gathered past either by copying them onto it (one Concat:
  // fewest nodes, best when the past is small) or through separate score/value terms (no copy of
  // the whole past, best once it is large).
  const appendCurrentByCopy = options.appendCurrentByCopy;

  // TopN layers share: the flattened host row table, its per-sequence offsets and T.
  const pastLength = vRowsHost ? g.op('Slice', [g.op('Shape', [vRowsHost]), g.constInt([1]), g.constInt([2])]) : ''; // [1]: T
  const lastPast = pastLength ? g.op('Sub', [pastLength, g.constInt([1])]) : '';
  const vRowsHostFlat = vRowsHost ? g.op('Reshape', [vRowsHost, g.constInt([-1])]) : '';
  const tableOffsets = rowTableOffsets ? g.op('Reshape', [rowTableOffsets, g.constInt([-1, 1, 1, 1])]) : '';
  const headRowOffsets4 = g.constInt(Array.from({ length: numKv }, (_, h) => h * blockSize), [1, numKv, 1, 1]);

  buildLlamaGraph(
    g,
    config,
    names,
    (g, layer, heads) => {
      const [q, k, v] = heads.split();
      const dense = variant.isDenseLayer[layer];
      const layerView = (name: string) => g.input(name, 'float32', [`${name}_slices`, blockSize, d]);
      const kArena = options.layerArenaViews ? layerView(IO.kArena(layer)) : groupArena(IO.kArenaGroup(arenaGroups.k[layer]));
      const hostVArena = () =>
        options.hostVAsHalves ? g.input(IO.vArena(layer), 'uint16', [`v_arena_rows_${layer}`, 2 * d]) : g.input(IO.vArena(layer), 'float32', [`v_arena_rows_${layer}`, d]);
      const deviceVArena = () => (options.layerArenaViews ? layerView(IO.vArena(layer)) : groupArena(IO.vArenaDeviceGroup(arenaGroups.deviceV[layer])));
      const vArena = dense ? deviceVArena() : hostVArena();
      // q: [B, Hkv, G, d]; k, v (the current token): [B, Hkv, 1, d]
      const kPast = paged.gather(kArena, kSlices(layer)); // [B, Hkv, T, d]
      const alpha = { float: 1 / Math.sqrt(d) };
      const scores = appendCurrentByCopy
        ? g.contribOp('FusedMatMul', [q, g.op('Concat', [kPast, k], { axis: 2 })], { transB: 1, alpha })
        : g.op('Concat', [g.contribOp('FusedMatMul', [q, kPast], { transB: 1, alpha }), g.contribOp('FusedMatMul', [q, k], { transB: 1, alpha })], { axis: -1 });
      const p = g.op('Softmax', [g.op('Add', [scores, mask])], { axis: -1 }); // [B, Hkv, G, T+1]

      let out: string; // [B, Hkv, G, d]
      if (dense) {
        const vPast = paged.gather(vArena, vSlicesDevice(layer)); // [B, Hkv, T, d]
        if (appendCurrentByCopy) {
          out = g.op('MatMul', [p, g.op('Concat', [vPast, v], { axis: 2 })]);
        } else {
          const [pPast, pCurrent] = g.opMulti('Split', [p, pastAndCurrent()], 2, { axis: -1 });
          out = g.op('Add', [g.op('MatMul', [pPast, vPast]), g.op('Mul', [pCurrent, v])]);
        }
      } else {
        const [kept, index] = g.opMulti('TopK', [p, topN], 2, { axis: -1, largest: 1, sorted: 1 }); // [B, Hkv, G, n]
        const weights = variant.renormalize
          ? g.op('Div', [kept, g.op('ReduceSum', [kept, g.constInt([-1])], { keepdims: 1 })])
          : kept;
        // The current position (index T) is not in the arena yet: its weight multiplies v directly.
        const isCurrent = g.op('Equal', [index, pastLength]);
        const pastWeights = g.op('Where', [isCurrent, zero, weights]);
        const currentWeight = g.op('ReduceSum', [g.op('Sub', [weights, pastWeights]), g.constInt([-1])], { keepdims: 1 }); // [B, Hkv, G, 1]
        const tableIndex = g.op('Add', [g.op('Min', [index, lastPast]), tableOffsets]);
        const rows = g.op('Add', [g.op('Gather', [vRowsHostFlat, tableIndex], { axis: 0 }), headRowOffsets4]);
        const gathered = g.op('Gather', [vArena, rows], { axis: 0 });
        const vSelected = options.hostVAsHalves ? float32FromHalves(g, gathered, d, 5) : gathered; // [B, Hkv, G, n, d]
        const weighted = g.op('MatMul', [g.op('Unsqueeze', [pastWeights, g.constInt([3])]), vSelected]); // [B, Hkv, G, 1, d]
        out = g.op('Add', [g.op('Squeeze', [weighted, g.constInt([3])]), g.op('Mul', [currentWeight, v])]);
      }
      return g.op('Reshape', [out, g.constInt([0, config.dim])]);
    },
    options.writeKvInPlace
      ? { lastRowLogitsOnly: false, writeNewKv: (newK, newV) => writeKvInPlace(g, variant, arenaGroups, groupArena, newK(), newV(), { blockSize, d, numKv }) }
      : { lastRowLogitsOnly: false, packOutputs: true },
  );
  return g.toBytes();
}

/**
 * ScatterND of each arena the decode graph read, with this step's rows (see buildDecodeGraph's
 * writeKvInPlace): one per K group, one per device-V group with exact layers, one per TopN layer's host V.
 */
function writeKvInPlace(
  g: GraphBuilder,
  variant: GraphVariant,
  groups: DecodeArenaGroups,
  /** Declares a group arena input (once) and returns its name. */
  groupArena: (name: string) => string,
  newK: readonly string[],
  newV: readonly string[],
  shape: { blockSize: number; d: number; numKv: number },
): void {
  const numLayers = variant.isDenseLayer.length;
  const denseLayers = variant.isDenseLayer.flatMap((dense, layer) => (dense ? [layer] : []));
  const groupShape = (name: string) => [`${name}_slices`, shape.blockSize, shape.d];
  // Layers sharing a group are consecutive (KvArenas), so their rows are one slice of the table's layer axis.
  const scatterGroups = (table: string, layers: readonly number[], groupOf: readonly number[], rows: readonly string[], arenaName: (group: number) => string) => {
    const writes = g.input(table, 'int64', ['batch', shape.numKv, layers.length, 2]);
    for (const group of new Set(layers.map((layer) => groupOf[layer]))) {
      const first = layers.findIndex((layer) => groupOf[layer] === group);
      const count = layers.filter((layer) => groupOf[layer] === group).length;
      const indices = count === layers.length ? writes : g.op('Slice', [writes, g.constInt([first]), g.constInt([first + count]), g.constInt([2])]);
      const values = count === 1 ? rows[layers[first]] : g.op('Concat', layers.slice(first, first + count).map((layer) => rows[layer]), { axis: 2 });
      const arena = groupArena(arenaName(group));
      g.output(g.op('ScatterND', [arena, indices, values]), IO.written(arena), 'float32', groupShape(arena));
    }
  };
  scatterGroups(IO.kWrites, Array.from({ length: numLayers }, (_, layer) => layer), groups.k, newK, IO.kArenaGroup);
  if (denseLayers.length > 0) scatterGroups(IO.vWritesDevice, denseLayers, groups.deviceV, newV, IO.vArenaDeviceGroup);
  if (denseLayers.length === numLayers) return;
  const hostWrites = g.input(IO.vWritesHost, 'int64', ['batch', shape.numKv, 1, 1]);
  variant.isDenseLayer.forEach((dense, layer) => {
    if (dense) return;
    const arena = IO.vArena(layer);
    g.output(g.op('ScatterND', [arena, hostWrites, newV[layer]]), IO.written(arena), 'float32', [`v_arena_rows_${layer}`, shape.d]);
  });
}
