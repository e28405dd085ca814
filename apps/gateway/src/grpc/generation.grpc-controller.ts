import { Metadata, ServerWritableStream, status as Status } from '@grpc/grpc-js';
import { Inject, Injectable } from '@nestjs/common';
import { GenerateRequest, GenerateResponse, GenerationJobRequest, GenerationServer, REQUEST_ID_METADATA_KEY } from '@kcache-serve/proto';
import type { Logger } from 'pino';
import { ApiKeyAuthenticator } from '../auth/api-key-authenticator';
import { authorizationOf } from '../auth/grpc-auth-interceptor';
import { Principal } from '../auth/principal';
import { GATEWAY_CONFIG, GatewayConfig } from '../config/gateway-config';
import { LOGGER } from '../core/tokens';
import { FinishReasonLabel, finishReasonLabel, GatewayMetrics } from '../metrics/gateway-metrics';
import { ClientTooSlowError, InvalidArgumentError } from '../errors/gateway-errors';
import { ClientBackpressure } from '../generation/client-backpressure';
import { GenerationService } from '../generation/generation.service';
import { StreamEvent } from '../generation/request-stream';
import { grpcStatusOf, isUnexpected, statusName, toServiceError } from '../errors/error-status';
import { isMalformed } from './lenient-decoding';
import { resetCall } from './reset-call';

/** kcache.v1.Generation over gRPC: a thin adapter from calls to GenerationService. */
@Injectable()
export class GenerationGrpcController {
  readonly implementation: GenerationServer = {
    generate: (call) => this.generate(call),
    cancel: (call, callback) => {
      if (isMalformed(call.request)) return callback(toServiceError(new InvalidArgumentError('request', 'not a valid kcache.v1.CancelRequest message')));
      this.generation.cancel(call.request.requestId).then(
        (cancelled) => callback(null, { cancelled }),
        (error) => {
          if (isUnexpected(error)) this.log.error({ err: error }, 'Cancel failed');
          callback(toServiceError(error));
        },
      );
    },
  };

  constructor(
    @Inject(GenerationService) private readonly generation: GenerationService,
    @Inject(GatewayMetrics) private readonly metrics: GatewayMetrics,
    @Inject(LOGGER) private readonly log: Logger,
    @Inject(ApiKeyAuthenticator) private readonly authenticator: ApiKeyAuthenticator,
    @Inject(GATEWAY_CONFIG) private readonly config: GatewayConfig,
  ) {}

  private generate(call: ServerWritableStream<GenerateRequest, GenerateResponse>): void {
    let request: GenerationJobRequest;
    let principal: Principal;
    try {
      if (isMalformed(call.request)) {
        throw call.request.cause instanceof InvalidArgumentError ? call.request.cause : new InvalidArgumentError('request', 'not a valid kcache.v1.GenerateRequest message');
      }
      // The interceptor refused calls without a valid key already; this names the caller for its limits.
      principal = this.authenticator.authenticate(authorizationOf(call.metadata));
      request = this.generation.prepare(call.request, principal);
    } catch (error) {
      return this.fail(call, error);
    }
    // The id goes out once the job is queued, so that a Cancel sent on it finds the job on any gateway;
    // also before the first event, should a worker be faster than the queue's answer.
    let isIdSent = false;
    const sendId = (): void => {
      if (isIdSent) return;
      isIdSent = true;
      const metadata = new Metadata();
      metadata.set(REQUEST_ID_METADATA_KEY, request.requestId);
      call.sendMetadata(metadata);
    };

    let isOver = false;
    // Also after the final event: a client that never reads it would hold the call (and its buffer) forever.
    const backpressure = new ClientBackpressure(this.config.slowClient, () => {
      this.metrics.slowClients.inc({ transport: 'grpc' });
      this.log.warn({ requestId: request.requestId }, 'client reads too slowly; cutting its stream');
      const wasOver = isOver;
      if (!isOver) {
        isOver = true;
        this.count(Status.RESOURCE_EXHAUSTED);
        void this.generation.abandon(request.requestId);
      }
      if (!resetCall(call) && !wasOver) call.emit('error', toServiceError(new ClientTooSlowError('the client read too slowly; stream cut')));
    });
    call.on('drain', () => backpressure.drained());
    call.on('finish', () => backpressure.dispose());
    call.on('cancelled', () => {
      backpressure.dispose();
      if (isOver) return;
      isOver = true;
      const isPastDeadline = Number(call.getDeadline()) <= Date.now();
      this.count(isPastDeadline ? Status.DEADLINE_EXCEEDED : Status.CANCELLED);
      void this.generation.abandon(request.requestId);
    });
    const listener = (event: StreamEvent): void => {
      if (isOver) return;
      sendId();
      if (event.$case === 'token') {
        backpressure.wrote(call.write({ event }));
        return;
      }
      isOver = true;
      if (event.$case === 'error') return this.fail(call, event.value);
      call.write({ event });
      call.end();
      this.count(Status.OK, finishReasonLabel(event.value.finishReason));
    };
    const deadline = Number(call.getDeadline());
    this.generation.start(request, principal, listener, Number.isFinite(deadline) ? deadline : null, () => isOver || sendId()).catch((error) => {
      if (isOver) return;
      isOver = true;
      this.fail(call, error);
    });
  }

  private fail(call: ServerWritableStream<GenerateRequest, GenerateResponse>, error: unknown): void {
    if (isUnexpected(error)) this.log.error({ err: error }, 'Generate failed');
    this.count(grpcStatusOf(error));
    call.emit('error', toServiceError(error));
  }

  private count(code: Status, finishReason: FinishReasonLabel = 'error'): void {
    this.metrics.countRequest('grpc', statusName(code), finishReason);
  }
}
