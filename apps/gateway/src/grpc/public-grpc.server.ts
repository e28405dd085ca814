import { Server } from '@grpc/grpc-js';
import { loadSync } from '@grpc/proto-loader';
import { ReflectionService } from '@grpc/reflection';
import { Inject, Injectable, OnApplicationBootstrap, OnApplicationShutdown, BeforeApplicationShutdown } from '@nestjs/common';
import { GenerationService as GenerationServiceDefinition, PROTO_DIR, PUBLIC_PROTO_FILE } from '@kcache-serve/proto';
import { HealthImplementation, protoPath as healthProtoPath } from 'grpc-health-check';
import { dirname } from 'node:path';
import type { Logger } from 'pino';
import { ApiKeyAuthenticator } from '../auth/api-key-authenticator';
import { grpcAuthInterceptor } from '../auth/grpc-auth-interceptor';
import { GATEWAY_CONFIG, GatewayConfig } from '../config/gateway-config';
import { LOGGER } from '../core/tokens';
import { GatewayMetrics } from '../metrics/gateway-metrics';
import { GenerationGrpcController } from './generation.grpc-controller';
import { bindServer, shutdownServer } from './grpc-server-lifecycle';
import { lenientDecoding } from './lenient-decoding';
import { serverCredentialsOf } from './server-credentials';
import { answerUnknownMethodsBehindInterceptors } from './unknown-methods-behind-interceptors';

const GENERATION_SERVICE_NAME = 'kcache.v1.Generation';
const HEALTH_METHOD_PREFIX = '/grpc.health.v1.Health/';

/** The public port: kcache.v1.Generation, grpc.health.v1.Health and server reflection. */
@Injectable()
export class PublicGrpcServer implements OnApplicationBootstrap, BeforeApplicationShutdown, OnApplicationShutdown {
  private readonly server: Server;
  private readonly health = new HealthImplementation({ '': 'NOT_SERVING', [GENERATION_SERVICE_NAME]: 'NOT_SERVING' });

  constructor(
    @Inject(GATEWAY_CONFIG) private readonly config: GatewayConfig,
    @Inject(GenerationGrpcController) controller: GenerationGrpcController,
    @Inject(LOGGER) private readonly log: Logger,
    @Inject(ApiKeyAuthenticator) authenticator: ApiKeyAuthenticator,
    @Inject(GatewayMetrics) metrics: GatewayMetrics,
  ) {
    const isOpen = (path: string) => path.startsWith(HEALTH_METHOD_PREFIX) && !config.auth.isHealthProtected;
    this.server = new Server({
      // Oversized requests fail with RESOURCE_EXHAUSTED before any handler runs.
      'grpc.max_receive_message_length': config.maxRequestBytes,
      interceptors: [grpcAuthInterceptor(authenticator, isOpen, () => metrics.authFailures.inc({ transport: 'grpc' }))],
    });
    answerUnknownMethodsBehindInterceptors(this.server);
    this.server.addService(lenientDecoding(GenerationServiceDefinition), controller.implementation);
    this.health.addToServer(this.server);
    // keepCase: reflection must advertise the .proto's own field names (max_new_tokens), as protoc does;
    // without it protobufjs renames them to camelCase and grpcurl's JSON (snake_case, as documented) is refused.
    const definitions = loadSync([PUBLIC_PROTO_FILE, healthProtoPath], { keepCase: true, includeDirs: [PROTO_DIR, dirname(healthProtoPath)] });
    new ReflectionService(definitions).addToServer(this.server);
  }

  async onApplicationBootstrap(): Promise<void> {
    const port = await bindServer(this.server, this.config.grpcHost, this.config.grpcPort, serverCredentialsOf(this.config.tls));
    this.setServing(true);
    this.log.info({ port, isTls: this.config.tls !== null }, 'public gRPC listening');
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
