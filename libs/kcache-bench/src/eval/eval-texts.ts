import { Xoshiro128Random } from '@kcache-serve/kcache/dist/model/xoshiro128-random';
import { OracleRecord } from '@kcache-serve/kcache/testing';

export interface EvalText {
  readonly id: string;
  readonly tokenIds: readonly number[];
}

/** prompt_token_ids ++ generated_token_ids: the whole text the reference generator saw. */
export function oracleTokens(record: OracleRecord): number[] {
  return [...record.prompt_token_ids, ...record.generated_token_ids];
}

/**
 * The reference check's texts: in file order, the first `count` records whose prompt plus
 * generation has at least minLength tokens, truncated to maxLength.
 */
export function oracleReferenceTexts(records: readonly OracleRecord[], count: number, minLength: number, maxLength: number): EvalText[] {
  return records
    .filter((r) => oracleTokens(r).length >= minLength)
    .slice(0, count)
    .map((r) => ({ id: r.id, tokenIds: oracleTokens(r).slice(0, maxLength) }));
}

/**
 * Long texts: every record's tokens in file order, concatenated (each starts with BOS, so stories
 * stay separated as in training) and cut into texts of exactly `length` tokens; the remainder is dropped.
 */
export function concatenatedOracleTexts(records: readonly OracleRecord[], length: number, maxTexts = Infinity): EvalText[] {
  const stream = records.flatMap(oracleTokens);
  const texts: EvalText[] = [];
  for (let start = 0; start + length <= stream.length && texts.length < maxTexts; start += length) {
    texts.push({ id: `oracle-concat-${texts.length}`, tokenIds: stream.slice(start, start + length) });
  }
  return texts;
}

/** Seeded uniform token ids (a random-weight model has no text distribution to follow). */
export function randomTexts(vocabSize: number, count: number, length: number, seed: number): EvalText[] {
  const random = new Xoshiro128Random(seed);
  return Array.from({ length: count }, (_, i) => ({
    id: `random-${seed}-${i}`,
    tokenIds: Array.from({ length }, () => random.nextUint32() % vocabSize),
  }));
}
