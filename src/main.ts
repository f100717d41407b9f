import cluster from 'node:cluster';
import { randomBytes } from 'node:crypto';
import { hostname } from 'node:os';
import { clusterRefusal, currentWorker, workerCount } from './cluster/cluster-plan.js';
import { runPrimary } from './cluster/primary.js';
import { createLogger } from './observability/logger.js';
import { ConfigError, loadConfig } from './config/load.js';
import { silentLogger } from './core/logger.js';

/**
 * Process entry: load config, build the app, listen, drain on SIGTERM/SIGINT. With `workers` > 1 this
 * process is the primary (cluster/primary.ts) and each worker it forks runs the rest of this function.
 */
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
  const count = workerCount(loaded.config);
  const refusal = clusterRefusal(loaded.config, count);
  if (refusal) {
    process.stderr.write(`switchboard: ${refusal}\n`);
    process.exit(2);
  }
  const worker = currentWorker();
  if (count > 1 && cluster.isPrimary) {
    const baseNodeId = loaded.config.nodeId ?? `${hostname()}-${process.pid}-${randomBytes(3).toString('hex')}`;
    const log = createLogger(loaded.config.logLevel, `${baseNodeId}-primary`, undefined, loaded.config.logFormat);
    runPrimary({ count, baseNodeId, log, shutdownTimeoutMs: loaded.config.shutdownTimeoutMs });
    return;
  }
  // Imported here, not at the top: the primary serves nothing, and loading the whole gateway into it cost
  // it 19 MiB of RSS (88 against 69 MiB at start, docs/performance.md "The 5k/s tail").
  const [{ createGateway }, { WorkerMetricsLink }, { describeDriverFiles }] = await Promise.all([
    import('./app.js'),
    import('./cluster/cluster-metrics.js'),
    import('./runtime/hosts/driver-files.js'),
  ]);
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
    // The link needs the gateway's registry, and the gateway asks the link: bound once both exist.
    let link: InstanceType<typeof WorkerMetricsLink> | undefined;
    const cluster = worker && { ...worker, clusterMetrics: () => link!.cluster() };
    gateway = createGateway({ config: loaded.config, configFile: loaded.file, driverFiles, ...(cluster && { worker: cluster }) });
    if (worker) link = new WorkerMetricsLink(gateway.metrics.registry);
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
    const port = await gateway.listen();
    // The primary says "all workers listening" once each worker has sent this.
    if (worker) process.send?.({ type: 'switchboard:listening', port });
  } catch (err) {
    log.error({ err }, 'cannot start');
    await gateway.close().catch(() => {});
    process.exit(1);
  }
}

void main();
