import { BLOCK, TierLayout } from './tier-layout';

/** 128 bits of a block's content hash (see prefix-hash.ts). */
export type BlockHash = Uint32Array;

/**
 * The prefix index inside the tier's control region: content hash → block id, open addressing
 * with linear probing and backward-shift deletion (no tombstones). A slot holds blockId + 1 (0 is
 * empty); the hash itself lives in the block's table entry. Call only under the tier's lock.
 */
export class PrefixIndex {
  private readonly slots: Uint32Array;
  private readonly mask: number;

  constructor(
    control: ArrayBuffer,
    private readonly layout: TierLayout,
    /** The block table (u32 over the whole control region). */
    private readonly words: Uint32Array,
  ) {
    this.slots = new Uint32Array(control, layout.indexOffset, layout.indexSlots);
    this.mask = layout.indexSlots - 1;
  }

  find(hash: BlockHash): number {
    for (let i = hash[0] & this.mask; ; i = (i + 1) & this.mask) {
      const entry = this.slots[i];
      if (entry === 0) return -1;
      if (this.hashEquals(entry - 1, hash)) return entry - 1;
    }
  }

  /** Adds a block whose table entry already holds its hash (not present yet). */
  insert(id: number): void {
    let i = this.home(id);
    while (this.slots[i] !== 0) i = (i + 1) & this.mask;
    this.slots[i] = id + 1;
  }

  remove(id: number): void {
    let i = this.home(id);
    while (this.slots[i] !== id + 1) {
      if (this.slots[i] === 0) return;
      i = (i + 1) & this.mask;
    }
    // Backward shift: pull later entries of the probe run into the hole when their home allows.
    for (;;) {
      this.slots[i] = 0;
      let j = i;
      for (;;) {
        j = (j + 1) & this.mask;
        const entry = this.slots[j];
        if (entry === 0) return;
        const home = this.home(entry - 1);
        const canMove = i <= j ? home <= i || home > j : home <= i && home > j;
        if (canMove) {
          this.slots[i] = entry;
          i = j;
          break;
        }
      }
    }
  }

  clear(): void {
    this.slots.fill(0);
  }

  private home(id: number): number {
    return this.words[this.entry(id) + BLOCK.hash] & this.mask;
  }

  private hashEquals(id: number, hash: BlockHash): boolean {
    const at = this.entry(id) + BLOCK.hash;
    return this.words[at] === hash[0] && this.words[at + 1] === hash[1] && this.words[at + 2] === hash[2] && this.words[at + 3] === hash[3];
  }

  private entry(id: number): number {
    return this.layout.blocksOffset / 4 + id * this.layout.blockEntryWords;
  }
}
