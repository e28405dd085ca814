/** Per-request sampling. temperature 0 means greedy (argmax, lowest id on an exact tie). */
export interface SamplingParams {
  readonly temperature: number;
  /** 0 disables top-k. */
  readonly topK: number;
  /** 1 disables top-p. In (0, 1]. */
  readonly topP: number;
  /** Seed of the per-request random stream; the same seed gives the same tokens whatever else runs. */
  readonly seed: number;
}

export const GREEDY: SamplingParams = { temperature: 0, topK: 0, topP: 1, seed: 0 };
