import { Metadata, ServerWritableStream, status as Status } from '@grpc/grpc-js';
import { Inject, Injectable } from '@nestjs/common';
import { GenerateRequest, GenerateResponse, GenerationJobRequest, GenerationServer, REQUEST_ID_METADATA_KEY } from '@kcache-serve/proto';
import type { Logger } from 'pino';
import { LOGGER } from '../core/tokens';
import { grpcStatusOf, isUnexpected, statusName, toServiceError } from '../grpc/grpc-status';
import { GatewayMetrics } from '../metrics/gateway-metrics';
import { GenerationService } from './generation.service';
import { StreamEvent } from './request-stream';

/** kcache.v1.Generation over gRPC: a thin adapter from calls to GenerationService. */
@Injectable()
export class GenerationGrpcController {
  readonly implementation: GenerationServer = {
    generate: (call) => this.generate(call),
    cancel: (call, callback) => {
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
  ) {}

  private generate(call: ServerWritableStream<GenerateRequest, GenerateResponse>): void {
    let request: GenerationJobRequest;
    try {
      request = this.generation.prepare(call.request);
    } catch (error) {
      return this.fail(call, error);
    }
    const metadata = new Metadata();
    metadata.set(REQUEST_ID_METADATA_KEY, request.requestId);
    call.sendMetadata(metadata);

    let isOver = false;
    call.on('cancelled', () => {
      if (isOver) return;
      isOver = true;
      const isPastDeadline = Number(call.getDeadline()) <= Date.now();
      this.count(isPastDeadline ? Status.DEADLINE_EXCEEDED : Status.CANCELLED);
      void this.generation.abandon(request.requestId);
    });
    const listener = (event: StreamEvent): void => {
      if (isOver) return;
      if (event.type === 'token') {
        call.write({ event: { $case: 'token', value: event.token } });
        return;
      }
      isOver = true;
      if (event.type === 'error') return this.fail(call, event.error);
      call.write({ event: { $case: 'final', value: event.final } });
      call.end();
      this.count(Status.OK);
    };
    const deadline = Number(call.getDeadline());
    this.generation.start(request, listener, Number.isFinite(deadline) ? deadline : null).catch((error) => {
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

  private count(code: Status): void {
    this.metrics.requests.inc({ transport: 'grpc', status: statusName(code) });
  }
}
