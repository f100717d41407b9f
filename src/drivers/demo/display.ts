import { z } from 'zod';
import { defineDriver, method } from '../../driver-api/driver-api.js';

/** Demo display: power, volume and input, each change logged for `debug` subscribers. */
export const displayDriver = defineDriver({
  name: 'Display',
  description: 'Simulated display (demo)',
  settings: z.object({ inputs: z.array(z.string().min(1)).min(1).default(['hdmi1', 'hdmi2', 'displayport']) }).default({ inputs: ['hdmi1', 'hdmi2', 'displayport'] }),
  load(mod) {
    const status = mod.status({ power: false, volume: 50, input: 'hdmi1' });
    const change = <K extends 'power' | 'volume' | 'input'>(name: K, value: boolean | number | string) => {
      status.set(name, value as never);
      mod.log.debug(`${name} changed to ${String(value)}`);
      return value;
    };
    return {
      methods: {
        power: method({ state: z.boolean() }, ({ state }) => change('power', state)),
        volume: method({ level: z.number() }, ({ level }) => {
          if (!Number.isInteger(level) || level < 0 || level > 100) throw new RangeError('volume out of range');
          return change('volume', level);
        }),
        input: method({ name: z.string().min(1) }, ({ name }) => change('input', name)),
        reboot: method(
          {},
          async () => {
            mod.log.info('rebooting');
            change('power', false);
            return change('power', true);
          },
          { clearance: 'support', description: 'Power-cycles the display' },
        ),
      },
    };
  },
});
