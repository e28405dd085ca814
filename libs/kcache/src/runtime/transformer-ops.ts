import { RopeScaling } from '../model/model-config';
import { GraphBuilder } from './graph-builder';
import { swiGluGate } from './kcache-ops';

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
 * A RoPE table for onnxruntime's RotaryEmbedding (cos or sin), [numPositions, headDim / 2]: row p,
 * column j is fn(p · inverseFrequencies[j]), the angle rounded to fp32 as the reference computes it.
 */
export function rotaryTable(inverseFrequencies: readonly number[], numPositions: number, fn: (angle: number) => number): Float32Array {
  const half = inverseFrequencies.length;
  const table = new Float32Array(numPositions * half);
  for (let p = 0; p < numPositions; p++) {
    for (let j = 0; j < half; j++) table[p * half + j] = fn(Math.fround(p * inverseFrequencies[j]));
  }
  return table;
}

/**
 * Position ids for applyRotary, [rows, G + 2]: every head slot of the grouped layout (G query heads,
 * the K head, the V head) rotates by its row's position, except V, which gets position 0 (angle 0:
 * cos 1, sin 0), so it passes unchanged.
 */
export function rotaryPositionIds(g: GraphBuilder, positions: string, group: number): string {
  const rotates = [...Array.from({ length: group + 1 }, () => 1), 0];
  return g.op('Mul', [g.op('Unsqueeze', [positions, g.constInt([1])]), g.constInt(rotates, [1, group + 2])]);
}

/**
 * RoPE on the fused projection in the grouped layout, qkv [rows, Hkv, G + 2, d], by onnxruntime's
 * RotaryEmbedding (one node) read as [batch = rows, heads = Hkv, sequence = G + 2, head size = d]
 * with positionIds from rotaryPositionIds. Interleaved-pair layout (Meta / GPT-J): pair (2j, 2j+1)
 * of every q and k head rotates by pos · inverseFrequencies[j].
 */
export function applyRotary(g: GraphBuilder, qkv: string, positionIds: string, tables: { cos: string; sin: string }): string {
  return g.contribOp('RotaryEmbedding', [qkv, positionIds, tables.cos, tables.sin], { interleaved: 1 });
}

/**
 * SwiGLU feed-forward: W2 · (SiLU(W1·m) ⊙ W3·m), with W1 and W3 fused into one [dim, 2·hidden] matrix. The gate is
 * Split, Sigmoid, Mul and Mul, or with `kcacheOp` one com.kcache SwiGlu node (sessions of the kcache_ort addon with
 * its operators; m must be [rows, dim]).
 */
export function swiGlu(g: GraphBuilder, m: string, w13T: string, w2T: string, hiddenDim: number, kcacheOp = false): string {
  const gateUp = linear(g, m, w13T);
  if (kcacheOp) return linear(g, swiGluGate(g, gateUp), w2T);
  const [gate, up] = g.opMulti('Split', [gateUp, g.constInt([hiddenDim, hiddenDim])], 2, { axis: -1 });
  const silu = g.op('Mul', [gate, g.op('Sigmoid', [gate])]);
  return linear(g, g.op('Mul', [silu, up]), w2T);
}
