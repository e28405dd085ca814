import type { NextFunction, Request, Response } from 'express';

/**
 * Express middleware, before the JSON body parser: a request with a body that is not JSON (text/plain,
 * a form, no content type) gets 415 naming what was sent, instead of being read as an empty JSON body
 * and refused for a missing field.
 */
export function jsonBodiesOnly() {
  return (req: Request, res: Response, next: NextFunction): void => {
    const hasBody = req.headers['transfer-encoding'] !== undefined || Number(req.headers['content-length'] ?? 0) > 0;
    if (!hasBody || req.is(['application/json', 'application/*+json'])) return next();
    const sent = (req.headers['content-type'] ?? 'no content-type').slice(0, 100);
    res
      .status(415)
      .set({ connection: 'close' })
      .json({ error: { message: `content-type: ${sent} is not supported; send application/json`, type: 'invalid_argument', param: 'content-type' } });
  };
}
