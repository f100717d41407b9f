import { z } from 'zod';
import { defineDriver, method } from '../../driver-api/driver-api.js';

const defaultScenes = { off: 0, presentation: 40, meeting: 70, full: 100 };

/** Demo lighting: one dimmer level and named scenes (settings `scenes`: name -> level). */
export const lightsDriver = defineDriver({
  name: 'Lights',
  description: 'Simulated dimmer with scenes (demo)',
  settings: z
    .object({ scenes: z.record(z.string().min(1), z.number().int().min(0).max(100)).default(defaultScenes) })
    .default({ scenes: defaultScenes }),
  load(mod) {
    const status = mod.status({ level: 0 });
    const setLevel = (level: number) => {
      status.set('level', level);
      mod.log.debug(`level changed to ${level}`);
      return level;
    };
    return {
      methods: {
        set_level: method({ level: z.number().int().min(0).max(100) }, ({ level }) => setLevel(level)),
        scene: method({ name: z.string() }, ({ name }) => {
          const scenes = mod.settings.scenes;
          if (!Object.hasOwn(scenes, name)) throw new Error(`unknown scene ${name}`);
          mod.log.debug(`scene ${name}`);
          return setLevel(scenes[name]!);
        }),
      },
    };
  },
});
