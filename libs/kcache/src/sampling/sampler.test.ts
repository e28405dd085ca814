import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { argmax, logSoftmaxAt, sampleToken } from './sampler';
import { SamplingParams } from './sampling-params';
import { SeededRandom } from './seeded-random';
import { nucleusIds, topKIds } from './top-tokens';

const sampling = (p: Partial<SamplingParams>): SamplingParams => ({ temperature: 1, topK: 0, topP: 1, seed: 1, ...p });
const logitsOfProbs = (probs: number[]): Float32Array => Float32Array.from(probs, (p) => Math.log(p));

function histogram(logits: Float32Array, params: SamplingParams, numDraws: number): number[] {
  const counts = new Array<number>(logits.length).fill(0);
  for (let index = 0; index < numDraws; index++) counts[sampleToken(logits, params, index, false).tokenId]++;
  return counts;
}

function chiSquare(counts: number[], probs: number[]): number {
  const total = counts.reduce((a, b) => a + b, 0);
  return counts.reduce((sum, c, i) => sum + (probs[i] > 0 ? (c - total * probs[i]) ** 2 / (total * probs[i]) : c > 0 ? Infinity : 0), 0);
}

/** Float64 softmax of logits / temperature. */
function softmax(logits: Float32Array, temperature = 1): number[] {
  const max = Math.max(...logits);
  const exps = Array.from(logits, (l) => Math.exp((l - max) / temperature));
  const sum = exps.reduce((a, b) => a + b, 0);
  return exps.map((e) => e / sum);
}

describe('sampleToken', () => {
  it('is argmax at temperature 0, lowest id on an exact tie, whatever the seed', () => {
    const logits = Float32Array.from([1, 5, -2, 5, 3]);
    for (const seed of [0, 1, 99]) {
      for (let index = 0; index < 5; index++) assert.equal(sampleToken(logits, sampling({ temperature: 0, seed }), index, false).tokenId, 1);
    }
    assert.equal(argmax(Float32Array.from([-Infinity, -Infinity])), 0);
    assert.equal(argmax(Float32Array.from([NaN, 2, NaN, 3])), 3);
  });

  it('gives the same token for the same (seed, index), after a resume at any index', () => {
    const random = new SeededRandom(3);
    const rows = Array.from({ length: 200 }, () => Float32Array.from({ length: 64 }, () => random.next() * 4));
    const params = sampling({ temperature: 0.8, topK: 20, topP: 0.95, seed: 1234 });
    const run = (from: number) => rows.slice(from).map((row, i) => sampleToken(row, params, from + i, false).tokenId);
    const all = run(0);
    assert.deepEqual(run(137), all.slice(137));
    assert.deepEqual(run(0), all);
    const other = rows.map((row, i) => sampleToken(row, { ...params, seed: 1235 }, i, false).tokenId);
    assert.notDeepEqual(other, all);
  });

  it('samples the softmax distribution (chi-square over many indices)', () => {
    const probs = [0.05, 0.1, 0.15, 0.2, 0.5];
    const counts = histogram(logitsOfProbs(probs), sampling({ seed: 11 }), 20_000);
    assert.ok(chiSquare(counts, probs) < 18.47, `chi-square ${chiSquare(counts, probs)} (4 dof, p = 0.001)`);
  });

  it('divides the logits by the temperature', () => {
    const logits = Float32Array.from([0, 1, 2, 3]);
    for (const temperature of [0.5, 2]) {
      const probs = softmax(logits, temperature);
      const counts = histogram(logits, sampling({ temperature, seed: 5 }), 20_000);
      assert.ok(chiSquare(counts, probs) < 16.27, `T=${temperature}: chi-square ${chiSquare(counts, probs)} (3 dof)`);
    }
  });

  it('top-k keeps only the k most likely tokens, in proportion', () => {
    const probs = [0.05, 0.3, 0.02, 0.2, 0.1, 0.33];
    const counts = histogram(logitsOfProbs(probs), sampling({ topK: 3, seed: 8 }), 20_000);
    assert.deepEqual(counts.map((c) => c > 0), [false, true, false, true, false, true]);
    const kept = [0, 0.3, 0, 0.2, 0, 0.33].map((p) => p / 0.83);
    assert.ok(chiSquare(counts, kept) < 13.82, `chi-square ${chiSquare(counts, kept)} (2 dof)`);
    // topK >= vocab disables it.
    assert.ok(histogram(logitsOfProbs(probs), sampling({ topK: 6, seed: 8 }), 5_000).every((c) => c > 0));
  });

  it('top-p keeps the smallest most likely set reaching topP, at least one token', () => {
    const logits = logitsOfProbs([0.15, 0.5, 0.05, 0.3]);
    const support = (p: Partial<SamplingParams>) =>
      histogram(logits, sampling({ seed: 2, ...p }), 5_000).flatMap((c, id) => (c > 0 ? [id] : []));
    assert.deepEqual(support({ topP: 0.01 }), [1]);
    assert.deepEqual(support({ topP: 0.45 }), [1]);
    assert.deepEqual(support({ topP: 0.75 }), [1, 3]);
    assert.deepEqual(support({ topP: 0.9 }), [0, 1, 3]);
    assert.deepEqual(support({ topP: 1 }), [0, 1, 2, 3]);
    // top-p applies to what top-k kept, renormalised: 0.5 / 0.8 = 0.625 >= 0.6.
    assert.deepEqual(support({ topP: 0.6 }), [1, 3]);
    assert.deepEqual(support({ topK: 2, topP: 0.6 }), [1]);
  });

  it('never samples a -Infinity or NaN logit', () => {
    const logits = Float32Array.from([-Infinity, 0, NaN, 0.5, -Infinity]);
    const counts = histogram(logits, sampling({ seed: 4 }), 5_000);
    assert.deepEqual(counts.map((c) => c > 0), [false, true, false, true, false]);
  });

  it('returns the log-softmax of the raw logits at the chosen id, whatever the temperature', () => {
    const random = new SeededRandom(9);
    const logits = Float32Array.from({ length: 100 }, () => (random.next() - 0.5) * 20);
    const direct = softmax(logits).map(Math.log);
    for (let index = 0; index < 50; index++) {
      const { tokenId, logprob } = sampleToken(logits, sampling({ temperature: 0.7, topK: 10, seed: 6 }), index, true);
      assert.ok(logprob !== undefined && Math.abs(logprob - direct[tokenId]) < 1e-9, `${logprob} vs ${direct[tokenId]}`);
    }
    assert.equal(sampleToken(logits, sampling({}), 0, false).logprob, undefined);
    // Stable for large logits: ln(e^1000 / (e^1000 + e^999)) = -ln(1 + e^-1).
    const big = Float32Array.from([1000, 999]);
    assert.ok(Math.abs(logSoftmaxAt(big, 0) + Math.log1p(Math.exp(-1))) < 1e-12);
    const greedy = sampleToken(big, sampling({ temperature: 0 }), 0, true);
    assert.equal(greedy.tokenId, 0);
    assert.ok(Number.isFinite(greedy.logprob));
  });

  it('selects top-k and the nucleus like a full sort, ties to the lower id', () => {
    const random = new SeededRandom(21);
    for (let trial = 0; trial < 50; trial++) {
      const vocab = 1 + random.nextInt(300);
      // Coarse values so that exact ties are common.
      const weights = Float64Array.from({ length: vocab }, () => random.nextInt(20) / 4);
      const sorted = Array.from({ length: vocab }, (_, i) => i).sort((a, b) => weights[b] - weights[a] || a - b);
      const k = 1 + random.nextInt(vocab + 5);
      assert.deepEqual(Array.from(topKIds(weights, k)), sorted.slice(0, k));
      const total = weights.reduce((a, b) => a + b, 0);
      if (total === 0) continue;
      const topP = 0.05 + random.next() * 0.95;
      let reached = 0;
      let numKept = 0;
      while (numKept === 0 || reached < topP * total) reached += weights[sorted[numKept++]];
      assert.deepEqual(Array.from(nucleusIds(weights, total, topP)), sorted.slice(0, numKept));
    }
  });

  it('is fast enough for a 32000-token vocabulary', () => {
    const random = new SeededRandom(1);
    const logits = Float32Array.from({ length: 32_000 }, () => random.next() * 10);
    const cases = [sampling({}), sampling({ topK: 50 }), sampling({ topP: 0.9 }), sampling({ topK: 50, topP: 0.9 }), sampling({ temperature: 0 })];
    for (const params of cases) {
      const start = performance.now();
      for (let index = 0; index < 50; index++) sampleToken(logits, params, index, true);
      const msPerToken = (performance.now() - start) / 50;
      assert.ok(msPerToken < 10, `${JSON.stringify(params)}: ${msPerToken.toFixed(2)} ms per token`);
    }
  });
});
