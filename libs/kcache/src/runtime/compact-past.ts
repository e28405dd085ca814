/**
 * A sequence's past blocks copied out of an arena, block i of the sequence at slot i (at least one
 * slot, zeros, when it has none). With a resident device tier, prefill is fed these instead of the
 * whole arenas, so a GPU provider uploads only this sequence's past, not every sequence's.
 */
export function compactBlocks(arena: Float32Array, blockIds: readonly number[], numBlocks: number, floatsPerBlock: number): Float32Array {
  const compact = new Float32Array(Math.max(numBlocks, 1) * floatsPerBlock);
  for (let i = 0; i < numBlocks; i++) {
    const from = blockIds[i] * floatsPerBlock;
    compact.set(arena.subarray(from, from + floatsPerBlock), i * floatsPerBlock);
  }
  return compact;
}
