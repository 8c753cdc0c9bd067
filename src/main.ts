import { App } from './app';
import { ConfigError, configPath, loadConfig } from './config/load';
import { createLogger } from './log';

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
  const app = new App(config, log);
  let stopping = false;
  const stop = (signal: string) => {
    if (stopping) return;
    stopping = true;
    log.info('signal received', { signal });
    app.stop().then(() => process.exit(0), (err) => {
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
