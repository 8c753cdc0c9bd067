import { App } from './app';
import { ConfigError, configPath, loadConfig } from './config/load';
import { createLogger } from './log';
import { startTracing, TracingConfigError, type Tracing } from './tracing';

/** The one owner of process signals. */
async function main(): Promise<void> {
  let config;
  try {
    config = loadConfig(configPath());
  } catch (err) {
    if (err instanceof ConfigError) {
      process.stderr.write(`configuration error:\n${err.message}\n`);
      process.exit(78); // EX_CONFIG
    }
    throw err;
  }
  const log = createLogger({ level: config.log.level, podId: config.podId });
  let tracing: Tracing | undefined;
  try {
    // Before the app: the tracer provider is in place when the first call comes.
    tracing = startTracing(process.env, config.podId);
  } catch (err) {
    if (!(err instanceof TracingConfigError)) throw err;
    process.stderr.write(`configuration error:\n${err.message}\n`);
    process.exit(78);
  }
  if (tracing) log.info('tracing on', { exporters: tracing.exporters });
  // The spans of the drain are sent too.
  const flush = () => tracing?.shutdown().catch((err: unknown) => log.warn('flushing traces failed', { error: String(err) }));
  const app = new App(config, log);
  let stopping = false;
  const stop = (signal: string) => {
    if (stopping) return;
    stopping = true;
    log.info('signal received', { signal });
    app.stop().then(async () => {
      await flush();
      process.exit(0);
    }, (err) => {
      log.error('shutdown failed', { error: String(err) });
      process.exit(1);
    });
  };
  process.on('SIGTERM', () => stop('SIGTERM'));
  process.on('SIGINT', () => stop('SIGINT'));
  try {
    await app.start();
  } catch (err) {
    log.error('start-up failed', { error: err instanceof Error ? err.message : String(err) });
    await app.stop().catch(() => undefined);
    process.exit(1);
  }
}

// What escapes main (a start-up bug, not a failed start) ends the process with its stack, as an unhandled rejection would.
main().catch((err) => {
  process.stderr.write(`${err instanceof Error ? err.stack : String(err)}\n`);
  process.exit(1);
});
