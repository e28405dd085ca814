import { DynamicModule, Module } from '@nestjs/common';
import type { Redis } from 'ioredis';
import type { Logger } from 'pino';
import { CompletionsModule } from './completions/completions.module';
import { GatewayConfig } from './config/gateway-config';
import { CoreModule } from './core/core.module';
import { ServedModel } from './core/served-model';
import { GenerationModule } from './generation/generation.module';
import { GrpcModule } from './grpc/grpc.module';
import { HealthModule } from './health/health.module';
import { MetricsModule } from './metrics/metrics.module';

@Module({})
export class AppModule {
  static register(config: GatewayConfig, model: ServedModel, log: Logger, redis: Redis): DynamicModule {
    return {
      module: AppModule,
      imports: [CoreModule.register(config, model, log, redis), GenerationModule, GrpcModule, HealthModule, MetricsModule, CompletionsModule],
    };
  }
}
