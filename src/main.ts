import { createGateway } from './app.js';
import { ConfigError, loadConfig } from './config/load.js';
import { silentLogger } from './core/logger.js';
import { describeDriverFiles } from './runtime/hosts/driver-files.js';

/** Process entry: load config, build the app, listen, drain on SIGTERM/SIGINT. */
async function main(): Promise<void> {
  let loaded;
  try {
    loaded = loadConfig();
  } catch (err) {
    if (err instanceof ConfigError) {
      process.stderr.write(`switchboard: ${err.message}\n`);
      process.exit(2);
    }
    throw err;
  }
  let driverFiles;
  try {
    driverFiles = await describeDriverFiles(loaded.config, loaded.file, silentLogger);
  } catch (err) {
    if (err instanceof ConfigError) {
      process.stderr.write(`switchboard: ${err.message}\n`);
      process.exit(2);
    }
    throw err;
  }
  let gateway;
  try {
    gateway = createGateway({ config: loaded.config, configFile: loaded.file, driverFiles });
  } catch (err) {
    process.stderr.write(`switchboard: cannot start: ${(err as Error).message}\n`);
    process.exit(2);
  }
  const { log } = gateway;
  if (loaded.config.demo) {
    log.warn({ file: loaded.file }, 'DEMO CONFIGURATION: well-known tokens and API keys are accepted; never expose this instance');
  }

  let stopping = false;
  const stop = (signal: string) => {
    if (stopping) return;
    stopping = true;
    log.info({ signal }, 'shutting down');
    const forced = setTimeout(() => {
      log.error('shutdown took too long; exiting');
      process.exit(1);
    }, loaded.config.shutdownTimeoutMs);
    forced.unref();
    gateway.close().then(
      () => process.exit(0),
      (err: unknown) => {
        log.error({ err }, 'shutdown failed');
        process.exit(1);
      },
    );
  };
  process.on('SIGTERM', () => stop('SIGTERM'));
  process.on('SIGINT', () => stop('SIGINT'));
  process.on('SIGHUP', () => gateway.reloadTls());
  process.on('unhandledRejection', (reason) => log.error({ err: reason }, 'unhandled rejection'));

  try {
    await gateway.listen();
  } catch (err) {
    log.error({ err }, 'cannot start');
    await gateway.close().catch(() => {});
    process.exit(1);
  }
}

void main();
