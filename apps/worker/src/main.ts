import { createEngine, resolveModelSpec } from '@kcache-serve/kcache';
import pino from 'pino';
import { WorkerApp } from './worker-app';
import { parseWorkerConfig } from './worker-config';

async function main(): Promise<void> {
  const config = parseWorkerConfig(process.env);
  const log = pino({ level: config.logLevel, base: { app: 'worker', workerId: config.workerId } });
  const engine = await createEngine({ model: await resolveModelSpec(config.model), ...config.engine });
  const app = new WorkerApp(config, engine, log);
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
  process.on('uncaughtException', (error) => {
    log.fatal({ err: error }, 'uncaught exception');
    exitCode = 1;
    stop('uncaughtException');
  });
  await app.start();
}

main().catch((error) => {
  console.error(error);
  process.exit(1);
});
