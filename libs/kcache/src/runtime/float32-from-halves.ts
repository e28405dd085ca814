import { GraphBuilder } from './graph-builder';

/**
 * fp32 values rebuilt, exactly, from their bytes read as two little-endian uint16 halves. ONNX (opset
 * 17) has no bitcast, so: with hi = sign · 2^15 + exponent · 2^7 + top 7 mantissa bits and lo the
 * low 16 mantissa bits,
 *   value = scale[hi] · (lead[hi] + lo · 2^-23)
 * where scale[hi] = ±2^(exponent - 127) (2^-126 for subnormals) and lead[hi] = (exponent > 0) +
 * top bits · 2^-7. lead + lo · 2^-23 fits fp32's 24-bit significand and scale is a power of two, so
 * every step is exact (a GPU may flush subnormals to zero; exponent 255 gives ±Infinity).
 *
 * halves: [..., 2 · width] uint16 (the rows of an fp32 arena viewed as uint16), rank `rank`.
 * Returns [..., width] float32.
 */
export function float32FromHalves(g: GraphBuilder, halves: string, width: number, rank: number): string {
  const tables = tablesOf(g);
  const keep = Array.from({ length: rank - 1 }, () => 0);
  const pairs = g.op('Reshape', [g.op('Cast', [halves], { to: FLOAT }), g.constInt([...keep, width, 2])]);
  const [lo, hi] = g.opMulti('Split', [pairs], 2, { axis: -1 }).map((half) => g.op('Reshape', [half, g.constInt([...keep, width])]));
  const hiIndex = g.op('Cast', [hi], { to: INT64 });
  const scale = g.op('Gather', [tables.scale, hiIndex], { axis: 0 });
  const lead = g.op('Gather', [tables.lead, hiIndex], { axis: 0 });
  return g.op('Mul', [scale, g.op('Add', [lead, g.op('Mul', [lo, g.constFloat([2 ** -23], [])])])]);
}

const FLOAT = 1;
const INT64 = 7;

/** The two 65536-entry tables, added to a graph once however many layers decode halves. */
const graphTables = new WeakMap<GraphBuilder, { scale: string; lead: string }>();

function tablesOf(g: GraphBuilder): { scale: string; lead: string } {
  let tables = graphTables.get(g);
  if (!tables) {
    const { scale, lead } = halfTables();
    tables = { scale: g.weight('float32_hi_scale', scale, [65536]), lead: g.weight('float32_hi_lead', lead, [65536]) };
    graphTables.set(g, tables);
  }
  return tables;
}

let cachedTables: { scale: Float32Array; lead: Float32Array } | null = null;

/** scale[hi] and lead[hi] for every upper half of an fp32 (see float32FromHalves). */
export function halfTables(): { scale: Float32Array; lead: Float32Array } {
  if (!cachedTables) {
    const scale = new Float32Array(65536);
    const lead = new Float32Array(65536);
    for (let hi = 0; hi < 65536; hi++) {
      const sign = hi >= 32768 ? -1 : 1;
      const exponent = (hi >> 7) & 255;
      const topBits = hi & 127;
      scale[hi] = sign * 2 ** (exponent === 0 ? -126 : exponent - 127);
      lead[hi] = (exponent === 0 ? 0 : 1) + topBits * 2 ** -7;
    }
    cachedTables = { scale, lead };
  }
  return cachedTables;
}
