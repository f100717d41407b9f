import assert from 'node:assert/strict';
import { once } from 'node:events';
import { createConnection, createServer } from 'node:net';
import { describe, it } from 'node:test';
import { DeviceSimulators } from '../../src/simulators/device-simulators.js';
import { FakeClock } from '../helpers/fake-clock.js';
import { captureLogs } from '../helpers/log-capture.js';

/** What a PJLink client reads first from whatever listens on the port. */
async function greeting(port: number): Promise<string> {
  const socket = createConnection({ host: '127.0.0.1', port });
  const [data] = (await once(socket, 'data')) as [Buffer];
  socket.destroy();
  return String(data);
}

describe('simulated devices of a local fleet', () => {
  it('uses another gateway’s simulator on a taken port, and starts its own once that one is gone', async () => {
    const other = createServer((socket) => socket.end('OTHER\r'));
    await new Promise<void>((resolve) => other.listen(0, '127.0.0.1', resolve));
    const port = (other.address() as { port: number }).port;
    const clock = new FakeClock();
    const logs = captureLogs();
    const simulators = new DeviceSimulators([{ id: 'sim', kind: 'pjlink', host: '127.0.0.1', port }], logs.logger, clock, 1_000);
    try {
      await simulators.start();
      assert.deepEqual(simulators.addresses().get('sim'), { host: '127.0.0.1', port });
      assert.equal(await greeting(port), 'OTHER\r');

      await new Promise<void>((resolve) => other.close(() => resolve()));
      clock.advance(1_000);
      await logs.waitFor((l) => l.msg === 'simulated device listening' && l.port === port);
      assert.match(await greeting(port), /^PJLINK 0\r/);
    } finally {
      await simulators.stop();
      other.close();
    }
  });
});
