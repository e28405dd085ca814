import { createEngine, GenerationEngine, resolveModelSpec, ThreadedEngine } from '@kcache-serve/kcache';
import { createRedis, redactRedisUrl, waitForRedis } from '@kcache-serve/proto';
import pino from 'pino';
import { startupFailureLine } from '@kcache-serve/proto';
import { withEnvNames } from './option-env-names';
import { WorkerApp } from './worker-app';
import { parseWorkerConfig } from './worker-config';

/** Log fields that could carry a prompt or a credential if someone logged a job whole. */
const REDACTED_PATHS = ['authorization', '*.authorization', 'prompt', '*.prompt', 'promptTokenIds', '*.promptTokenIds', 'stopStrings', '*.stopStrings', 'relayCapability', '*.relayCapability', 'capability', '*.capability'];

async function main(): Promise<void> {
  const config = parseWorkerConfig(process.env);
  const log = pino({ level: config.logLevel, base: { app: 'worker', workerId: config.workerId }, redact: REDACTED_PATHS });
  const engineOptions = { model: await resolveModelSpec(config.model), ...config.engine };
  const engine: GenerationEngine = config.isEngineThreaded ? await ThreadedEngine.start(engineOptions) : await createEngine(engineOptions);
  const redis = createRedis(config.redis);
  try {
    await waitForRedis(redis, config.redis.url, config.redisStartupTimeoutMs);
  } catch (error) {
    redis.disconnect();
    await engine.close();
    throw error;
  }
  redis.on('error', (error) => log.warn({ err: error, redis: redactRedisUrl(config.redis.url) }, 'Redis connection error'));
  const app = new WorkerApp(config, engine, log, redis);
  let exitCode = 0;
  let isStopping = false;
  const stop = (signal: string) => {
    if (isStopping) return;
    isStopping = true;
    log.info({ signal }, 'stopping');
    app.close().then(
      // 'abandoned' jobs are left running on purpose; exiting hands them to other workers.
      () => process.exit(exitCode),
      (error) => {
        log.error({ err: error }, 'unclean shutdown');
        process.exit(1);
      },
    );
  };
  process.once('SIGTERM', () => stop('SIGTERM'));
  process.once('SIGINT', () => stop('SIGINT'));
  if (engine instanceof ThreadedEngine) {
    engine.onThreadFailure((reason) => {
      log.fatal({ reason }, 'engine thread failed; exiting so that the worker is restarted');
      exitCode = 1;
      stop('engineFailure');
    });
  }
  process.on('uncaughtException', (error) => {
    log.fatal({ err: error }, 'uncaught exception');
    exitCode = 1;
    stop('uncaughtException');
  });
  await app.start();
}

main().catch((error) => {
  console.error(startupFailureLine('worker', withEnvNames(error), ['debug', 'trace'].includes(process.env.LOG_LEVEL ?? '')));
  process.exit(1);
});
