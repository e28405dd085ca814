import { All, Body, Controller, Inject, Post, Res } from '@nestjs/common';
import type { Response } from 'express';
import { parseChatCompletionBody, toChatGenerateRequest } from './chat-completion-request';
import { chatCompletionFormat } from './chat-completion-format';
import { sendMethodNotAllowed } from './method-not-allowed';
import { OpenAiHttpResponder, parsedHttpRequest } from './openai-http-responder';

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
        return parsedHttpRequest([toChatGenerateRequest(parsed)], parsed);
      },
      chatCompletionFormat,
    );
  }

  /** Any other method on the path: 405 with Allow, as OpenAI's API answers. */
  @All('completions')
  wrongMethod(@Res() res: Response): void {
    sendMethodNotAllowed(res, 'POST');
  }
}
