import { Module } from '@nestjs/common';
import { GenerationModule } from '../generation/generation.module';
import { ChatCompletionsController } from './chat-completions.controller';
import { CompletionsController } from './completions.controller';
import { ModelsController } from './models.controller';
import { OpenAiHttpResponder } from './openai-http-responder';

/** The OpenAI-compatible HTTP endpoints: /v1/completions, /v1/chat/completions and /v1/models. */
@Module({ imports: [GenerationModule], controllers: [CompletionsController, ChatCompletionsController, ModelsController], providers: [OpenAiHttpResponder] })
export class CompletionsModule {}
