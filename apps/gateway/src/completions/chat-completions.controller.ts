import { Body, Controller, Inject, Post, Res } from '@nestjs/common';
import type { Response } from 'express';
import { parseChatCompletionBody, toChatGenerateRequest } from './chat-completion-request';
import { chatCompletionFormat } from './chat-completion-format';
import { OpenAiHttpResponder } from './openai-http-responder';

/**
 * OpenAI-style POST /v1/chat/completions: the conversation goes through the model's chat template (a
 * model without one answers 400); `stream: true` answers as server-sent events on the same path.
 */
@Controller('v1/chat')
export class ChatCompletionsController {
  constructor(@Inject(OpenAiHttpResponder) private readonly responder: OpenAiHttpResponder) {}

  @Post('completions')
  complete(@Body() body: unknown, @Res() res: Response): Promise<void> {
    return this.responder.respond(
      res,
      () => {
        const parsed = parseChatCompletionBody(body);
        return { request: toChatGenerateRequest(parsed), isStream: parsed.stream };
      },
      chatCompletionFormat,
    );
  }
}
