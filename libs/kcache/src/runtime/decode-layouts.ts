import { GraphVariant } from './graph-variant';
import { ArenaGroup, KvArenas, placeInGroups } from './kv-arenas';

/** Where decode's slice tables point: the first arena slice of each layer (K) and each exact layer (device V) in its group's buffer. */
export interface DecodeLayout {
  readonly kFirstSlice: readonly number[];
  readonly denseFirstSlice: readonly number[];
}

/** Each graph variant's DecodeLayout over one set of arenas, computed once. */
export class DecodeLayouts {
  private readonly layouts = new Map<string, DecodeLayout>();

  constructor(
    private readonly arenas: KvArenas,
    private readonly numKvHeads: number,
  ) {}

  of(variant: GraphVariant): DecodeLayout {
    let layout = this.layouts.get(variant.key);
    if (!layout) {
      const a = this.arenas;
      const firstSlice = (groups: readonly ArenaGroup[], idsPerLayer: number, layer: number) => placeInGroups(groups, layer).indexInGroup * idsPerLayer * this.numKvHeads;
      layout = {
        kFirstSlice: variant.isDenseLayer.map((_, layer) => firstSlice(a.kGroups, a.kIdsPerLayer, layer)),
        denseFirstSlice: variant.isDenseLayer.flatMap((dense, layer) => (dense ? [firstSlice(a.deviceVGroups, a.deviceVIdsPerLayer, layer)] : [])),
      };
      this.layouts.set(variant.key, layout);
    }
    return layout;
  }
}
