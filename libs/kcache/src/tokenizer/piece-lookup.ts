import { Llama2cVocabulary } from './llama2c-vocabulary';

/**
 * Exact-string lookup over a vocabulary's pieces, llama2.c's str_lookup, with pieces keyed as
 * latin1 strings (one char per byte) so concatenation is byte concatenation.
 * On duplicate piece strings the lowest id wins (llama2.c's bsearch leaves it unspecified).
 */
export class PieceLookup {
  readonly vocabSize: number;
  /** 0 for the highest score; -1 for pieces llama2.c never merges into (score <= -1e10 or NaN). */
  readonly mergeRank: Int32Array;
  private readonly keys: string[];
  private readonly idByKey = new Map<string, number>();
  private readonly singleByteIds = new Int32Array(256).fill(-1);
  private readonly mergeCache = new Map<number, number>();

  constructor(vocabulary: Llama2cVocabulary) {
    this.vocabSize = vocabulary.pieces.length;
    this.keys = vocabulary.pieces.map(bytesToKey);
    this.keys.forEach((key, id) => {
      if (!this.idByKey.has(key)) this.idByKey.set(key, id);
    });
    for (let byte = 0; byte < 256; byte++) this.singleByteIds[byte] = this.idByKey.get(String.fromCharCode(byte)) ?? -1;
    this.mergeRank = rankScores(vocabulary.scores);
  }

  /** Id of the piece equal to bytes[start, end), or -1. */
  idOfBytes(bytes: Uint8Array, start: number, end: number): number {
    if (end - start === 1) return this.singleByteIds[bytes[start]];
    let key = '';
    for (let i = start; i < end; i++) key += String.fromCharCode(bytes[i]);
    return this.idByKey.get(key) ?? -1;
  }

  /** Id of the piece equal to piece(left) + piece(right) if llama2.c may merge into it, else -1. */
  mergeOf(left: number, right: number): number {
    const cacheKey = left * this.vocabSize + right;
    let merged = this.mergeCache.get(cacheKey);
    if (merged === undefined) {
      const id = this.idByKey.get(this.keys[left] + this.keys[right]);
      merged = id !== undefined && this.mergeRank[id] >= 0 ? id : -1;
      this.mergeCache.set(cacheKey, merged);
    }
    return merged;
  }
}

function bytesToKey(bytes: Uint8Array): string {
  let key = '';
  for (const byte of bytes) key += String.fromCharCode(byte);
  return key;
}

/** Dense ranks of the distinct scores, highest first (equal scores share a rank). */
function rankScores(scores: Float32Array): Int32Array {
  // llama2.c starts its best-score search at -1e10 with a strict '>', so such pieces never win.
  const mergeable = (score: number): boolean => score > -1e10;
  const distinct = [...new Set(Array.from(scores).filter(mergeable))].sort((a, b) => b - a);
  const rankOf = new Map(distinct.map((score, rank) => [score, rank]));
  return Int32Array.from(scores, (score) => (mergeable(score) ? rankOf.get(score)! : -1));
}
