import { ModelConfig } from '../model/model-config';
import { GraphInputs } from './backend/execution-backend';
import { IO } from './graph-io';
import { GraphVariant, hasTopNLayer } from './graph-variant';
import { DecodeLayouts } from './decode-layouts';
import { KvArenas } from './kv-arenas';
import { paddedBatch, paddedBlocks } from './decode-shapes';
import { FeedBuffers, fillRowTable, fillSliceTable } from './row-tables';
import { DecodeItem } from './run-items';

/**
 * A decode batch's small input tables (tokens, positions, mask, arena slice tables, host-V row
 * tables, topN), in typed arrays kept from step to step (FeedBuffers). The backend adds the arenas.
 */
export class DecodeInputs {
  private readonly kept = new FeedBuffers();
  private keptInUse = false;
  private readonly layouts: DecodeLayouts;

  constructor(
    private readonly config: ModelConfig,
    private readonly arenas: KvArenas,
    /** How the backend's decode graph reads the past (BackendGraphOptions.layerArenaViews, currentRowInArena). */
    private readonly graphOptions: { readonly layerArenaViews?: boolean; readonly currentRowInArena?: boolean; readonly pagedAttention?: boolean; readonly fixedShapes?: boolean } = {},
  ) {
    this.layouts = new DecodeLayouts(arenas, config.numKvHeads);
  }

  /**
   * Buffers for one decode's inputs, held until release(): the kept ones, unless another decode is
   * between filling them and its run (then new ones).
   */
  acquire(): FeedBuffers {
    if (this.keptInUse) return new FeedBuffers();
    this.keptInUse = true;
    return this.kept;
  }

  release(buffers: FeedBuffers): void {
    if (buffers === this.kept) this.keptInUse = false;
  }

  /** The inputs in `buffers` (from acquire). */
  build(buffers: FeedBuffers, items: readonly DecodeItem[], variant: GraphVariant, topN: number): GraphInputs {
    // fixedShapes: rows past the items pad the batch (token 0 at position 0, every column masked).
    const fixed = this.graphOptions.fixedShapes ?? false;
    const batch = fixed ? paddedBatch(items.length) : items.length;
    const blockSize = this.arenas.blockSize;
    // With currentRowInArena the past the graph reads includes the current position (written before it is read).
    const inArena = this.graphOptions.currentRowInArena ? 1 : 0;
    let numBlocks = 0;
    for (const item of items) numBlocks = Math.max(numBlocks, Math.ceil((item.position + inArena) / blockSize));
    if (fixed) numBlocks = paddedBlocks(numBlocks);
    const past = numBlocks * blockSize;
    const columns = inArena ? past : past + 1;
    const numKv = this.config.numKvHeads;
    const layout = this.layouts.of(variant);
    const numLayers = layout.kFirstSlice.length;
    const numDense = layout.denseFirstSlice.length;
    const tokens = buffers.int64(IO.tokens, [batch]);
    const positions = buffers.int64(IO.positions, [batch]);
    const mask = buffers.float32(IO.mask, [batch, 1, 1, columns]);
    const views = this.graphOptions.layerArenaViews ?? false;
    const slices = views ? buffers.int32(IO.kSlices, [batch, numKv, numBlocks]) : buffers.int32(IO.kvSlices, [numLayers + numDense, batch, numKv, numBlocks]);
    const vSlicesDevice = views && numDense > 0 ? buffers.int32(IO.vSlicesDevice, [batch, numKv, numBlocks]) : null;
    // TopN layers find host V by row (vRowsHost), or with the paged attention operator by slice like K (vSlicesHost).
    const paged = (this.graphOptions.pagedAttention ?? false) && hasTopNLayer(variant);
    const vRowsHost = hasTopNLayer(variant) && !paged ? buffers.int64(IO.vRowsHost, [batch, past]) : null;
    const vSlicesHost = paged ? buffers.int32(IO.vSlicesHost, [batch, numKv, numBlocks]) : null;
    mask.values.fill(-Infinity, items.length * columns);
    for (let b = 0; b < items.length; b++) {
      const item = items[b];
      tokens.table.set(b, item.tokenId);
      positions.table.set(b, item.position);
      mask.values.fill(-Infinity, b * columns + item.position + inArena, b * columns + past);
      const numItemBlocks = Math.ceil((item.position + inArena) / blockSize);
      if (views) {
        fillSliceTable(slices.table, b * numKv * numBlocks, item.blocks.kBlockIds, numItemBlocks, numKv, numBlocks, 0);
        if (vSlicesDevice) fillSliceTable(vSlicesDevice.table, b * numKv * numBlocks, item.blocks.deviceVBlockIds, numItemBlocks, numKv, numBlocks, 0);
        if (vSlicesHost) fillSliceTable(vSlicesHost.table, b * numKv * numBlocks, item.blocks.hostVBlockIds, numItemBlocks, numKv, numBlocks, 0);
      }
      // Table t of sequence b starts at (t · batch + b) · Hkv · numBlocks.
      for (let l = 0; l < (views ? 0 : numLayers); l++) {
        fillSliceTable(slices.table, (l * batch + b) * numKv * numBlocks, item.blocks.kBlockIds, numItemBlocks, numKv, numBlocks, layout.kFirstSlice[l]);
      }
      for (let i = 0; i < (views ? 0 : numDense); i++) {
        const at = ((numLayers + i) * batch + b) * numKv * numBlocks;
        fillSliceTable(slices.table, at, item.blocks.deviceVBlockIds, numItemBlocks, numKv, numBlocks, layout.denseFirstSlice[i]);
      }
      if (vRowsHost) fillRowTable(vRowsHost.table, b * past, this.arenas, item.blocks.hostVBlockIds, item.position + inArena);
    }
    const inputs: GraphInputs = {
      [IO.tokens]: tokens.tensor,
      [IO.positions]: positions.tensor,
      [IO.mask]: mask.tensor,
      [views ? IO.kSlices : IO.kvSlices]: slices.tensor,
    };
    if (vSlicesDevice) inputs[IO.vSlicesDevice] = vSlicesDevice.tensor;
    if (hasTopNLayer(variant)) {
      const keep = buffers.int64(IO.topN, [1]); // a kept slot: the native backend binds it once, not every step
      keep.table.set(0, Math.min(topN, columns));
      inputs[IO.topN] = keep.tensor;
    }
    if (vSlicesHost) inputs[IO.vSlicesHost] = vSlicesHost.tensor;
    if (vRowsHost) {
      inputs[IO.vRowsHost] = vRowsHost.tensor;
      const offsets = buffers.int64(IO.rowTableOffsets, [batch]);
      for (let b = 0; b < batch; b++) offsets.table.set(b, b * past);
      inputs[IO.rowTableOffsets] = offsets.tensor;
    }
    return inputs;
  }
}
