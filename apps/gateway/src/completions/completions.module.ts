import { Module } from '@nestjs/common';
import { GenerationModule } from '../generation/generation.module';
import { CompletionsController } from './completions.controller';

@Module({ imports: [GenerationModule], controllers: [CompletionsController] })
export class CompletionsModule {}
