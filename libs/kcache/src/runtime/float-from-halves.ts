import { GraphBuilder } from './graph-builder';

/**
 * fp32 values rebuilt, exactly, from their bytes read as two little-endian uint16 halves, as fp32
 * or fp64. ONNX (opset 17) has no bitcast, so: with hi = sign · 2^15 + exponent · 2^7 + top 7
 * mantissa bits and lo the low 16 mantissa bits,
 *   value = scale[hi] · (lead[hi] + lo · 2^-23)
 * where scale[hi] = ±2^(exponent - 127) (2^-126 for subnormals) and lead[hi] = (exponent > 0) +
 * top bits · 2^-7. lead + lo · 2^-23 fits fp32's 24-bit significand and scale is a power of two, so
 * every step is exact (fp32 on a GPU may flush subnormals to zero; exponent 255 gives ±Infinity).
 *
 * In fp64 no GPU provider has kernels for these nodes, so onnxruntime keeps them on the CPU provider:
 * the decode graph uses that to keep the host-tier V rows on the host (see buildDecodeGraph).
 *
 * halves: [..., 2 · width] uint16 (the rows of an fp32 arena viewed as uint16), rank `rank`.
 * Returns [..., width] of `type`.
 */
export function floatFromHalves(g: GraphBuilder, halves: string, width: number, rank: number, type: 'float32' | 'float64'): string {
  const tables = tablesOf(g, type);
  const keep = Array.from({ length: rank - 1 }, () => 0);
  const pairs = g.op('Reshape', [g.op('Cast', [halves], { to: ONNX_TYPE[type] }), g.constInt([...keep, width, 2])]);
  const [lo, hi] = g.opMulti('Split', [pairs], 2, { axis: -1 }).map((half) => g.op('Reshape', [half, g.constInt([...keep, width])]));
  const hiIndex = g.op('Cast', [hi], { to: INT64 });
  const scale = g.op('Gather', [tables.scale, hiIndex], { axis: 0 });
  const lead = g.op('Gather', [tables.lead, hiIndex], { axis: 0 });
  return g.op('Mul', [scale, g.op('Add', [lead, g.op('Mul', [lo, tables.loUnit])])]);
}

const ONNX_TYPE = { float32: 1, float64: 11 } as const;
const INT64 = 7;

interface Tables {
  readonly scale: string;
  readonly lead: string;
  /** 2^-23 as a scalar. */
  readonly loUnit: string;
}

/** The two 65536-entry tables, added to a graph once per type however many layers decode halves. */
const graphTables = new WeakMap<GraphBuilder, Partial<Record<'float32' | 'float64', Tables>>>();

function tablesOf(g: GraphBuilder, type: 'float32' | 'float64'): Tables {
  const byType = graphTables.get(g) ?? {};
  graphTables.set(g, byType);
  let tables = byType[type];
  if (!tables) {
    const { scale, lead } = halfTables();
    tables =
      type === 'float32'
        ? { scale: g.weight('float32_hi_scale', scale, [65536]), lead: g.weight('float32_hi_lead', lead, [65536]), loUnit: g.constFloat([2 ** -23], []) }
        : {
            scale: g.weightFloat64('float64_hi_scale', Float64Array.from(scale), [65536]),
            lead: g.weightFloat64('float64_hi_lead', Float64Array.from(lead), [65536]),
            loUnit: g.weightFloat64('float64_lo_unit', Float64Array.of(2 ** -23), []),
          };
    byType[type] = tables;
  }
  return tables;
}

let cachedTables: { scale: Float32Array; lead: Float32Array } | null = null;

/** scale[hi] and lead[hi] for every upper half of an fp32 (see floatFromHalves). */
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
