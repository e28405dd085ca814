import { All, Body, Controller, Inject, Post, Res } from '@nestjs/common';
import type { Response } from 'express';
import { parseCompletionBody, toGenerateRequests } from './completion-request';
import { completionFormat } from './completion-format';
import { sendMethodNotAllowed } from './method-not-allowed';
import { OpenAiHttpResponder, parsedHttpRequest } from './openai-http-responder';

/** OpenAI-style POST /v1/completions; `stream: true` answers as server-sent events on the same path. */
@Controller('v1')
export class CompletionsController {
  constructor(@Inject(OpenAiHttpResponder) private readonly responder: OpenAiHttpResponder) {}

  @Post('completions')
  complete(@Body() body: unknown, @Res() res: Response): Promise<void> {
    return this.responder.respond(
      res,
      () => {
        const parsed = parseCompletionBody(body);
        return parsedHttpRequest(toGenerateRequests(parsed), parsed);
      },
      completionFormat,
    );
  }

  /** Any other method on the path: 405 with Allow, as OpenAI's API answers. */
  @All('completions')
  wrongMethod(@Res() res: Response): void {
    sendMethodNotAllowed(res, 'POST');
  }
}
