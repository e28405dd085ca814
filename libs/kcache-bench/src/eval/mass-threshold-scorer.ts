import * as ort from 'onnxruntime-node';
import { ModelWeights } from '@kcache-serve/kcache/dist/model/model-weights';
import { IO } from '@kcache-serve/kcache/dist/runtime/graph-io';
import { GraphVariant } from '@kcache-serve/kcache/dist/runtime/graph-variant';
import { GraphWeights } from '@kcache-serve/kcache/dist/runtime/layer-weights-layout';
import { buildMassThresholdScoreGraph, MASS_IO } from '@kcache-serve/kcache/dist/runtime/mass-threshold-score-graph';

export interface MassScore {
  /** [T, vocab]: row t predicts token t+1. */
  readonly logits: Float32Array;
  /** [L', Hkv, G, T]: positions kept per query head and row in each TopN layer. */
  readonly keptPerHead: Float32Array;
  /** [L', Hkv, T]: positions kept by any query head of each KV head. */
  readonly keptPerKvHead: Float32Array;
}

/**
 * Teacher-forced scoring with mass-threshold selection (see buildMassThresholdScoreGraph): KCache
 * at every position, each query head keeping the fewest top positions that hold tau of its
 * probability mass, at most `cap`. tau = Infinity keeps exactly min(cap, t + 1): fixed TopN.
 */
export class MassThresholdScorer {
  private readonly graphWeights: GraphWeights;
  private readonly sessions = new Map<string, ort.InferenceSession>();

  constructor(
    weights: ModelWeights,
    private readonly numThreads: number,
  ) {
    this.graphWeights = new GraphWeights(weights);
  }

  async score(tokenIds: readonly number[], variant: GraphVariant, cap: number, tau: number): Promise<MassScore> {
    const session = await this.session(variant);
    const numRows = tokenIds.length;
    const mask = new Float32Array(numRows * numRows);
    for (let i = 0; i < numRows; i++) mask.fill(-Infinity, i * numRows + i + 1, (i + 1) * numRows);
    const feeds: Record<string, ort.Tensor> = {
      [IO.tokens]: new ort.Tensor('int64', BigInt64Array.from(tokenIds, BigInt), [numRows]),
      [IO.positions]: new ort.Tensor('int64', BigInt64Array.from({ length: numRows }, (_, i) => BigInt(i)), [numRows]),
      [IO.mask]: new ort.Tensor('float32', mask, [numRows, numRows]),
      [IO.topN]: new ort.Tensor('int64', BigInt64Array.of(BigInt(Math.min(cap, numRows))), [1]),
      [MASS_IO.tau]: new ort.Tensor('float32', Float32Array.of(tau), [1]),
    };
    const results = await session.run(feeds, [IO.logits, MASS_IO.keptPerHead, MASS_IO.keptPerKvHead]);
    return {
      logits: results[IO.logits].data as Float32Array,
      keptPerHead: results[MASS_IO.keptPerHead].data as Float32Array,
      keptPerKvHead: results[MASS_IO.keptPerKvHead].data as Float32Array,
    };
  }

  async release(): Promise<void> {
    for (const session of this.sessions.values()) await session.release();
    this.sessions.clear();
  }

  private async session(variant: GraphVariant): Promise<ort.InferenceSession> {
    let session = this.sessions.get(variant.key);
    if (!session) {
      session = await ort.InferenceSession.create(buildMassThresholdScoreGraph(this.graphWeights, variant), {
        intraOpNumThreads: this.numThreads,
        interOpNumThreads: 1,
        executionMode: 'sequential',
        graphOptimizationLevel: 'all',
        logSeverityLevel: 3,
      });
      this.sessions.set(variant.key, session);
    }
    return session;
  }
}

/**
 * Mean positions kept per (layer, head, row) over rows [0, numRows), from a [.., numRows] count
 * tensor: the V rows one decode step reads per layer and head, on average.
 */
export function meanKeptPerRow(counts: Float32Array, totalRows: number, numRows: number): number {
  let sum = 0;
  let n = 0;
  for (let base = 0; base < counts.length; base += totalRows) {
    for (let t = 0; t < numRows; t++) sum += counts[base + t];
    n += numRows;
  }
  return sum / n;
}
