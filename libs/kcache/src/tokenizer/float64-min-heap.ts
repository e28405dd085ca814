/** Binary min-heap of float64 keys in a growable Float64Array (no per-entry objects). */
export class Float64MinHeap {
  private keys: Float64Array;
  private count = 0;

  constructor(initialCapacity = 16) {
    this.keys = new Float64Array(Math.max(16, initialCapacity));
  }

  get size(): number {
    return this.count;
  }

  push(key: number): void {
    if (this.count === this.keys.length) {
      const grown = new Float64Array(this.keys.length * 2);
      grown.set(this.keys);
      this.keys = grown;
    }
    const keys = this.keys;
    let i = this.count++;
    while (i > 0) {
      const parent = (i - 1) >> 1;
      if (keys[parent] <= key) break;
      keys[i] = keys[parent];
      i = parent;
    }
    keys[i] = key;
  }

  /** Removes and returns the smallest key; the heap must not be empty. */
  pop(): number {
    const keys = this.keys;
    const top = keys[0];
    const last = keys[--this.count];
    const n = this.count;
    let i = 0;
    for (;;) {
      let child = 2 * i + 1;
      if (child >= n) break;
      if (child + 1 < n && keys[child + 1] < keys[child]) child++;
      if (keys[child] >= last) break;
      keys[i] = keys[child];
      i = child;
    }
    if (n > 0) keys[i] = last;
    return top;
  }
}
