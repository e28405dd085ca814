import { GraphBuilder } from './graph-builder';

/**
 * Gathers whole KV blocks from an arena viewed as [numIds · Hkv, blockSize · d] (a block id's
 * Hkv head slices are consecutive, each blockSize · d floats): one index per block and head,
 * then a free reshape to positions.
 */
export class PagedGather {
  constructor(
    private readonly g: GraphBuilder,
    private readonly numKvHeads: number,
    private readonly headDim: number,
  ) {}

  /** Prefill: blocks [nb] → arena slice indices [Hkv, 1, nb]. (Decode gets its slice indices as an input, IO.kvSlices.) */
  sliceIndicesByHead(blocks: string): string {
    const g = this.g;
    const heads = g.constInt(Array.from({ length: this.numKvHeads }, (_, h) => h), [this.numKvHeads, 1, 1]);
    return g.op('Add', [g.op('Mul', [g.op('Reshape', [blocks, g.constInt([1, 1, -1])]), g.constInt([this.numKvHeads], [])]), heads]);
  }

  /** [..., nb] slice indices → [..., nb · blockSize, d] positions. */
  gather(arena: string, sliceIndices: string): string {
    const g = this.g;
    const slices = g.op('Gather', [arena, sliceIndices], { axis: 0 });
    return g.op('Reshape', [slices, g.constInt([0, 0, -1, this.headDim])]);
  }
}
