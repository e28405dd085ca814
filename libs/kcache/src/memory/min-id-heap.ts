/** Binary min-heap of non-negative integer ids: the pool hands out the lowest free id first. */
export class MinIdHeap {
  private readonly ids: number[] = [];

  get size(): number {
    return this.ids.length;
  }

  push(id: number): void {
    const ids = this.ids;
    let i = ids.length;
    ids.push(id);
    while (i > 0) {
      const parent = (i - 1) >> 1;
      if (ids[parent] <= id) break;
      ids[i] = ids[parent];
      i = parent;
    }
    ids[i] = id;
  }

  /** Removes and returns the smallest id; undefined when empty. */
  pop(): number | undefined {
    const ids = this.ids;
    if (ids.length === 0) return undefined;
    const top = ids[0];
    const last = ids.pop() as number;
    const n = ids.length;
    if (n > 0) {
      let i = 0;
      for (;;) {
        const left = 2 * i + 1;
        if (left >= n) break;
        const right = left + 1;
        const child = right < n && ids[right] < ids[left] ? right : left;
        if (ids[child] >= last) break;
        ids[i] = ids[child];
        i = child;
      }
      ids[i] = last;
    }
    return top;
  }
}
