import { ConfigError, loadConfig, NovumConfig } from './config';
import { rootLogger } from './logger';

interface Closable {
  close(): Promise<unknown>;
}

/**
 * The shape of every `main.ts`: validate configuration (exit 2 with every problem named), start, and on
 * SIGTERM/SIGINT close what was started in reverse order so in-flight requests finish and connections close.
 */
export function runService(start: (config: NovumConfig) => Promise<Closable[]>): void {
  let config: NovumConfig;
  try {
    config = loadConfig();
  } catch (error) {
    if (error instanceof ConfigError) {
      process.stderr.write(`${error.message}\n`);
      process.exit(2);
    }
    throw error;
  }
  const log = rootLogger(config.logLevel);
  let started: Closable[] = [];
  let stopping = false;
  // A service runs until it is told to stop, even one with nothing else holding the event loop open (a
  // worker alone on the in-process bus would otherwise end, with 0, as soon as it had started).
  const alive = setInterval(() => undefined, 1 << 30);
  const stop = async (signal: string) => {
    if (stopping) return;
    stopping = true;
    clearInterval(alive);
    log.info({ signal }, 'shutting down');
    for (const closable of [...started].reverse()) {
      await closable.close().catch((error) => log.error({ err: error }, 'error while shutting down'));
    }
    process.exit(0);
  };
  process.on('SIGTERM', () => void stop('SIGTERM'));
  process.on('SIGINT', () => void stop('SIGINT'));
  start(config).then(
    (closables) => {
      started = closables;
    },
    (error) => {
      log.fatal({ err: error }, 'failed to start');
      process.exit(1);
    },
  );
}
