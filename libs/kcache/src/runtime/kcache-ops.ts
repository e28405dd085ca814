import { GraphBuilder } from './graph-builder';

/** The kcache_ort addon's operator domain (native/kcache_ops.cc): PagedDecodeAttention (paged-attention-op.ts) and SwiGlu. */
export const KCACHE_OP_DOMAIN = 'com.kcache';

/**
 * One com.kcache SwiGlu node: silu(gate) · up for gateUp [rows, 2 · hidden] (the gate the first half of each row),
 * [rows, hidden] (native/swiglu.h). Only sessions of the kcache_ort addon with its operators know it.
 */
export function swiGluGate(g: GraphBuilder, gateUp: string): string {
  return g.domainOpMulti(KCACHE_OP_DOMAIN, 'SwiGlu', [gateUp], 1)[0];
}
