/**
 * The BullMQ contract between gateways (producers) and workers (consumers).
 *
 * In:  one job per client request, name GENERATION_JOB_NAME, id = generationJobId(request id) (so one id is
 *      never queued twice), data GenerationJobData. BullMQ priority = toQueuePriority(request.priority).
 * Out: the job's return value GenerationJobResult. Tokens do not travel through Redis: the worker relays
 *      them to `relayAddress` (see kcache/internal/v1/relay.proto).
 */

import type { AttentionConfig, FinishReason, GenerationRequest } from '@kcache-serve/kcache/light';

/** Queue of generation requests waiting for a worker with a free engine slot. */
export const GENERATION_QUEUE_NAME = 'kcache-generation';
export const GENERATION_JOB_NAME = 'generate';

export type JobAttentionMode = AttentionConfig['mode'];
export type JobFinishReason = FinishReason;

/**
 * A validated request: the engine's GenerationRequest without resumeTokenIds, which the worker adds on a
 * retry. Token ids are already checked against the model. A text prompt or chat conversation
 * (GenerateRequest.messages) is tokenized by the gateway, which holds the model's tokenizer and chat
 * template; only token ids travel, so a job names no messages.
 */
export type GenerationJobRequest = Omit<GenerationRequest, 'resumeTokenIds' | 'attention'> & { readonly attention: JobAttention };

/**
 * The engine's AttentionConfig as a job carries it: every field whatever the mode, as the gateway resolved
 * them from the request and its defaults (the engine reads topN, denseLayers and renormalize in 'kcache'
 * mode only, and checks a named denseLayers in any mode). It is assignable to AttentionConfig.
 */
export interface JobAttention {
  readonly mode: JobAttentionMode;
  readonly topN: number;
  readonly denseLayers: number;
  readonly renormalize: boolean;
}

/** The most alternatives per position a job may ask for (the engine's MAX_TOP_LOGPROBS). */
export const MAX_JOB_TOP_LOGPROBS = 20;

export interface GenerationJobData {
  readonly request: GenerationJobRequest;
  /** host:port of the owning gateway's internal Relay service. */
  readonly relayAddress: string;
  /** Distinguishes this submission from an earlier one with the same request id. */
  readonly submissionId: string;
  /**
   * Secret that authenticates this job's relay events to the owning gateway (see relay-capability.ts);
   * never logged, never shown to clients.
   */
  readonly relayCapability: string;
  /** Wall-clock time (ms since epoch) after which nobody waits for the result; null: no deadline. */
  readonly deadlineUnixMs: number | null;
}

export interface GenerationJobResult {
  readonly finishReason: JobFinishReason;
  readonly promptTokens: number;
  readonly completionTokens: number;
}

/**
 * Ceilings of the job contract, whatever a gateway is configured to allow: a worker refuses a job beyond
 * them (parseGenerationJobData), and a gateway refuses a configuration that would queue such jobs.
 */
export const JOB_LIMITS = {
  /** Prompt, stop and resumed token ids, each list. */
  maxTokenIds: 1 << 20,
  maxStopStrings: 64,
  /** UTF-16 code units. */
  maxStopStringLength: 4096,
  maxNewTokens: 1 << 20,
} as const;

/** Client-chosen request ids: safe as Redis key parts and BullMQ job ids. */
export const REQUEST_ID_PATTERN = /^[A-Za-z0-9._-]{1,128}$/;

/** BullMQ rejects job ids that are integers or contain ':'; the prefix rules out the first. */
export function generationJobId(requestId: string): string {
  return `gen-${requestId}`;
}

export function requestIdOfJobId(jobId: string): string {
  return jobId.replace(/^gen-/, '');
}

export const MIN_PRIORITY = -1000;
export const MAX_PRIORITY = 1000;

/** BullMQ runs lower numbers first and treats 0 as "no priority"; map [MIN, MAX] onto [1, 2001] reversed. */
export function toQueuePriority(priority: number): number {
  return MAX_PRIORITY - priority + 1;
}
