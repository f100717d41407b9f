import type { SimulatorConfig } from '../config/control-schema.js';
import type { Clock } from '../core/clock.js';
import type { Logger } from '../core/logger.js';
import type { DeviceAddress } from '../driver-api/driver-api.js';
import { PjlinkSimulator } from './pjlink-simulator.js';

/**
 * The simulated devices of `control.simulators`, started before the modules so drivers reach them over
 * real TCP. A fixed port already in use is taken to be another local gateway's simulator (a fleet demo on
 * one host) and used as it is; this node then tries to take the port over every `takeOverIntervalMs`,
 * so the device comes back (as this node's own) when that other gateway stops. Any other failure is
 * logged and the modules using it fail to load.
 */
export class DeviceSimulators {
  private readonly running: PjlinkSimulator[] = [];
  private readonly addressMap = new Map<string, DeviceAddress>();
  private readonly retries = new Set<() => void>();
  private stopped = false;

  constructor(
    private readonly configs: readonly SimulatorConfig[],
    private readonly log: Logger,
    private readonly clock: Clock,
    private readonly takeOverIntervalMs = 1_000,
  ) {}

  async start(): Promise<void> {
    for (const config of this.configs) await this.startOne(config, false);
  }

  addresses(): ReadonlyMap<string, DeviceAddress> {
    return this.addressMap;
  }

  async stop(): Promise<void> {
    this.stopped = true;
    for (const cancel of this.retries) cancel();
    this.retries.clear();
    await Promise.all(this.running.splice(0).map((s) => s.stop()));
    this.addressMap.clear();
  }

  private async startOne(config: SimulatorConfig, retrying: boolean): Promise<void> {
    const simulator = new PjlinkSimulator({ host: config.host, port: config.port });
    try {
      const address = await simulator.start();
      if (this.stopped) {
        await simulator.stop();
        return;
      }
      this.running.push(simulator);
      this.addressMap.set(config.id, { host: config.host, port: address.port });
      this.log.info({ simulator: config.id, kind: config.kind, host: config.host, port: address.port }, 'simulated device listening');
    } catch (err) {
      const code = (err as NodeJS.ErrnoException).code;
      if (code === 'EADDRINUSE' && config.port !== 0) {
        this.addressMap.set(config.id, { host: config.host, port: config.port });
        if (!retrying) this.log.warn({ simulator: config.id, port: config.port }, 'simulator port in use; using the device already listening there');
        this.retryLater(config);
      } else {
        this.log.error({ simulator: config.id, err: (err as Error).message }, 'simulated device could not start');
      }
    }
  }

  private retryLater(config: SimulatorConfig): void {
    if (this.stopped) return;
    const cancel = this.clock.schedule(this.takeOverIntervalMs, () => {
      this.retries.delete(cancel);
      if (!this.stopped) void this.startOne(config, true);
    });
    this.retries.add(cancel);
  }
}
