import { z } from 'zod';
import { GenerationJobData, GenerationJobRequest, generationJobId, JOB_LIMITS, MAX_JOB_TOP_LOGPROBS, MAX_PRIORITY, MIN_PRIORITY, REQUEST_ID_PATTERN } from './generation-job';
import { RELAY_CAPABILITY_PATTERN } from './relay-capability';

/**
 * GenerationJobData as a worker must check it: the queue is not trusted (anyone who can write to Redis
 * can add a job), so a job is parsed field by field before any of it is used. Bounds are the contract's
 * (JOB_LIMITS); the engine then checks the request against the model.
 */
const tokenIds = z.array(z.number().int().min(0).max(0x7fffffff)).max(JOB_LIMITS.maxTokenIds);

/** host:port, the host a DNS name, IPv4 or bracketed IPv6 address. */
const RELAY_ADDRESS_PATTERN = /^(?:[A-Za-z0-9](?:[A-Za-z0-9.-]{0,251}[A-Za-z0-9])?|\[[0-9A-Fa-f:.]{2,45}\]):[0-9]{1,5}$/;

const jobRequestSchema = z
  .object({
    requestId: z.string().regex(REQUEST_ID_PATTERN),
    promptTokenIds: tokenIds.min(1),
    maxNewTokens: z.number().int().min(1).max(JOB_LIMITS.maxNewTokens),
    sampling: z
      .object({
        temperature: z.number().min(0).finite(),
        topK: z.number().int().min(0).max(0x7fffffff),
        topP: z.number().gt(0).max(1),
        seed: z.number().int().min(0).max(0xffffffff),
      })
      .strict(),
    stopTokenIds: tokenIds,
    stopStrings: z.array(z.string().min(1).max(JOB_LIMITS.maxStopStringLength)).max(JOB_LIMITS.maxStopStrings),
    attention: z
      .object({
        mode: z.enum(['full', 'kcache']),
        topN: z.number().int().min(1).max(0x7fffffff),
        denseLayers: z.number().int().min(0).max(0x7fffffff),
        renormalize: z.boolean(),
      })
      .strict(),
    priority: z.number().int().min(MIN_PRIORITY).max(MAX_PRIORITY),
    logprobs: z.boolean(),
    topLogprobs: z.number().int().min(1).max(MAX_JOB_TOP_LOGPROBS).optional(),
  })
  .strict();

/**
 * The schema checks the engine's request type (GenerationJobRequest is derived from it): this fails to
 * compile when either gains or loses a field the other lacks.
 */
type KeysOf<T> = T extends object ? keyof T : never;
type SameKeys<A, B> = [Exclude<KeysOf<A>, KeysOf<B>>, Exclude<KeysOf<B>, KeysOf<A>>] extends [never, never] ? true : false;
type SchemaRequest = z.infer<typeof jobRequestSchema>;
const SCHEMA_MATCHES_REQUEST: SameKeys<SchemaRequest, GenerationJobRequest> &
  SameKeys<SchemaRequest['sampling'], GenerationJobRequest['sampling']> &
  SameKeys<SchemaRequest['attention'], GenerationJobRequest['attention']> = true;
void SCHEMA_MATCHES_REQUEST;

const jobDataSchema = z
  .object({
    request: jobRequestSchema,
    relayAddress: z.string().regex(RELAY_ADDRESS_PATTERN),
    submissionId: z.string().min(1).max(128),
    relayCapability: z.string().regex(RELAY_CAPABILITY_PATTERN),
    deadlineUnixMs: z.number().int().min(0).nullable(),
  })
  .strict();

/** A job whose data (or id) breaks the contract; `path` names the first bad field, never its value. */
export class InvalidJobDataError extends Error {
  override readonly name = 'InvalidJobDataError';
  constructor(
    readonly path: string,
    message: string,
    options?: { cause?: unknown },
  ) {
    super(`invalid job data at ${path}: ${message}`, options);
  }
}

/**
 * In: a job's id and data as read from Redis. Out: the data, typed; throws InvalidJobDataError when a
 * field is missing, of the wrong type, out of bounds, unknown, or when the job id is not the one the
 * request id implies (a job may not speak for another request's stream).
 */
export function parseGenerationJobData(jobId: string | undefined, data: unknown): GenerationJobData {
  const parsed = jobDataSchema.safeParse(data);
  if (!parsed.success) {
    const issue = parsed.error.issues[0];
    throw new InvalidJobDataError(issue.path.join('.') || '(root)', issue.message, { cause: parsed.error });
  }
  if (jobId !== generationJobId(parsed.data.request.requestId)) {
    throw new InvalidJobDataError('request.requestId', 'does not match the job id');
  }
  return parsed.data;
}
