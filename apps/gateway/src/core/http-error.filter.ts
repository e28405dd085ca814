import { ArgumentsHost, Catch, ExceptionFilter, HttpException } from '@nestjs/common';
import type { Response } from 'express';
import type { Logger } from 'pino';
import { openAiErrorBody } from '../errors/openai-error';

const CODES: Readonly<Record<number, string>> = {
  400: 'invalid_argument',
  401: 'unauthenticated',
  404: 'not_found',
  413: 'resource_exhausted',
  415: 'invalid_argument',
};

/**
 * Errors Nest answers itself (unparseable JSON, body too large, unknown route) in the same shape as the
 * API's own errors: `{ error: { message, type, param } }`. Anything else is a bug: 500, logged, no detail.
 */
@Catch()
export class HttpErrorFilter implements ExceptionFilter {
  constructor(private readonly log: Logger) {}

  catch(exception: unknown, host: ArgumentsHost): void {
    const res = host.switchToHttp().getResponse<Response>();
    const status = exception instanceof HttpException ? exception.getStatus() : 500;
    if (status >= 500) this.log.error({ err: exception }, 'HTTP request failed');
    if (res.headersSent) {
      res.end();
      return;
    }
    const message = status >= 500 ? 'internal error' : exception instanceof HttpException ? exception.message : 'bad request';
    res.status(status).json(openAiErrorBody(status, message, null, CODES[status] ?? (status >= 500 ? 'internal' : 'invalid_argument')));
  }
}
