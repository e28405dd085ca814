import { Module } from '@nestjs/common';
import { GenerationModule } from '../generation/generation.module';
import { ChatCompletionsController } from './chat-completions.controller';
import { CompletionsController } from './completions.controller';
import { OpenAiHttpResponder } from './openai-http-responder';

/** The OpenAI-compatible HTTP endpoints: /v1/completions and /v1/chat/completions. */
@Module({ imports: [GenerationModule], controllers: [CompletionsController, ChatCompletionsController], providers: [OpenAiHttpResponder] })
export class CompletionsModule {}
