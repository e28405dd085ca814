import type { Response } from 'express';
import { openAiErrorBody } from '../errors/openai-error';

/** 405 for a method the path does not serve, naming the one it does (Allow). */
export function sendMethodNotAllowed(res: Response, allowed: 'GET' | 'POST'): void {
  res.status(405).set('allow', allowed).json(openAiErrorBody(405, `method ${res.req.method} is not allowed here; use ${allowed}`, null, 'method_not_allowed'));
}
