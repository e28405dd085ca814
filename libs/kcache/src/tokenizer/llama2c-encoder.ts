import { Float64MinHeap } from './float64-min-heap';
import { PieceLookup } from './piece-lookup';

const BYTE_FALLBACK_OFFSET = 3;
const RANK_SHIFT = 2 ** 32;

/**
 * llama2.c's encode() on UTF-8 bytes, exactly: optional BOS, the dummy-prefix " " piece when the
 * text is non-empty, code-point pieces with byte fallback (id = byte + 3), then greedy merging of
 * the adjacent pair whose concatenation has the highest score, leftmost on ties. BOS takes part
 * in merging as in the reference.
 *
 * The reference rescans all pairs per merge (O(n^2)); this keeps the pairs in a heap keyed by
 * (score rank, left position), which picks the same pair each step in O(log n).
 */
export function encodeLlama2c(text: Uint8Array, lookup: PieceLookup, bosId: number | null): number[] {
  const ids = new Int32Array(text.length + 2);
  let count = 0;
  if (bosId !== null) ids[count++] = bosId;
  if (text.length > 0) {
    const space = lookup.idOfBytes(SPACE, 0, 1);
    // The reference would push -1 for a vocabulary without " "; fall back to its byte token instead.
    ids[count++] = space >= 0 ? space : SPACE[0] + BYTE_FALLBACK_OFFSET;
  }
  count = appendCodePointPieces(text, lookup, ids, count);
  return mergeGreedily(ids, count, lookup);
}

const SPACE = new Uint8Array([0x20]);

/** The reference's split: a chunk is a lead byte plus up to 3 following continuation bytes. */
function appendCodePointPieces(text: Uint8Array, lookup: PieceLookup, ids: Int32Array, count: number): number {
  let start = 0;
  for (let i = 0; i < text.length; i++) {
    if ((text[i] & 0xc0) !== 0x80) start = i;
    const chunkLength = i - start + 1;
    const next = i + 1 < text.length ? text[i + 1] : 0;
    if ((next & 0xc0) === 0x80 && chunkLength < 4) continue;
    const id = lookup.idOfBytes(text, start, i + 1);
    if (id >= 0) {
      ids[count++] = id;
    } else {
      for (let j = start; j <= i; j++) ids[count++] = text[j] + BYTE_FALLBACK_OFFSET;
    }
    start = i + 1;
  }
  return count;
}

function mergeGreedily(ids: Int32Array, count: number, lookup: PieceLookup): number[] {
  // Doubly linked list over positions; a merge keeps the left position, so list order is index order.
  const next = new Int32Array(count);
  const prev = new Int32Array(count);
  for (let i = 0; i < count; i++) {
    next[i] = i + 1 < count ? i + 1 : -1;
    prev[i] = i - 1;
  }
  const heap = new Float64MinHeap(count);
  const pushPair = (left: number): void => {
    const right = next[left];
    if (left < 0 || right < 0) return;
    const merged = lookup.mergeOf(ids[left], ids[right]);
    if (merged >= 0) heap.push(lookup.mergeRank[merged] * RANK_SHIFT + left);
  };
  for (let i = 0; i + 1 < count; i++) pushPair(i);

  while (heap.size > 0) {
    const key = heap.pop();
    const rank = Math.floor(key / RANK_SHIFT);
    const left = key - rank * RANK_SHIFT;
    const right = next[left];
    // Entries go stale when either side was merged away; the current pair must still have this rank.
    if (ids[left] < 0 || right < 0) continue;
    const merged = lookup.mergeOf(ids[left], ids[right]);
    if (merged < 0 || lookup.mergeRank[merged] !== rank) continue;
    ids[left] = merged;
    ids[right] = -1;
    next[left] = next[right];
    if (next[right] >= 0) prev[next[right]] = left;
    pushPair(prev[left]);
    pushPair(left);
  }

  const result: number[] = [];
  for (let i = count > 0 ? 0 : -1; i >= 0; i = next[i]) result.push(ids[i]);
  return result;
}
