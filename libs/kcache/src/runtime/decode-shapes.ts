/**
 * Decode shapes in steps (BackendGraphOptions.fixedShapes): a batch and a past padded up to the next step, so the
 * shapes of a run repeat and a CUDA graph captured for them is replayed, not captured again each step.
 * Batches: 1, 2, 4, 8, then multiples of 8 up to 64, then of 32 (past 8, at most 7 padded rows up to 64 and 31 after).
 * Past blocks: multiples of 8 up to 64 (128 positions at blocks of 16), at least 8; past 64, eight steps per
 * doubling (at most an eighth more blocks than asked for), so a long context makes tens of shapes, not hundreds.
 */
export function paddedBatch(batch: number): number {
  if (batch <= 8) return batch <= 1 ? 1 : 2 ** Math.ceil(Math.log2(batch));
  return batch <= 64 ? Math.ceil(batch / 8) * 8 : Math.ceil(batch / 32) * 32;
}

export function paddedBlocks(blocks: number): number {
  const step = blocks <= 64 ? 8 : 2 ** (Math.ceil(Math.log2(blocks)) - 4);
  return Math.max(8, Math.ceil(blocks / step) * step);
}
