import { Module } from '@nestjs/common';
import { GATEWAY_CONFIG, GatewayConfig } from '../config/gateway-config';
import { ServedModel } from '../core/served-model';
import { SERVED_MODEL } from '../core/tokens';
import { PublicGrpcServer } from '../grpc/public-grpc.server';
import { GenerationGrpcController } from './generation.grpc-controller';
import { GenerationService } from './generation.service';
import { JobFailureListener } from './job-failure-listener';
import { RelayGrpcServer } from './relay-grpc.server';
import { RequestValidator } from './request-validator';
import { StreamRegistry } from './stream-registry';

@Module({
  providers: [
    { provide: StreamRegistry, useValue: new StreamRegistry() },
    {
      provide: RequestValidator,
      inject: [SERVED_MODEL, GATEWAY_CONFIG],
      useFactory: (model: ServedModel, config: GatewayConfig) => new RequestValidator(model.config, model.tokenizer, config.defaults),
    },
    RelayGrpcServer,
    GenerationService,
    GenerationGrpcController,
    JobFailureListener,
    PublicGrpcServer,
  ],
  exports: [GenerationService, PublicGrpcServer, RelayGrpcServer],
})
export class GenerationModule {}
