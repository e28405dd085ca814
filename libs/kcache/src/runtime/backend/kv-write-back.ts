import { ModelConfig } from '../../model/model-config';
import { SequenceBlocks } from '../../memory/sequence-blocks';
import { GraphVariant } from '../graph-variant';
import { KvArenas } from '../kv-arenas';
import { packedRowWidth } from '../llama-graph';

/**
 * Where a run left its new K/V rows: K of (row, KV head h, layer) starts at
 * k[row · rowStride + kOffset + layer · d + h · headStride], V likewise from v and vOffset.
 */
export interface NewKvRows {
  readonly k: Float32Array;
  readonly v: Float32Array;
  readonly rowStride: number;
  readonly kOffset: number;
  readonly vOffset: number;
  readonly headStride: number;
}

/** Where row i of a run's new K/V belongs: this position of this sequence. */
export interface KvWriteTarget {
  readonly blocks: SequenceBlocks;
  readonly position: number;
}

/** Decode's packed output: per row, logits then [Hkv, 2 · numLayers, d] (packedRowWidth). */
export function packedNewKv(packed: Float32Array, config: ModelConfig, headDim: number): NewKvRows {
  const numLayers = config.numLayers;
  const vocab = config.vocabSize;
  return { k: packed, v: packed, rowStride: packedRowWidth(config), kOffset: vocab, vOffset: vocab + numLayers * headDim, headStride: 2 * numLayers * headDim };
}

/** Prefill's new K/V outputs, each [rows, Hkv, numLayers, d]. */
export function separateNewKv(newK: Float32Array, newV: Float32Array, config: ModelConfig, headDim: number): NewKvRows {
  const numLayers = config.numLayers;
  return { k: newK, v: newV, rowStride: config.numKvHeads * numLayers * headDim, kOffset: 0, vOffset: 0, headStride: numLayers * headDim };
}

/**
 * Copies a run's new K/V rows into the host arenas: K of every layer, V into the device-V arena of
 * the exact layers and the host-V arena of the TopN layers, except host-V blocks that are read-only
 * (sealed shared prefix blocks of the node's host tier).
 */
export class KvWriteBack {
  constructor(
    private readonly arenas: KvArenas,
    private readonly isHostVBlockReadOnly?: (blockId: number) => boolean,
  ) {}

  /** Row `row` of newKv is position `position` of the sequence with these blocks. */
  write(newKv: NewKvRows, variant: GraphVariant, blocks: SequenceBlocks, position: number, row: number): void {
    const a = this.arenas;
    const d = a.headDim;
    const hostId = blocks.hostVBlockIds[Math.floor(position / a.blockSize)];
    const isHostVReadOnly = hostId !== undefined && (this.isHostVBlockReadOnly?.(hostId) ?? false);
    const rowStart = row * newKv.rowStride;
    const layers = variant.isDenseLayer;
    for (let layer = 0; layer < layers.length; layer++) {
      const dense = layers[layer];
      const k = { offset: rowStart + newKv.kOffset + layer * d, headStride: newKv.headStride };
      a.writePosition(a.k[layer], blocks.kBlockIds, position, newKv.k, k);
      if (!dense && isHostVReadOnly) continue;
      const vArena = dense ? a.deviceV[layer] : a.hostV[layer];
      const v = { offset: rowStart + newKv.vOffset + layer * d, headStride: newKv.headStride };
      a.writePosition(vArena, dense ? blocks.deviceVBlockIds : blocks.hostVBlockIds, position, newKv.v, v);
    }
  }
}
