import { Body, Controller, Inject, Post, Res } from '@nestjs/common';
import { status as Status } from '@grpc/grpc-js';
import { FinishReason, GenerationJobRequest, TokenEvent } from '@kcache-serve/proto';
import type { Response } from 'express';
import { principalOf } from '../auth/http-auth.middleware';
import { GATEWAY_CONFIG, GatewayConfig } from '../config/gateway-config';
import { SERVED_MODEL } from '../core/tokens';
import { ServedModel } from '../core/served-model';
import { ClientBackpressure } from '../generation/client-backpressure';
import { InvalidArgumentError, RateLimitedError } from '../generation/gateway-errors';
import { GenerationService } from '../generation/generation.service';
import { StreamEvent } from '../generation/request-stream';
import type { Logger } from 'pino';
import { LOGGER } from '../core/tokens';
import { grpcStatusOf, httpStatusOf, isUnexpected, statusName, toServiceError } from '../grpc/grpc-status';
import { GatewayMetrics } from '../metrics/gateway-metrics';
import { parseCompletionBody, toGenerateRequest, toHttpFieldError } from './completion-request';

const FINISH_REASONS: Record<FinishReason, string> = {
  [FinishReason.FINISH_REASON_UNSPECIFIED]: 'stop',
  [FinishReason.FINISH_REASON_LENGTH]: 'length',
  [FinishReason.FINISH_REASON_STOP]: 'stop',
  [FinishReason.FINISH_REASON_EOS]: 'stop',
  [FinishReason.FINISH_REASON_CANCELLED]: 'cancelled',
  [FinishReason.UNRECOGNIZED]: 'stop',
};

/** OpenAI-style POST /v1/completions; `stream: true` answers as server-sent events on the same path. */
@Controller('v1')
export class CompletionsController {
  constructor(
    @Inject(GenerationService) private readonly generation: GenerationService,
    @Inject(GatewayMetrics) private readonly metrics: GatewayMetrics,
    @Inject(SERVED_MODEL) private readonly model: ServedModel,
    @Inject(LOGGER) private readonly log: Logger,
    @Inject(GATEWAY_CONFIG) private readonly config: GatewayConfig,
  ) {}

  @Post('completions')
  async complete(@Body() body: unknown, @Res() res: Response): Promise<void> {
    let request: GenerationJobRequest;
    let isStream: boolean;
    const principal = principalOf(res);
    try {
      const parsed = parseCompletionBody(body);
      isStream = parsed.stream;
      request = this.generation.prepare(toGenerateRequest(parsed), principal);
    } catch (error) {
      return this.sendError(res, toHttpFieldError(error));
    }
    const id = `cmpl-${request.requestId}`;
    const created = Math.floor(Date.now() / 1000);
    const envelope = { id, object: 'text_completion', created, model: this.model.name };
    const tokens: TokenEvent[] = [];
    let isOver = false;
    // Also after the last event: a client that never reads it would hold the response (and its buffer).
    const backpressure = new ClientBackpressure(this.config.slowClient, () => {
      this.metrics.slowClients.inc({ transport: 'http' });
      this.log.warn({ requestId: request.requestId }, 'client reads too slowly; closing its stream');
      if (!isOver) {
        isOver = true;
        this.count(Status.RESOURCE_EXHAUSTED);
        void this.generation.abandon(request.requestId);
      }
      res.destroy();
    });
    res.on('drain', () => backpressure.drained());
    res.on('finish', () => backpressure.dispose());
    res.on('close', () => {
      backpressure.dispose();
      if (isOver) return;
      isOver = true;
      this.count(Status.CANCELLED);
      void this.generation.abandon(request.requestId);
    });
    const listener = (event: StreamEvent): void => {
      if (isOver) return;
      if (event.type === 'token') {
        if (isStream) backpressure.wrote(writeSse(res, { ...envelope, choices: [choice(event.token.text, null, [event.token], request.logprobs)] }));
        else tokens.push(event.token);
        return;
      }
      isOver = true;
      if (event.type === 'error') {
        this.sendError(res, event.error);
        return;
      }
      const usage = event.final.usage ?? { promptTokens: 0, completionTokens: 0 };
      const usageBody = { prompt_tokens: usage.promptTokens, completion_tokens: usage.completionTokens, total_tokens: usage.promptTokens + usage.completionTokens };
      const finishReason = FINISH_REASONS[event.final.finishReason];
      if (isStream) {
        writeSse(res, { ...envelope, choices: [choice('', finishReason, [], false)], usage: usageBody });
        res.write('data: [DONE]\n\n');
        res.end();
      } else {
        const text = tokens.map((t) => t.text).join('');
        res.status(200).json({ ...envelope, choices: [choice(text, finishReason, tokens, request.logprobs)], usage: usageBody });
      }
      this.count(Status.OK);
    };
    try {
      if (isStream) {
        res.status(200).set({ 'content-type': 'text/event-stream', 'cache-control': 'no-cache', connection: 'keep-alive' });
        res.setHeader('x-request-id', request.requestId);
      }
      await this.generation.start(request, principal, listener, null);
      if (isStream && !res.headersSent) res.flushHeaders();
    } catch (error) {
      if (isOver) return;
      isOver = true;
      this.sendError(res, error);
    }
  }

  /** Before the first byte: an HTTP status and JSON; mid-stream: a final SSE `error` event. */
  private sendError(res: Response, error: unknown): void {
    if (isUnexpected(error)) this.log.error({ err: error }, 'completion failed');
    const code = grpcStatusOf(error);
    this.count(code);
    if (res.headersSent) {
      writeSse(res, { error: errorBody(error) });
      res.end();
      return;
    }
    if (error instanceof RateLimitedError) res.setHeader('retry-after', String(Math.ceil(error.retryAfterMs / 1000)));
    res.status(httpStatusOf(code)).json({ error: errorBody(error) });
  }

  private count(code: Status): void {
    this.metrics.requests.inc({ transport: 'http', status: statusName(code) });
  }
}

function choice(text: string, finishReason: string | null, tokens: readonly TokenEvent[], isLogprobs: boolean) {
  return {
    index: 0,
    text,
    finish_reason: finishReason,
    logprobs: isLogprobs ? { tokens: tokens.map((t) => t.text), token_ids: tokens.map((t) => t.tokenId), token_logprobs: tokens.map((t) => t.logprob ?? null) } : null,
  };
}

function errorBody(error: unknown) {
  const serviceError = toServiceError(error);
  return {
    message: serviceError.details,
    type: statusName(serviceError.code ?? Status.INTERNAL).toLowerCase(),
    param: error instanceof InvalidArgumentError ? error.field : null,
  };
}

/** false when the response buffer is above its high-water mark (the client is behind). */
function writeSse(res: Response, data: unknown): boolean {
  return res.write(`data: ${JSON.stringify(data)}\n\n`);
}
