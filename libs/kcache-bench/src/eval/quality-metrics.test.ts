import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { commonPrefixLength, QualityAccumulator } from './quality-metrics';

/** [T, vocab] logits from per-row arrays. */
function logits(rows: number[][]): Float32Array {
  return Float32Array.from(rows.flat());
}

describe('QualityAccumulator', () => {
  it('identical logits: agreement 1, perplexity ratio 1, KL 0', () => {
    const acc = new QualityAccumulator(3);
    const full = logits([[1, 2, 3], [0, 5, 1], [2, 2, 0]]);
    acc.add({ tokenIds: [0, 2, 1], full, approx: full.slice() });
    const m = acc.result();
    assert.equal(m.numPredictions, 2);
    assert.equal(m.agreement, 1);
    assert.equal(m.perplexityRatio, 1);
    assert.equal(m.klDivergence, 0);
  });

  it('pools predictions over texts, excludes the last row, and computes NLL against the next token', () => {
    const acc = new QualityAccumulator(2);
    // Text A: 3 rows, predictions at rows 0 and 1; row 1 disagrees. Row 2 (no target) disagrees too.
    acc.add({ tokenIds: [0, 0, 1], full: logits([[0, 0], [1, 0], [1, 0]]), approx: logits([[0, 0], [0, 1], [0, 1]]) });
    // Text B: 2 rows, one prediction, agrees.
    acc.add({ tokenIds: [1, 1], full: logits([[0, 1], [0, 0]]), approx: logits([[0, 1], [0, 0]]) });
    const m = acc.result();
    assert.equal(m.numPredictions, 3);
    assert.equal(m.agreement, 2 / 3);
    assert.equal(m.agreementAllRows, 3 / 5);
    assert.equal(m.agreementMeanOfTexts, (1 / 2 + 1) / 2);
    // NLL full: ln 2, -ln softmax([1,0])[1] = ln(1+e), -ln softmax([0,1])[1] = ln(1+e^-1).
    const nllFull = (Math.log(2) + Math.log(1 + Math.E) + Math.log(1 + 1 / Math.E)) / 3;
    assert.ok(Math.abs(m.perplexityFull! - Math.exp(nllFull)) < 1e-12);
    assert.ok(m.klDivergence! > 0);
  });

  it('agreementOnly leaves perplexity and KL out', () => {
    const acc = new QualityAccumulator(2, true);
    acc.add({ tokenIds: [0, 1], full: logits([[1, 0], [0, 1]]), approx: logits([[1, 0], [1, 0]]) });
    const m = acc.result();
    assert.equal(m.agreement, 1);
    assert.equal(m.perplexityRatio, null);
    assert.equal(m.klDivergence, null);
  });

  it('rejects logits of the wrong shape', () => {
    assert.throws(() => new QualityAccumulator(4).add({ tokenIds: [1, 2], full: new Float32Array(8), approx: new Float32Array(4) }), RangeError);
  });
});

describe('commonPrefixLength', () => {
  it('counts leading equal tokens', () => {
    assert.equal(commonPrefixLength([1, 2, 3], [1, 2, 4]), 2);
    assert.equal(commonPrefixLength([1, 2], [1, 2, 3]), 2);
    assert.equal(commonPrefixLength([], [1]), 0);
  });
});
