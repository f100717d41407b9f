import { z } from 'zod';
import { defineDriver, method } from 'switchboard/driver';

/**
 * The bench driver, `ticker`, a driver file run in a driver host as any third-party driver would be:
 * `run(count)` sets its `tick` variable to the current wall-clock ms `count` times as fast as it can
 * (yielding every 100 so notifications go out), `pace(perSecond, seconds)` sets it at a fixed rate
 * (catching up each millisecond with what the rate asks for), `echo(n)` answers at once. Used by the
 * control scenarios of bench/run.ts.
 */
const wallMs = () => performance.timeOrigin + performance.now();

export default defineDriver({
  name: 'Ticker',
  description: 'Bench driver: changes a variable as fast as it can',
  settings: z.object({}).default({}),
  load(mod) {
    const status = mod.status({ tick: 0 });
    return {
      methods: {
        run: method({ count: z.number().int().min(1).max(10_000_000) }, async ({ count }) => {
          for (let i = 0; i < count; i++) {
            status.set('tick', wallMs());
            if (i % 100 === 99) await new Promise((resolve) => setImmediate(resolve));
          }
          return count;
        }),
        pace: method(
          { perSecond: z.number().int().min(1).max(1_000_000), seconds: z.number().min(0.1).max(600) },
          async ({ perSecond, seconds }) => {
            const startedAt = performance.now();
            let changes = 0;
            for (let elapsed = 0; elapsed < seconds * 1_000; elapsed = performance.now() - startedAt) {
              for (const due = Math.floor((elapsed / 1_000) * perSecond); changes < due; changes++) status.set('tick', wallMs());
              await new Promise((resolve) => setTimeout(resolve, 1));
            }
            return changes;
          },
        ),
        echo: method({ n: z.number() }, ({ n }) => n),
      },
    };
  },
});

