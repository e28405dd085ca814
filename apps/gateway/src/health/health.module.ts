import { Module } from '@nestjs/common';
import { GenerationModule } from '../generation/generation.module';
import { HealthController } from './health.controller';
import { ReadinessService } from './readiness.service';

@Module({ imports: [GenerationModule], controllers: [HealthController], providers: [ReadinessService] })
export class HealthModule {}
