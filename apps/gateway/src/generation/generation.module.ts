import { Module } from '@nestjs/common';
import { GATEWAY_CONFIG, GatewayConfig } from '../config/gateway-config';
import { ServedModel } from '../core/served-model';
import { SERVED_MODEL } from '../core/tokens';
import { KeyLimiter } from '../limits/key-limiter';
import { GenerationService } from './generation.service';
import { JobFailureListener } from './job-failure-listener';
import { RelayAddress } from './relay-address';
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
    { provide: RelayAddress, useValue: new RelayAddress() },
    GenerationService,
    JobFailureListener,
    StreamWatchdog,
  ],
  exports: [GenerationService, StreamRegistry, RelayAddress],
})
export class GenerationModule {}
