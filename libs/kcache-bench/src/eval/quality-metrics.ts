/**
 * Agreement of an approximate model (KCache) with the exact one (full attention) on teacher-forced
 * logits of the same texts. A text of T tokens gives T logit rows; row t predicts token t+1, so rows
 * 0..T-2 are the T-1 next-token predictions that have a target. Metrics are pooled over the
 * predictions of every text added (micro-average), which is what the float64 reference reports.
 */
export interface QualityMetrics {
  /** Next-token predictions compared (rows 0..T-2 of every text). */
  readonly numPredictions: number;
  /** argmax(approx row t) == argmax(full row t), pooled over the predictions. */
  readonly agreement: number;
  /** The same over all T rows of each text (the last row has no target). */
  readonly agreementAllRows: number;
  /** Mean over texts of each text's agreement (macro-average). */
  readonly agreementMeanOfTexts: number;
  /** exp(mean NLL of the text's next tokens); null when only agreement was computed. */
  readonly perplexityFull: number | null;
  readonly perplexityApprox: number | null;
  /** perplexityApprox / perplexityFull. */
  readonly perplexityRatio: number | null;
  /** Mean over predictions of KL(full ‖ approx) of the next-token distributions, in nats. */
  readonly klDivergence: number | null;
}

/** Logits of one text under both models: [T, vocab] each, row-major. */
export interface ScoredText {
  readonly tokenIds: readonly number[];
  readonly full: Float32Array;
  readonly approx: Float32Array;
}

export class QualityAccumulator {
  private numPredictions = 0;
  private numAgree = 0;
  private numRows = 0;
  private numAgreeAllRows = 0;
  private nllFull = 0;
  private nllApprox = 0;
  private klSum = 0;
  private readonly perTextAgreement: number[] = [];

  /** agreementOnly skips the float64 softmaxes (perplexity and KL are then null). */
  constructor(
    readonly vocabSize: number,
    private readonly agreementOnly = false,
  ) {}

  add(text: ScoredText): void {
    const vocab = this.vocabSize;
    const numRows = text.tokenIds.length;
    if (text.full.length !== numRows * vocab || text.approx.length !== numRows * vocab) {
      throw new RangeError(`logits must be [${numRows}, ${vocab}], got ${text.full.length} and ${text.approx.length} values`);
    }
    let numAgree = 0;
    for (let t = 0; t < numRows; t++) {
      const full = text.full.subarray(t * vocab, (t + 1) * vocab);
      const approx = text.approx.subarray(t * vocab, (t + 1) * vocab);
      const isAgree = argmaxOf(full) === argmaxOf(approx);
      this.numRows++;
      if (isAgree) this.numAgreeAllRows++;
      if (t === numRows - 1) break; // no target for the last row
      this.numPredictions++;
      if (isAgree) {
        this.numAgree++;
        numAgree++;
      }
      if (this.agreementOnly) continue;
      const target = text.tokenIds[t + 1];
      const logZFull = logSumExp(full);
      const logZApprox = logSumExp(approx);
      this.nllFull += logZFull - full[target];
      this.nllApprox += logZApprox - approx[target];
      this.klSum += klDivergence(full, logZFull, approx, logZApprox);
    }
    if (numRows > 1) this.perTextAgreement.push(numAgree / (numRows - 1));
  }

  result(): QualityMetrics {
    const n = this.numPredictions;
    const perplexityFull = this.agreementOnly ? null : Math.exp(this.nllFull / n);
    const perplexityApprox = this.agreementOnly ? null : Math.exp(this.nllApprox / n);
    return {
      numPredictions: n,
      agreement: this.numAgree / n,
      agreementAllRows: this.numAgreeAllRows / this.numRows,
      agreementMeanOfTexts: this.perTextAgreement.reduce((a, b) => a + b, 0) / this.perTextAgreement.length,
      perplexityFull,
      perplexityApprox,
      perplexityRatio: perplexityFull === null || perplexityApprox === null ? null : perplexityApprox / perplexityFull,
      klDivergence: this.agreementOnly ? null : this.klSum / n,
    };
  }
}

/** Index of the largest value, lowest index on a tie (as greedy sampling picks). */
export function argmaxOf(values: Float32Array): number {
  let best = 0;
  for (let i = 1; i < values.length; i++) if (values[i] > values[best]) best = i;
  return best;
}

/** ln Σ exp(x), float64. */
export function logSumExp(values: Float32Array): number {
  let max = -Infinity;
  for (let i = 0; i < values.length; i++) if (values[i] > max) max = values[i];
  let sum = 0;
  for (let i = 0; i < values.length; i++) sum += Math.exp(values[i] - max);
  return max + Math.log(sum);
}

/** KL(p ‖ q) = Σ p (ln p − ln q) for p = softmax(a), q = softmax(b), given their log-normalisers. */
export function klDivergence(a: Float32Array, logZa: number, b: Float32Array, logZb: number): number {
  let kl = 0;
  for (let i = 0; i < a.length; i++) {
    const logP = a[i] - logZa;
    kl += Math.exp(logP) * (logP - (b[i] - logZb));
  }
  return Math.max(0, kl);
}

/**
 * Length of the common prefix of two greedy continuations. Equal lists (the same tokens and the same
 * stop) count as a full match of their length.
 */
export function commonPrefixLength(a: readonly number[], b: readonly number[]): number {
  const n = Math.min(a.length, b.length);
  for (let i = 0; i < n; i++) if (a[i] !== b[i]) return i;
  return n;
}
