import { CapacityError, DuplicateRequestIdError, InvalidRequestError, type FinishEvent, type GenerationEngine } from '@kcache-serve/kcache';
import {
  DeliveredTokens,
  FinishReason,
  GenerationJobData,
  GenerationJobRequest,
  GenerationJobResult,
  JobFinishReason,
  parseGenerationJobData,
  relay,
  relayCapabilityBytes,
} from '@kcache-serve/proto';
import { Job, UnrecoverableError } from 'bullmq';
import type { Logger } from 'pino';
import { DeliveryRecorder } from './relay/delivery-recorder';
import { RelayPool } from './relay/relay-pool';

const FINISH_REASONS: Record<JobFinishReason, FinishReason> = {
  length: FinishReason.FINISH_REASON_LENGTH,
  stop: FinishReason.FINISH_REASON_STOP,
  eos: FinishReason.FINISH_REASON_EOS,
  cancelled: FinishReason.FINISH_REASON_CANCELLED,
};

/** setTimeout fires at once for longer delays; deadlines further away are left to the client. */
const MAX_TIMER_MS = 2 ** 31 - 1;

interface ActiveRequest {
  isSubmitted: boolean;
  isCancelRequested: boolean;
}

/**
 * The BullMQ processor: one call per job, resolving when the engine finished the request and the owning
 * gateway acknowledged the finish. It only translates; batching is the engine's.
 */
export class GenerationProcessor {
  private readonly active = new Map<string, ActiveRequest>();

  constructor(
    private readonly engine: GenerationEngine,
    private readonly relays: RelayPool,
    private readonly delivered: DeliveredTokens,
    private readonly recorder: DeliveryRecorder,
    private readonly log: Logger,
  ) {}

  get numActive(): number {
    return this.active.size;
  }

  /** Stops a request this worker runs (within one engine step); false if it runs elsewhere. */
  cancel(requestId: string): boolean {
    const request = this.active.get(requestId);
    if (request === undefined) return false;
    request.isCancelRequested = true;
    if (request.isSubmitted) this.engine.cancel(requestId);
    return true;
  }

  readonly process = async (job: Job<GenerationJobData, GenerationJobResult>): Promise<GenerationJobResult> => {
    // The queue is not trusted: nothing of a job is used (not even its relay address) before it parses.
    let data: GenerationJobData;
    try {
      data = parseGenerationJobData(job.id, job.data);
    } catch (error) {
      const reason = error instanceof Error ? error.message : String(error);
      this.log.warn({ jobId: job.id, reason }, 'job refused');
      throw Object.assign(new UnrecoverableError(reason), { cause: error });
    }
    const { request, relayAddress, deadlineUnixMs } = data;
    const requestId = request.requestId;
    const gateway = this.relays.get(relayAddress);
    const capability = relayCapabilityBytes(data.relayCapability);
    const send = (e: relay.RelayEvent['event']): Promise<void> => gateway.send({ requestId, event: e, capability });
    if (this.active.has(requestId)) throw new DuplicateRequestIdError(requestId);
    const state: ActiveRequest = { isSubmitted: false, isCancelRequested: false };
    this.active.set(requestId, state);
    try {
      const resumeTokenIds = await this.delivered.read(requestId);
      void send({ $case: 'started', value: { attempt: job.attemptsStarted, numResumedTokens: resumeTokenIds.length } });
      const isExpired = deadlineUnixMs !== null && Date.now() >= deadlineUnixMs;
      const finish =
        state.isCancelRequested || isExpired
          ? finishedEarly(request, 'cancelled', resumeTokenIds.length)
          : resumeTokenIds.length >= request.maxNewTokens
            ? finishedEarly(request, 'length', resumeTokenIds.length)
            : await this.generate(data, resumeTokenIds, send, state);
      if (finish.error !== undefined) throw new Error(finish.error);
      await send({
        $case: 'finished',
        value: { finishReason: FINISH_REASONS[finish.reason], promptTokens: finish.promptTokens, completionTokens: finish.completionTokens },
      });
      await this.recorder.delete(requestId);
      return { finishReason: finish.reason, promptTokens: finish.promptTokens, completionTokens: finish.completionTokens };
    } catch (error) {
      this.log.warn({ err: error, requestId }, 'generation failed');
      await send({ $case: 'failed', value: failureOf(error) });
      await this.recorder.delete(requestId);
      if (error instanceof InvalidRequestError || error instanceof CapacityError) {
        throw Object.assign(new UnrecoverableError(error.message), { cause: error });
      }
      throw error;
    } finally {
      this.active.delete(requestId);
    }
  };

  private generate(
    data: GenerationJobData,
    resumeTokenIds: number[],
    send: (e: relay.RelayEvent['event']) => Promise<void>,
    state: ActiveRequest,
  ): Promise<FinishEvent> {
    const { request, deadlineUnixMs } = data;
    return new Promise<FinishEvent>((resolve, reject) => {
      let deadlineTimer: NodeJS.Timeout | undefined;
      try {
        this.engine.submit({ ...request, resumeTokenIds }, (e) => {
          if (e.type === 'token') {
            const token = { index: e.index, tokenId: e.tokenId, text: e.text, logprob: e.logprob, topLogprobs: e.topLogprobs ? [...e.topLogprobs] : [] };
            void send({ $case: 'token', value: token });
          } else {
            clearTimeout(deadlineTimer);
            resolve(e);
          }
        });
      } catch (error) {
        reject(error);
        return;
      }
      state.isSubmitted = true;
      const untilDeadlineMs = deadlineUnixMs === null ? Infinity : Math.max(0, deadlineUnixMs - Date.now());
      if (untilDeadlineMs <= MAX_TIMER_MS) deadlineTimer = setTimeout(() => this.engine.cancel(request.requestId), untilDeadlineMs);
    });
  }
}

/** The finish of a request that never reaches the engine (cancelled while queued, or resumed complete). */
function finishedEarly(request: GenerationJobRequest, reason: JobFinishReason, completionTokens: number): FinishEvent {
  return { type: 'finish', requestId: request.requestId, reason, promptTokens: request.promptTokenIds.length, completionTokens };
}

function failureOf(error: unknown): relay.JobFailed {
  if (error instanceof InvalidRequestError) {
    // The engine's structured error travels as it is: field and reason, never a message to take apart.
    return { kind: relay.FailureKind.FAILURE_KIND_INVALID_REQUEST, field: error.field, message: error.reason };
  }
  const kind = error instanceof CapacityError ? relay.FailureKind.FAILURE_KIND_CAPACITY : relay.FailureKind.FAILURE_KIND_INTERNAL;
  return { kind, field: '', message: error instanceof Error ? error.message : String(error) };
}
