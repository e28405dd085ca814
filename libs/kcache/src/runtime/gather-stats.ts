import { GraphVariant, hasTopNLayer } from './graph-variant';
import { DecodeItem } from './run-items';

/**
 * V rows the decode graphs gathered from the host tier (B · numHeads · min(N, T+1) per TopN layer,
 * T the batch's padded past) and the time of those runs.
 */
export class GatherStats {
  private numRows = 0;
  private decodeMs = 0;

  constructor(
    private readonly numHeads: number,
    private readonly blockSize: number,
  ) {}

  get numHostVRows(): number {
    return this.numRows;
  }

  get hostVRowsPerSecond(): number {
    return this.decodeMs > 0 ? (this.numRows * 1000) / this.decodeMs : 0;
  }

  /** A decode run of `items` that took `ms`; runs without TopN layers gather nothing. */
  recordDecode(variant: GraphVariant, topN: number, items: readonly DecodeItem[], ms: number): void {
    if (!hasTopNLayer(variant)) return;
    let maxPosition = 0;
    for (const item of items) maxPosition = Math.max(maxPosition, item.position);
    const past = Math.ceil(maxPosition / this.blockSize) * this.blockSize;
    let numTopNLayers = 0;
    for (const dense of variant.isDenseLayer) if (!dense) numTopNLayers++;
    this.numRows += items.length * this.numHeads * Math.min(topN, past + 1) * numTopNLayers;
    this.decodeMs += ms;
  }
}
