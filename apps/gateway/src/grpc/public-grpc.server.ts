import { Server, ServerCredentials } from '@grpc/grpc-js';
import { loadSync } from '@grpc/proto-loader';
import { ReflectionService } from '@grpc/reflection';
import { Inject, Injectable, OnApplicationBootstrap, OnApplicationShutdown, BeforeApplicationShutdown } from '@nestjs/common';
import { GenerationService as GenerationServiceDefinition, PROTO_DIR, PUBLIC_PROTO_FILE } from '@kcache-serve/proto';
import { HealthImplementation, protoPath as healthProtoPath } from 'grpc-health-check';
import { dirname } from 'node:path';
import type { Logger } from 'pino';
import { GATEWAY_CONFIG, GatewayConfig } from '../config/gateway-config';
import { LOGGER } from '../core/tokens';
import { GenerationGrpcController } from '../generation/generation.grpc-controller';
import { bindServer, shutdownServer } from './grpc-server-lifecycle';

const GENERATION_SERVICE_NAME = 'kcache.v1.Generation';

/** The public port: kcache.v1.Generation, grpc.health.v1.Health and server reflection. */
@Injectable()
export class PublicGrpcServer implements OnApplicationBootstrap, BeforeApplicationShutdown, OnApplicationShutdown {
  private readonly server: Server;
  private readonly health = new HealthImplementation({ '': 'NOT_SERVING', [GENERATION_SERVICE_NAME]: 'NOT_SERVING' });

  constructor(
    @Inject(GATEWAY_CONFIG) private readonly config: GatewayConfig,
    @Inject(GenerationGrpcController) controller: GenerationGrpcController,
    @Inject(LOGGER) private readonly log: Logger,
  ) {
    // Oversized requests fail with RESOURCE_EXHAUSTED before any handler runs.
    this.server = new Server({ 'grpc.max_receive_message_length': config.maxRequestBytes });
    this.server.addService(GenerationServiceDefinition, controller.implementation);
    this.health.addToServer(this.server);
    const definitions = loadSync([PUBLIC_PROTO_FILE, healthProtoPath], { includeDirs: [PROTO_DIR, dirname(healthProtoPath)] });
    new ReflectionService(definitions).addToServer(this.server);
  }

  async onApplicationBootstrap(): Promise<void> {
    const port = await bindServer(this.server, this.config.grpcHost, this.config.grpcPort, ServerCredentials.createInsecure());
    this.setServing(true);
    this.log.info({ port }, 'public gRPC listening');
  }

  beforeApplicationShutdown(): void {
    this.setServing(false);
  }

  async onApplicationShutdown(): Promise<void> {
    await shutdownServer(this.server, 2000);
  }

  private setServing(isServing: boolean): void {
    const status = isServing ? 'SERVING' : 'NOT_SERVING';
    this.health.setStatus('', status);
    this.health.setStatus(GENERATION_SERVICE_NAME, status);
  }
}
