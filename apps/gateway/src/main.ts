import 'reflect-metadata';
import { NestFactory } from '@nestjs/core';
import { NestExpressApplication } from '@nestjs/platform-express';
import pino from 'pino';
import { AppModule } from './app.module';
import { parseGatewayConfig } from './config/gateway-config';
import { PinoNestLogger } from './core/pino-nest-logger';
import { loadServedModel } from './core/served-model';
import { resolveModelSpec } from '@kcache-serve/kcache';

async function main(): Promise<void> {
  const config = parseGatewayConfig(process.env);
  const log = pino({ level: config.logLevel, base: { app: 'gateway', gatewayId: config.gatewayId } });
  const model = loadServedModel(await resolveModelSpec(config.model));
  const app = await NestFactory.create<NestExpressApplication>(AppModule.register(config, model, log), {
    logger: new PinoNestLogger(log),
    bodyParser: false,
  });
  app.useBodyParser('json', { limit: config.maxRequestBytes });
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
  log.info({ httpPort: typeof address === 'object' && address ? address.port : config.httpPort, model: model.name }, 'gateway ready');
}

main().catch((error) => {
  console.error(error);
  process.exit(1);
});
