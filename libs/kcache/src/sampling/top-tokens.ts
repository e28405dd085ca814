/**
 * Partial selection over unnormalised probabilities `weights` ([vocab], float64). Order is
 * probability descending, then token id ascending: on an exact tie the lower id ranks first.
 */

function isBetter(weights: Float64Array, a: number, b: number): boolean {
  return weights[a] > weights[b] || (weights[a] === weights[b] && a < b);
}

/** The k best ids, best first. O(vocab · log k), no full sort. */
export function topKIds(weights: Float64Array, k: number): Int32Array {
  const numIds = Math.min(k, weights.length);
  // Min-heap by rank: heap[0] is the worst of the best numIds seen so far.
  const heap = new Int32Array(numIds);
  let size = 0;
  const siftDown = (i: number): void => {
    const id = heap[i];
    for (;;) {
      const left = 2 * i + 1;
      if (left >= size) break;
      const right = left + 1;
      const child = right < size && isBetter(weights, heap[left], heap[right]) ? right : left;
      if (!isBetter(weights, id, heap[child])) break;
      heap[i] = heap[child];
      i = child;
    }
    heap[i] = id;
  };
  for (let id = 0; id < weights.length; id++) {
    if (size < numIds) {
      let i = size++;
      while (i > 0) {
        const parent = (i - 1) >> 1;
        if (!isBetter(weights, heap[parent], id)) break;
        heap[i] = heap[parent];
        i = parent;
      }
      heap[i] = id;
    } else if (isBetter(weights, id, heap[0])) {
      heap[0] = id;
      siftDown(0);
    }
  }
  return heap.sort((a, b) => (isBetter(weights, a, b) ? -1 : 1));
}

/**
 * The smallest best-first prefix of the ids with positive weight whose weights sum to at least
 * topP · totalWeight (at least one id). A max-heap is built in O(vocab) and popped only as far
 * as the nucleus reaches.
 */
export function nucleusIds(weights: Float64Array, totalWeight: number, topP: number): Int32Array {
  const heap = new Int32Array(weights.length);
  let size = 0;
  for (let id = 0; id < weights.length; id++) if (weights[id] > 0) heap[size++] = id;
  const siftDown = (i: number): void => {
    const id = heap[i];
    for (;;) {
      const left = 2 * i + 1;
      if (left >= size) break;
      const right = left + 1;
      const child = right < size && isBetter(weights, heap[right], heap[left]) ? right : left;
      if (!isBetter(weights, heap[child], id)) break;
      heap[i] = heap[child];
      i = child;
    }
    heap[i] = id;
  };
  for (let i = (size >> 1) - 1; i >= 0; i--) siftDown(i);
  const kept: number[] = [];
  const targetWeight = topP * totalWeight;
  let keptWeight = 0;
  while (size > 0 && (kept.length === 0 || keptWeight < targetWeight)) {
    const best = heap[0];
    kept.push(best);
    keptWeight += weights[best];
    heap[0] = heap[--size];
    siftDown(0);
  }
  return Int32Array.from(kept);
}

/** The smallest prefix of best-first ids whose weights sum to at least topP of their total (>= 1 id). */
export function nucleusPrefix(weights: Float64Array, bestFirstIds: Int32Array, topP: number): Int32Array {
  let totalWeight = 0;
  for (const id of bestFirstIds) totalWeight += weights[id];
  const targetWeight = topP * totalWeight;
  let keptWeight = 0;
  let numKept = 0;
  while (numKept < bestFirstIds.length && (numKept === 0 || keptWeight < targetWeight)) {
    keptWeight += weights[bestFirstIds[numKept++]];
  }
  return bestFirstIds.subarray(0, numKept);
}
