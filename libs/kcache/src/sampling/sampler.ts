import assert from 'node:assert/strict';
import { SamplingParams } from './sampling-params';
import { uniformAt } from './seeded-random';
import { nucleusIds, nucleusPrefix, topKIds } from './top-tokens';

export interface SampledToken {
  readonly tokenId: number;
  /** ln softmax(raw logits)[tokenId], temperature 1; present when asked for. */
  readonly logprob?: number;
}

/**
 * Picks the next token from one row of logits ([vocab]). temperature 0: argmax, lowest id on an
 * exact tie. Otherwise softmax(logits / temperature), then top-k, then top-p on what top-k kept,
 * then one draw uniformAt(seed, tokenIndex): a pure function of (logits, params, tokenIndex).
 * NaN logits count as -Infinity. params must have passed validateSamplingParams.
 */
export function sampleToken(
  logits: Float32Array,
  params: SamplingParams,
  tokenIndex: number,
  wantLogprob: boolean,
): SampledToken {
  assert.ok(logits.length > 0, 'empty logits');
  const tokenId = params.temperature === 0 ? argmax(logits) : sampleTempered(logits, params, uniformAt(params.seed, tokenIndex));
  return wantLogprob ? { tokenId, logprob: logSoftmaxAt(logits, tokenId) } : { tokenId };
}

/** Index of the largest logit; the lowest such index on an exact tie. */
export function argmax(logits: Float32Array): number {
  let bestId = 0;
  let bestLogit = -Infinity;
  for (let id = 0; id < logits.length; id++) {
    if (logits[id] > bestLogit) {
      bestLogit = logits[id];
      bestId = id;
    }
  }
  return bestId;
}

/** ln softmax(logits)[tokenId], with the max subtracted first; float64 sums. */
export function logSoftmaxAt(logits: Float32Array, tokenId: number): number {
  const maxLogit = maxOf(logits);
  if (maxLogit === -Infinity) return -Infinity;
  if (maxLogit === Infinity) return logits[tokenId] === Infinity ? -Math.log(countOf(logits, Infinity)) : -Infinity;
  let sumExp = 0;
  for (let id = 0; id < logits.length; id++) {
    const logit = logits[id];
    if (logit === logit) sumExp += Math.exp(logit - maxLogit);
  }
  const logit = logits[tokenId];
  return logit === logit ? logit - maxLogit - Math.log(sumExp) : -Infinity;
}

function sampleTempered(logits: Float32Array, params: SamplingParams, uniform: number): number {
  const vocabSize = logits.length;
  const maxLogit = maxOf(logits);
  assert.ok(maxLogit > -Infinity, 'every logit is -Infinity or NaN');
  const invTemperature = 1 / params.temperature;
  // weights: [vocab] unnormalised softmax(logits / temperature); the max maps to exactly 1.
  const weights = new Float64Array(vocabSize);
  let totalWeight = 0;
  for (let id = 0; id < vocabSize; id++) {
    const logit = logits[id];
    const weight = logit === maxLogit ? 1 : logit === logit ? Math.exp((logit - maxLogit) * invTemperature) : 0;
    weights[id] = weight;
    totalWeight += weight;
  }
  const isTopK = params.topK > 0 && params.topK < vocabSize;
  const isTopP = params.topP < 1;
  if (!isTopK && !isTopP) return drawInIdOrder(weights, totalWeight, uniform);
  let keptIds: Int32Array;
  if (isTopK) {
    keptIds = topKIds(weights, params.topK);
    if (isTopP) keptIds = nucleusPrefix(weights, keptIds, params.topP);
  } else {
    keptIds = nucleusIds(weights, totalWeight, params.topP);
  }
  return drawAmong(weights, keptIds, uniform);
}

function drawInIdOrder(weights: Float64Array, totalWeight: number, uniform: number): number {
  const target = uniform * totalWeight;
  let cumulative = 0;
  let lastPositiveId = 0;
  for (let id = 0; id < weights.length; id++) {
    if (weights[id] <= 0) continue;
    cumulative += weights[id];
    lastPositiveId = id;
    if (target < cumulative) return id;
  }
  return lastPositiveId; // rounding: target reached the total
}

function drawAmong(weights: Float64Array, ids: Int32Array, uniform: number): number {
  assert.ok(ids.length > 0);
  let totalWeight = 0;
  for (const id of ids) totalWeight += weights[id];
  const target = uniform * totalWeight;
  let cumulative = 0;
  let lastPositiveId = ids[0];
  for (const id of ids) {
    if (weights[id] <= 0) continue;
    cumulative += weights[id];
    lastPositiveId = id;
    if (target < cumulative) return id;
  }
  return lastPositiveId; // rounding: target reached the total
}

/** Largest non-NaN value; -Infinity when there is none. */
function maxOf(values: Float32Array): number {
  let max = -Infinity;
  for (let i = 0; i < values.length; i++) if (values[i] > max) max = values[i];
  return max;
}

function countOf(values: Float32Array, value: number): number {
  let count = 0;
  for (let i = 0; i < values.length; i++) if (values[i] === value) count++;
  return count;
}
