import { Inject, Injectable } from '@nestjs/common';
import { status as Status } from '@grpc/grpc-js';
import { FinishReason, GenerateRequest, GenerationJobRequest, TokenEvent } from '@kcache-serve/proto';
import type { Response } from 'express';
import type { Logger } from 'pino';
import { principalOf } from '../auth/http-auth.middleware';
import { GATEWAY_CONFIG, GatewayConfig } from '../config/gateway-config';
import { ServedModel } from '../core/served-model';
import { LOGGER, SERVED_MODEL } from '../core/tokens';
import { ClientBackpressure } from '../generation/client-backpressure';
import { InvalidArgumentError, ModelNotFoundError, RateLimitedError, UnsupportedParameterError } from '../errors/gateway-errors';
import { GenerationService } from '../generation/generation.service';
import { StreamEvent } from '../generation/request-stream';
import { grpcStatusOf, httpStatusOf, isUnexpected, statusName, toServiceError } from '../errors/error-status';
import { FinishReasonLabel, finishReasonLabel, GatewayMetrics } from '../metrics/gateway-metrics';
import { numChars } from './completion-format';
import { openAiErrorBody } from '../errors/openai-error';
import { toHttpFieldError } from './openai-request-fields';
import { OpenAiResponseFormat } from './openai-response-format';

const FINISH_REASONS: Record<FinishReason, string> = {
  [FinishReason.FINISH_REASON_UNSPECIFIED]: 'stop',
  [FinishReason.FINISH_REASON_LENGTH]: 'length',
  [FinishReason.FINISH_REASON_STOP]: 'stop',
  [FinishReason.FINISH_REASON_EOS]: 'stop',
  [FinishReason.FINISH_REASON_CANCELLED]: 'cancelled',
  [FinishReason.UNRECOGNIZED]: 'stop',
};

/** A request body, parsed: what to generate and whether to answer as server-sent events. */
export interface ParsedHttpRequest {
  /** One per prompt: a batch of prompts is one generation each, answered as choices[i]. */
  readonly requests: readonly GenerateRequest[];
  readonly isStream: boolean;
  /** `model` as sent; a name other than the served model's is refused (404 model_not_found). */
  readonly model: string | undefined;
  /** stream_options.include_usage: a last chunk with `choices: []` and the usage, before [DONE]. */
  readonly isUsageStreamed: boolean;
}

/** The fields every OpenAI-style body shares, as ParsedHttpRequest wants them. */
export function parsedHttpRequest(
  requests: readonly GenerateRequest[],
  body: { readonly stream: boolean; readonly model?: string; readonly stream_options?: { readonly include_usage?: boolean | null } | null },
): ParsedHttpRequest {
  return { requests, isStream: body.stream, model: body.model, isUsageStreamed: body.stream && body.stream_options?.include_usage === true };
}

/**
 * One OpenAI-style HTTP request from body to answer, for any OpenAiResponseFormat: validate and queue
 * through GenerationService, then one JSON body, or (`stream: true`) one server-sent event per token, one
 * with each choice's finish reason, the usage (with stream_options.include_usage) and `data: [DONE]`. Errors before the first byte are an
 * HTTP status and JSON; later ones an SSE `{error}` event and `data: [DONE]`. Slow readers and disconnects stop the work.
 */
@Injectable()
export class OpenAiHttpResponder {
  constructor(
    @Inject(GenerationService) private readonly generation: GenerationService,
    @Inject(GatewayMetrics) private readonly metrics: GatewayMetrics,
    @Inject(SERVED_MODEL) private readonly model: ServedModel,
    @Inject(LOGGER) private readonly log: Logger,
    @Inject(GATEWAY_CONFIG) private readonly config: GatewayConfig,
  ) {}

  /**
   * parse: the body → ParsedHttpRequest; throws InvalidArgumentError naming the body field. A batch
   * (several prompts) runs as one generation per prompt; choice i answers prompt i, the usage is summed,
   * and the answer is over when every prompt's is (any failure ends the whole answer with that error).
   */
  async respond(res: Response, parse: () => ParsedHttpRequest, format: OpenAiResponseFormat): Promise<void> {
    let requests: GenerationJobRequest[];
    let isStream: boolean;
    let isUsageStreamed: boolean;
    const principal = principalOf(res);
    try {
      const parsed = parse();
      if (parsed.model !== undefined && parsed.model !== this.model.name) throw new ModelNotFoundError(parsed.model, this.model.name);
      ({ isStream, isUsageStreamed } = parsed);
      requests = parsed.requests.map((request) => this.generation.prepare(request, principal));
    } catch (error) {
      return this.sendError(res, toHttpFieldError(error));
    }
    const requestIds = requests.map((r) => r.requestId);
    res.setHeader('x-request-id', requestIds.join(', '));
    const id = `${format.idPrefix}${requestIds[0]}`;
    const created = Math.floor(Date.now() / 1000);
    const envelope = (object: string) => ({ id, object, created, model: this.model.name });
    const tokens: TokenEvent[][] = requests.map(() => []);
    const finishReasons: Array<string | null> = requests.map(() => null);
    const finishReasonLabels: FinishReasonLabel[] = requests.map(() => 'error');
    /** Characters of each choice's text streamed so far (completions' text_offset). */
    const numCharsSent: number[] = requests.map(() => 0);
    const usage = { prompt_tokens: 0, completion_tokens: 0, total_tokens: 0 };
    let isOver = false;
    const abandonAll = () => requestIds.forEach((requestId) => void this.generation.abandon(requestId));
    // Also after the last event: a client that never reads it would hold the response (and its buffer).
    const backpressure = new ClientBackpressure(this.config.slowClient, () => {
      this.metrics.slowClients.inc({ transport: 'http' });
      this.log.warn({ requestId: requestIds[0] }, 'client reads too slowly; closing its stream');
      if (!isOver) {
        isOver = true;
        this.count(res, Status.RESOURCE_EXHAUSTED, requests.length);
        abandonAll();
      }
      res.destroy();
    });
    res.on('drain', () => backpressure.drained());
    res.on('finish', () => backpressure.dispose());
    res.on('close', () => {
      backpressure.dispose();
      if (isOver) return;
      isOver = true;
      this.count(res, Status.CANCELLED, requests.length);
      abandonAll();
    });
    const chunk = (index: number, choice: object) => ({ ...envelope(format.chunkObject), choices: [{ ...choice, index }] });
    const finishAll = (): void => {
      isOver = true;
      if (isStream) {
        if (isUsageStreamed) writeSse(res, { ...envelope(format.chunkObject), choices: [], usage });
        res.write('data: [DONE]\n\n');
        res.end();
      } else {
        const choices = requests.map((r, i) => ({ ...format.choice(tokens[i], finishReasons[i] ?? 'stop', r.logprobs), index: i }));
        res.status(200).json({ ...envelope(format.object), choices, usage });
      }
      for (const reason of finishReasonLabels) this.metrics.countRequest('http', '200', reason);
    };
    const listenerOf =
      (index: number) =>
      (event: StreamEvent): void => {
        if (isOver) return;
        if (event.$case === 'token') {
          if (isStream) {
            backpressure.wrote(writeSse(res, chunk(index, format.tokenChoice(event.value, requests[index].logprobs, numCharsSent[index]))));
            if (requests[index].logprobs) numCharsSent[index] += numChars(event.value.text); // only text_offset reads it
          } else {
            tokens[index].push(event.value);
          }
          return;
        }
        if (event.$case === 'error') {
          isOver = true;
          abandonAll();
          this.sendError(res, event.value, requests.length);
          return;
        }
        const { promptTokens, completionTokens } = event.value.usage ?? { promptTokens: 0, completionTokens: 0 };
        usage.prompt_tokens += promptTokens;
        usage.completion_tokens += completionTokens;
        usage.total_tokens += promptTokens + completionTokens;
        finishReasons[index] = FINISH_REASONS[event.value.finishReason];
        finishReasonLabels[index] = finishReasonLabel(event.value.finishReason);
        if (isStream) writeSse(res, chunk(index, format.finishChoice(finishReasons[index])));
        if (finishReasons.every((reason) => reason !== null)) finishAll();
      };
    try {
      if (isStream) {
        res.status(200).set({ 'content-type': 'text/event-stream', 'cache-control': 'no-cache', connection: 'keep-alive' });
      }
      for (const [index, request] of requests.entries()) {
        if (isOver) break;
        await this.generation.start(request, principal, listenerOf(index), null);
      }
      if (isStream && !res.headersSent) res.flushHeaders();
    } catch (error) {
      if (isOver) return;
      isOver = true;
      abandonAll();
      this.sendError(res, error, requests.length);
    }
  }

  /** Before the first byte: an HTTP status and JSON; mid-stream: an SSE event `{error}`, then `data: [DONE]`. */
  private sendError(res: Response, error: unknown, numRequests = 1): void {
    if (isUnexpected(error)) this.log.error({ err: error }, 'completion failed');
    const code = grpcStatusOf(error);
    this.count(res, code, numRequests);
    if (res.headersSent) {
      // as vLLM: the error as one event, then [DONE], so clients that read to [DONE] end cleanly
      writeSse(res, errorBody(error));
      res.end('data: [DONE]\n\n');
      return;
    }
    if (error instanceof RateLimitedError) res.setHeader('retry-after', String(Math.ceil(error.retryAfterMs / 1000)));
    res.status(httpStatusOf(code)).json(errorBody(error));
  }

  /**
   * numRequests generations ended without a final event. The status label is the HTTP code: the one sent
   * (200 for a stream cut after it began), the one about to be sent, or 499 when the client left first.
   */
  private count(res: Response, code: Status, numRequests: number): void {
    const status = code === Status.CANCELLED ? 499 : res.headersSent ? res.statusCode : httpStatusOf(code);
    this.metrics.countRequest('http', String(status), 'error', numRequests);
  }
}

function errorBody(error: unknown) {
  const serviceError = toServiceError(error);
  const code = serviceError.code ?? Status.INTERNAL;
  const param = error instanceof InvalidArgumentError || error instanceof ModelNotFoundError ? error.field : null;
  const specificCode = error instanceof ModelNotFoundError ? 'model_not_found' : error instanceof UnsupportedParameterError ? 'unsupported_parameter' : null;
  return openAiErrorBody(httpStatusOf(code), serviceError.details ?? '', param, specificCode ?? statusName(code).toLowerCase());
}

/** false when the response buffer is above its high-water mark (the client is behind). */
function writeSse(res: Response, data: unknown): boolean {
  return res.write(`data: ${JSON.stringify(data)}\n\n`);
}
