import { GraphBuilder } from './graph-builder';

/** The kcache_ort addon's operator domain (native/paged_attention_op.cc). */
export const KCACHE_OP_DOMAIN = 'com.kcache';

/**
 * One com.kcache PagedDecodeAttention node: a layer's decode attention over its paged arenas in one kernel
 * (native/paged_attention.h says exactly what it computes). It reads K and V where they lie, through the
 * slice tables, so the past is never gathered into a tensor; TopN layers select their N positions and read
 * only those V rows (on cuda, from host memory over the bus). Only sessions of the kcache_ort addon with
 * `pagedAttention` know the operator.
 *
 * q [B, Hkv, G, d]; arenas [slices, blockSize, d]; slice tables int32 [B, Hkv, nb]; mask [B, 1, 1, nb · blockSize]
 * (-inf: not a position); topN int64 [1], or '' for exact attention. Returns [B, Hkv, G, d].
 */
export function pagedDecodeAttention(
  g: GraphBuilder,
  inputs: { q: string; kArena: string; kSlices: string; vArena: string; vSlices: string; mask: string; topN: string },
  scale: number,
  renormalize: boolean,
): string {
  const { q, kArena, kSlices, vArena, vSlices, mask, topN } = inputs;
  // The second output is the kernel's scratch memory, which onnxruntime allocates and frees like any intermediate.
  const [out] = g.domainOpMulti(KCACHE_OP_DOMAIN, 'PagedDecodeAttention', [q, kArena, kSlices, vArena, vSlices, mask, topN], 2, {
    scale: { float: scale },
    renormalize: renormalize ? 1 : 0,
  });
  return out;
}
