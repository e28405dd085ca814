import { Module } from '@nestjs/common';
import { MetricsController } from './metrics.controller';

/** GET /metrics; GatewayMetrics itself comes from CoreModule. */
@Module({ controllers: [MetricsController] })
export class MetricsModule {}
