import { RopeScaling } from '../model/model-config';
import { GraphBuilder } from './graph-builder';

/** Building blocks of a Llama layer, shared by the prefill and decode graphs. */

/** RMSNorm over the last axis: w ⊙ x / sqrt(mean(x²) + eps) (the Pow/ReduceMean pattern ORT fuses). */
export function rmsNorm(g: GraphBuilder, x: string, weight: string, eps: number): string {
  const squared = g.op('Pow', [x, g.constFloat([2], [])]);
  const meanSquare = g.op('ReduceMean', [squared], { axes: [-1], keepdims: 1 });
  const rms = g.op('Sqrt', [g.op('Add', [meanSquare, g.constFloat([eps], [])])]);
  return g.op('Mul', [g.op('Div', [x, rms]), weight]);
}

/**
 * Residual add fused with the next RMSNorm (onnxruntime contrib op).
 * Returns the normalized sum and the sum itself (the new residual stream).
 */
export function addAndRmsNorm(g: GraphBuilder, x: string, residual: string, weight: string, eps: number): { normalized: string; sum: string } {
  const [normalized, , , sum] = g.contribOpMulti('SkipSimplifiedLayerNormalization', [x, residual, weight], 4, { epsilon: { float: eps } }, [true, false, false, true]);
  return { normalized, sum };
}

/** x [.., in] · W [in, out]. */
export function linear(g: GraphBuilder, x: string, weightT: string): string {
  return g.op('MatMul', [x, weightT]);
}

/**
 * RoPE inverse frequency of each rotated pair j (0..headDim/2): theta^(-2j/headDim) in fp32, as the
 * reference computes it, then the config's frequency scaling (Hugging Face's rope_scaling).
 */
export function ropeInverseFrequencies(headDim: number, theta: number, scaling: RopeScaling | null = null): number[] {
  const base = Array.from({ length: headDim / 2 }, (_, j) => Math.fround(1 / Math.fround(Math.pow(theta, Math.fround((2 * j) / headDim)))));
  if (scaling === null) return base;
  if (scaling.type === 'linear') return base.map((f) => Math.fround(f / scaling.factor));
  const { factor, lowFreqFactor, highFreqFactor, originalMaxPositions } = scaling;
  const lowFreqWavelength = originalMaxPositions / lowFreqFactor;
  const highFreqWavelength = originalMaxPositions / highFreqFactor;
  return base.map((f) => {
    const wavelength = (2 * Math.PI) / f;
    if (wavelength < highFreqWavelength) return f;
    if (wavelength > lowFreqWavelength) return Math.fround(f / factor);
    const smooth = (originalMaxPositions / wavelength - lowFreqFactor) / (highFreqFactor - lowFreqFactor);
    return Math.fround(((1 - smooth) * f) / factor + smooth * f);
  });
}

/**
 * Rotary tables for the fused projection laid out as [Hkv, G + 2, headDim] (per KV head: G query
 * heads, its K head, its V head). Interleaved-pair layout (Meta / GPT-J): pair (2j, 2j+1) of every
 * q and k head rotates by pos · inverseFrequencies[j]. Applied as x·cos + x[swap]·sinSigned, where
 * swap exchanges the members of each pair and sinSigned is -sin on even and +sin on odd columns;
 * V columns get cos 1 and sin 0, so they pass unchanged. Angles are computed in fp32, as the
 * reference computes them, with the sign in the angle: sin(-a) = -sin(a) and cos(-a) = cos(a).
 */
export function rotaryTables(
  g: GraphBuilder,
  positions: string,
  shape: { numKvHeads: number; group: number; headDim: number; inverseFrequencies: readonly number[] },
): { cos: string; sinSigned: string; swapIndex: string } {
  const { numKvHeads, group, headDim, inverseFrequencies } = shape;
  const width = numKvHeads * (group + 2) * headDim;
  const signedInverseFrequency: number[] = [];
  const swap: number[] = [];
  for (let c = 0; c < width; c++) {
    const isV = Math.floor(c / headDim) % (group + 2) === group + 1;
    const j = Math.floor((c % headDim) / 2);
    signedInverseFrequency.push(isV ? 0 : c % 2 === 0 ? -inverseFrequencies[j] : inverseFrequencies[j]);
    swap.push(isV ? c : c % 2 === 0 ? c + 1 : c - 1);
  }
  const pos = g.op('Unsqueeze', [g.op('Cast', [positions], { to: 1 }), g.constInt([1])]); // [rows, 1]
  const signedAngles = g.op('Mul', [pos, g.constFloat(signedInverseFrequency, [1, width])]); // [rows, width]
  return { cos: g.op('Cos', [signedAngles]), sinSigned: g.op('Sin', [signedAngles]), swapIndex: g.constInt(swap) };
}

export function applyRotary(g: GraphBuilder, x: string, tables: { cos: string; sinSigned: string; swapIndex: string }): string {
  const swapped = g.op('Gather', [x, tables.swapIndex], { axis: 1 });
  return g.op('Add', [g.op('Mul', [x, tables.cos]), g.op('Mul', [swapped, tables.sinSigned])]);
}

/** SwiGLU feed-forward: W2 · (SiLU(W1·m) ⊙ W3·m), with W1 and W3 fused into one [dim, 2·hidden] matrix. */
export function swiGlu(g: GraphBuilder, m: string, w13T: string, w2T: string, hiddenDim: number): string {
  const gateUp = linear(g, m, w13T);
  const [gate, up] = g.opMulti('Split', [gateUp, g.constInt([hiddenDim, hiddenDim])], 2, { axis: -1 });
  const silu = g.op('Mul', [gate, g.op('Sigmoid', [gate])]);
  return linear(g, g.op('Mul', [silu, up]), w2T);
}
