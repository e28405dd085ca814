/** One of the most likely next tokens and its natural log-probability. */
export interface RankedLogprob {
  readonly tokenId: number;
  readonly logprob: number;
}

/** Most alternatives a request may ask for per position (OpenAI's limit for chat `top_logprobs`). */
export const MAX_TOP_LOGPROBS = 20;

/**
 * The `count` most likely tokens of one row of logits ([vocab]) under ln softmax(raw logits) at
 * temperature 1 (the distribution `logprob` reports), most likely first, lower id first on a tie.
 * NaN logits count as -Infinity. One pass keeping a sorted list of at most `count` entries.
 */
export function topLogprobs(logits: Float32Array, count: number): RankedLogprob[] {
  if (count <= 0 || logits.length === 0) return [];
  let maxLogit = -Infinity;
  for (let id = 0; id < logits.length; id++) if (logits[id] > maxLogit) maxLogit = logits[id];
  // Summed as logSoftmaxAt sums, so the chosen token's entry equals its `logprob` exactly.
  let sumExp = 0;
  for (let id = 0; id < logits.length; id++) {
    const logit = logits[id];
    if (maxLogit === Infinity) sumExp += logit === Infinity ? 1 : 0;
    else if (logit === logit) sumExp += Math.exp(logit - maxLogit);
  }
  const logSumExp = Math.log(sumExp);
  // kept: ids sorted by logit descending, then id ascending; never longer than count.
  const kept: number[] = [];
  for (let id = 0; id < logits.length; id++) {
    const logit = logits[id] === logits[id] ? logits[id] : -Infinity;
    if (kept.length === count && !(logit > logitOf(logits, kept[kept.length - 1]))) continue;
    let at = kept.length;
    while (at > 0 && logit > logitOf(logits, kept[at - 1])) at--;
    kept.splice(at, 0, id);
    if (kept.length > count) kept.pop();
  }
  return kept.map((tokenId) => ({ tokenId, logprob: logprobOf(logitOf(logits, tokenId), maxLogit, logSumExp) }));
}

function logitOf(logits: Float32Array, id: number): number {
  const logit = logits[id];
  return logit === logit ? logit : -Infinity;
}

function logprobOf(logit: number, maxLogit: number, logSumExp: number): number {
  if (logit === -Infinity || maxLogit === -Infinity) return -Infinity;
  if (maxLogit === Infinity) return logit === Infinity ? -logSumExp : -Infinity;
  return logit - maxLogit - logSumExp;
}
