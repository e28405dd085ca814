import { performance } from 'node:perf_hooks';
import { AttentionMode, GenerateRequest, GenerationClient } from '@kcache-serve/proto';
import { LoadOptions } from './load-options';
import { promptTokenIds, samplingSeed } from './prompt-sampler';
import { StreamStatus, timedStream } from './timed-stream';
import { callMetadata } from '../cli/gateway-client';

/** Counters while a run goes on (read by the progress line). */
export interface LoadProgress {
  readonly elapsedS: number;
  readonly numCompleted: number;
  readonly numFailed: number;
  readonly numInFlight: number;
  readonly numTokens: number;
}

/** Everything measured in one run, before summarizing. Times in ms. */
export interface LoadSamples extends LoadProgress {
  /** Until the last stream ended: durationS plus the drain of the streams in flight at the end. */
  readonly wallS: number;
  readonly ttftMs: number[];
  readonly interTokenMs: number[];
  readonly totalMs: number[];
  /** Failed streams by gRPC status name (or PROTOCOL). */
  readonly errors: Partial<Record<StreamStatus, number>>;
  /** Up to 5 failure details, to show what went wrong. */
  readonly errorSamples: string[];
}

export interface LoadHooks {
  /** Called about once a second while the run goes on. */
  readonly onProgress?: (progress: LoadProgress) => void;
  /** Aborting ends the run early: no new requests; the ones in flight finish. */
  readonly signal?: AbortSignal;
}

const MAX_ERROR_SAMPLES = 5;
/** A stream whose request failed waits this long before the next, so an unreachable target is no busy loop. */
const PAUSE_AFTER_FAILURE_MS = 50;

/**
 * Closed loop: `concurrency` streams, each sending its next request as soon as the last one ended, until
 * durationS has passed (or the signal aborts); streams in flight then run to their end and are counted.
 */
export async function runLoad(client: GenerationClient, options: LoadOptions, hooks: LoadHooks = {}): Promise<LoadSamples> {
  const startMs = performance.now();
  const endMs = startMs + options.durationS * 1000;
  const samples = {
    ttftMs: [] as number[],
    interTokenMs: [] as number[],
    totalMs: [] as number[],
    errors: {} as Partial<Record<StreamStatus, number>>,
    errorSamples: [] as string[],
  };
  let numCompleted = 0;
  let numFailed = 0;
  let numInFlight = 0;
  let numTokens = 0;
  let nextIndex = 0;
  const progress = (): LoadProgress => ({ elapsedS: (performance.now() - startMs) / 1000, numCompleted, numFailed, numInFlight, numTokens });
  const isOver = () => performance.now() >= endMs || hooks.signal?.aborted === true;

  const runStream = async (): Promise<void> => {
    while (!isOver()) {
      const index = nextIndex++;
      numInFlight++;
      const result = await timedStream(client, loadRequest(options, index), options.requestTimeoutS * 1000, callMetadata(options));
      numInFlight--;
      numTokens += result.numTokens;
      samples.interTokenMs.push(...result.interTokenMs);
      if (result.status === 'OK') {
        numCompleted++;
        if (result.ttftMs !== null) samples.ttftMs.push(result.ttftMs);
        samples.totalMs.push(result.totalMs);
      } else {
        numFailed++;
        samples.errors[result.status] = (samples.errors[result.status] ?? 0) + 1;
        if (samples.errorSamples.length < MAX_ERROR_SAMPLES) samples.errorSamples.push(`request ${index}: ${result.status}: ${result.detail}`);
        await new Promise((resolve) => setTimeout(resolve, PAUSE_AFTER_FAILURE_MS));
      }
    }
  };

  const timer = hooks.onProgress && setInterval(() => hooks.onProgress!(progress()), 1000);
  try {
    await Promise.all(Array.from({ length: options.concurrency }, runStream));
  } finally {
    if (timer) clearInterval(timer);
  }
  return { ...progress(), wallS: (performance.now() - startMs) / 1000, ...samples };
}

const ATTENTION_MODES = { full: AttentionMode.ATTENTION_MODE_FULL, kcache: AttentionMode.ATTENTION_MODE_KCACHE } as const;

export function loadRequest(options: LoadOptions, index: number): GenerateRequest {
  return GenerateRequest.fromPartial({
    promptTokenIds: promptTokenIds(options.seed, index, options.promptLen, options.vocabSize),
    maxNewTokens: options.maxNewTokens,
    sampling: { temperature: options.temperature, seed: samplingSeed(options.seed, index) },
    attention:
      options.attention === null && options.topN === null
        ? undefined
        : {
            mode: options.attention === null ? AttentionMode.ATTENTION_MODE_UNSPECIFIED : ATTENTION_MODES[options.attention],
            topN: options.topN ?? undefined,
          },
  });
}
