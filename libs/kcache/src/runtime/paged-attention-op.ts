import { GraphBuilder } from './graph-builder';
import { KCACHE_OP_DOMAIN } from './kcache-ops';

/**
 * One com.kcache PagedDecodeAttention node: a layer's decode step over its paged arenas in one operator
 * (native/paged_attention.h says exactly what it computes). From the layer's QKV projection it rotates the query
 * and K rows by RoPE at each sequence's position and appends K and V to the arenas at the rows kWrites and vWrites
 * name, in place (the arenas are inputs bound to the caller's memory); then the G query rows attend: K and V are
 * read where they lie, through the slice tables, so the past is never gathered into a tensor; TopN layers select
 * their N positions and read only those V rows (on cuda, from host memory over the bus). Only sessions of the
 * kcache_ort addon with `pagedAttention` know the operator.
 *
 * projected [B, Hkv · (G + 2) · d] (per KV head G query rows, K, V); positions int64 [B]; rope cos and sin
 * [maxSeqLen, d / 2]; kArena [slices, blockSize, d]; vArena the same or [slices · blockSize, d]; slice tables int32
 * [B, Hkv, nb]; write tables int64 [B, Hkv, 1, 2] (slice, row in the block) or [B, Hkv, 1, 1] (the arena row); mask
 * [B, 1, 1, nb · blockSize] (-inf: not a position); topN int64 [1], or '' for exact attention. Returns [B, Hkv · G · d].
 */
export function pagedDecodeAttention(
  g: GraphBuilder,
  inputs: {
    projected: string;
    positions: string;
    rope: { readonly cos: string; readonly sin: string };
    kArena: string;
    kSlices: string;
    kWrites: string;
    vArena: string;
    vSlices: string;
    vWrites: string;
    mask: string;
    topN: string;
  },
  scale: number,
  renormalize: boolean,
): string {
  const { projected, positions, rope, kArena, kSlices, kWrites, vArena, vSlices, vWrites, mask, topN } = inputs;
  // The other outputs are the kernel's scratch memory and the rotated query rows, which onnxruntime allocates and
  // frees like any intermediate.
  const [out] = g.domainOpMulti(KCACHE_OP_DOMAIN, 'PagedDecodeAttention', [projected, positions, rope.cos, rope.sin, kArena, kSlices, kWrites, vArena, vSlices, vWrites, mask, topN], 3, {
    scale: { float: scale },
    renormalize: renormalize ? 1 : 0,
  });
  return out;
}
