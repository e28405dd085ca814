import 'reflect-metadata';
import { readFileSync } from 'node:fs';
import { NestFactory } from '@nestjs/core';
import { NestExpressApplication } from '@nestjs/platform-express';
import { createRedis, redactRedisUrl, waitForRedis } from '@kcache-serve/proto';
import pino from 'pino';
import { AppModule } from './app.module';
import { ApiKeyAuthenticator } from './auth/api-key-authenticator';
import { httpAuthMiddleware } from './auth/http-auth.middleware';
import { parseGatewayConfig } from './config/gateway-config';
import { jsonBodiesOnly } from './core/json-bodies-only.middleware';
import { HttpErrorFilter } from './core/http-error.filter';
import { PinoNestLogger } from './core/pino-nest-logger';
import { loadServedModel } from './core/served-model';
import { startupFailureLine } from '@kcache-serve/proto';
import { GatewayMetrics } from './metrics/gateway-metrics';
import { resolveModelSpec } from '@kcache-serve/kcache/light';

/** Log fields that could carry a key or a prompt if someone logged a request object whole. */
const REDACTED_PATHS = ['authorization', '*.authorization', 'headers.authorization', '*.headers.authorization', 'prompt', '*.prompt', 'messages', '*.messages', 'apiKey', '*.apiKey', 'relayCapability', '*.relayCapability', 'capability', '*.capability'];
const CONTENT_PATHS = new Set(['prompt', '*.prompt', 'messages', '*.messages']);

async function main(): Promise<void> {
  const config = parseGatewayConfig(process.env);
  const log = pino({ level: config.logLevel, base: { app: 'gateway', gatewayId: config.gatewayId }, redact: config.isRequestContentLogged ? REDACTED_PATHS.filter((p) => !CONTENT_PATHS.has(p)) : REDACTED_PATHS });
  const model = loadServedModel(await resolveModelSpec(config.model));
  const redis = createRedis(config.redis);
  try {
    await waitForRedis(redis, config.redis.url, config.redisStartupTimeoutMs);
  } catch (error) {
    redis.disconnect();
    throw error;
  }
  redis.on('error', (error) => log.warn({ err: error, redis: redactRedisUrl(config.redis.url) }, 'Redis connection error'));
  if (config.auth.isEnabled) log.info({ numApiKeys: config.auth.apiKeys.length, isHealthProtected: config.auth.isHealthProtected, isMetricsProtected: config.auth.isMetricsProtected }, 'API key authentication on');
  else log.warn('authentication is OFF (AUTH_MODE=off): anyone who can reach the public ports can generate; set AUTH_MODE=api-key and API_KEY_HASHES outside a local quick start');
  const httpsOptions = config.tls === null ? undefined : { cert: readFileSync(config.tls.certPath), key: readFileSync(config.tls.keyPath) };
  const app = await NestFactory.create<NestExpressApplication>(AppModule.register(config, model, log, redis), {
    logger: new PinoNestLogger(log),
    bodyParser: false,
    httpsOptions,
  });
  app.disable('x-powered-by');
  const metrics = app.get(GatewayMetrics);
  // Before the body parser: an unauthenticated request is refused before its body is read.
  app.use(httpAuthMiddleware(app.get(ApiKeyAuthenticator), config.auth, () => metrics.authFailures.inc({ transport: 'http' })));
  app.use(jsonBodiesOnly());
  app.useBodyParser('json', { limit: config.maxRequestBytes });
  app.useGlobalFilters(new HttpErrorFilter(log));
  // Not enableShutdownHooks: that re-raises the signal after closing, so the exit status would say "killed".
  const stop = (signal: string) => {
    log.info({ signal }, 'stopping');
    app.close().then(
      () => process.exit(0),
      (error) => {
        log.error({ err: error }, 'unclean shutdown');
        process.exit(1);
      },
    );
  };
  process.once('SIGTERM', () => stop('SIGTERM'));
  process.once('SIGINT', () => stop('SIGINT'));
  await app.listen(config.httpPort, config.httpHost);
  const address = app.getHttpServer().address();
  log.info({ httpPort: typeof address === 'object' && address ? address.port : config.httpPort, isTls: config.tls !== null, model: model.name }, 'gateway ready');
}

main().catch((error) => {
  console.error(startupFailureLine('gateway', error, ['debug', 'trace'].includes(process.env.LOG_LEVEL ?? '')));
  process.exit(1);
});
