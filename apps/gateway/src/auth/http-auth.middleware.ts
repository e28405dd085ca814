import type { NextFunction, Request, Response } from 'express';
import { AuthConfig } from './auth-config';
import { UnauthenticatedError } from '../errors/gateway-errors';
import { ApiKeyAuthenticator } from './api-key-authenticator';
import { openAiErrorBody } from '../errors/openai-error';
import { Principal } from './principal';

const HEALTH_PATHS = new Set(['/healthz', '/readyz']);
const METRICS_PATHS = new Set(['/metrics']);

/** Where the middleware leaves the caller for handlers: `res.locals[PRINCIPAL_LOCAL]`. */
export const PRINCIPAL_LOCAL = 'principal';

export function principalOf(res: Response): Principal {
  const principal = res.locals[PRINCIPAL_LOCAL] as Principal | undefined;
  if (principal === undefined) throw new Error('no principal: the HTTP auth middleware did not run');
  return principal;
}

/**
 * Express middleware, registered before the body parser: requests without a valid `Authorization: Bearer`
 * key get 401 (and WWW-Authenticate) before their body is read; health and metrics paths pass when open.
 */
export function httpAuthMiddleware(authenticator: ApiKeyAuthenticator, config: AuthConfig, onRefused: () => void) {
  return (req: Request, res: Response, next: NextFunction): void => {
    const isOpen = (HEALTH_PATHS.has(req.path) && !config.isHealthProtected) || (METRICS_PATHS.has(req.path) && !config.isMetricsProtected);
    if (isOpen) return next();
    try {
      res.locals[PRINCIPAL_LOCAL] = authenticator.authenticate(req.headers.authorization);
    } catch (error) {
      onRefused();
      const message = error instanceof UnauthenticatedError ? error.message : 'invalid API key';
      // The body may still be arriving; answering now and closing keeps us from reading it.
      res.status(401).set({ 'www-authenticate': 'Bearer', connection: 'close' }).json(openAiErrorBody(401, message, null, 'invalid_api_key'));
      return;
    }
    next();
  };
}
