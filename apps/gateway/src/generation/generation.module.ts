import { Module } from '@nestjs/common';
import { GATEWAY_CONFIG, GatewayConfig } from '../config/gateway-config';
import { ServedModel } from '../core/served-model';
import { SERVED_MODEL } from '../core/tokens';
import { PublicGrpcServer } from '../grpc/public-grpc.server';
import { KeyLimiter } from '../limits/key-limiter';
import { GenerationGrpcController } from './generation.grpc-controller';
import { GenerationService } from './generation.service';
import { JobFailureListener } from './job-failure-listener';
import { RelayGrpcServer } from './relay-grpc.server';
import { RequestValidator } from './request-validator';
import { StreamRegistry } from './stream-registry';
import { StreamWatchdog } from './stream-watchdog';

@Module({
  providers: [
    { provide: StreamRegistry, useValue: new StreamRegistry() },
    {
      provide: RequestValidator,
      inject: [SERVED_MODEL, GATEWAY_CONFIG],
      useFactory: (model: ServedModel, config: GatewayConfig) => new RequestValidator(model.config, model.tokenizer, config.defaults, config.limits),
    },
    { provide: KeyLimiter, inject: [GATEWAY_CONFIG], useFactory: (config: GatewayConfig) => new KeyLimiter(config.keyLimits) },
    RelayGrpcServer,
    GenerationService,
    GenerationGrpcController,
    JobFailureListener,
    StreamWatchdog,
    PublicGrpcServer,
  ],
  exports: [GenerationService, PublicGrpcServer, RelayGrpcServer],
})
export class GenerationModule {}
