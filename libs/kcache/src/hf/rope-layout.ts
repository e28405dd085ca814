/**
 * Hugging Face Llama checkpoints rotate halves: within a head of d rows, row i pairs with row
 * i + d/2. The engine (and llama2.c, Meta, GGUF's llama) rotates adjacent pairs (2i, 2i+1). Both
 * pair frequency i with the same angle, so moving HF row i to 2i and row i + d/2 to 2i+1, in wq and
 * wk (and their biases) alike, gives the same attention scores.
 *
 * m: [numHeads · d, rowWidth] row-major; returns a permuted copy.
 */
export function rotateHalfToInterleaved(m: Float32Array, numHeads: number, headDim: number): Float32Array {
  return permuteHeadRows(m, numHeads, headDim, (i) => (i < headDim / 2 ? 2 * i : 2 * (i - headDim / 2) + 1));
}

/** The inverse of rotateHalfToInterleaved. */
export function interleavedToRotateHalf(m: Float32Array, numHeads: number, headDim: number): Float32Array {
  return permuteHeadRows(m, numHeads, headDim, (i) => (i % 2 === 0 ? i / 2 : headDim / 2 + (i - 1) / 2));
}

/** Row i of every head moves to row target(i) of that head. */
function permuteHeadRows(m: Float32Array, numHeads: number, headDim: number, target: (row: number) => number): Float32Array {
  const rowWidth = m.length / (numHeads * headDim);
  const out = new Float32Array(m.length);
  for (let h = 0; h < numHeads; h++) {
    for (let i = 0; i < headDim; i++) {
      const from = (h * headDim + i) * rowWidth;
      out.set(m.subarray(from, from + rowWidth), (h * headDim + target(i)) * rowWidth);
    }
  }
  return out;
}
