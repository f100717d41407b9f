import { createHash } from 'node:crypto';
import { z } from 'zod';
import { defineDriver, method } from '../../driver-api/driver-api.js';
import { TcpLineClient } from '../../driver-api/transport/tcp-line-client.js';
import {
  type PjlinkCommand,
  formatCommand,
  inputCodePattern,
  parseLine,
  pjlinkDefaultPort,
  pjlinkErrors,
  powerStates,
} from './pjlink-codec.js';

const settingsSchema = z
  .object({
    /** The projector's address; or `simulator`: the id of a simulated device in `control.simulators`. */
    host: z.string().min(1).default('127.0.0.1'),
    port: z.number().int().min(1).max(65_535).default(pjlinkDefaultPort),
    simulator: z.string().min(1).optional(),
    password: z.string().optional(),
    /** Power, input and mute are queried this often while connected. */
    pollMs: z.number().int().min(100).default(5_000),
    commandTimeoutMs: z.number().int().min(50).default(2_000),
    reconnectInitialMs: z.number().int().min(10).default(250),
    reconnectMaxMs: z.number().int().min(10).default(10_000),
  })
  .default({ host: '127.0.0.1', port: pjlinkDefaultPort, pollMs: 5_000, commandTimeoutMs: 2_000, reconnectInitialMs: 250, reconnectMaxMs: 10_000 });

class PjlinkError extends Error {
  override name = 'PjlinkError';
}

interface Pending {
  command: PjlinkCommand;
  line: string;
  resolve: (value: string) => void;
  reject: (err: Error) => void;
  cancelTimeout?: () => void;
}

/**
 * A PJLink class 1 projector over TCP (real device protocol; see pjlink-codec.ts). One command in flight
 * at a time, in order; each answer is matched to it. Status: `connected`, `power` (boolean),
 * `power_state` (off/on/cooling/warming), `input` (PJLink code, e.g. "31" = first digital input), `mute`.
 * The connection is re-established with exponential backoff when the projector drops it.
 */
export const pjlinkDriver = defineDriver({
  name: 'Projector',
  description: 'PJLink class 1 projector over TCP',
  settings: settingsSchema,
  async load(mod) {
    const status = mod.status<{ connected: boolean; power: boolean; power_state: string; input: string; mute: boolean; name: string }>({ connected: false });
    const target = mod.settings.simulator ? mod.device(mod.settings.simulator) : { host: mod.settings.host, port: mod.settings.port };
    if (!target) throw new Error(`simulated device ${mod.settings.simulator} is not running`);

    const queue: Pending[] = [];
    // The load resolves once the first connection attempt has settled, so a module that just started
    // (after a failover, say) answers its first exec with the device's answer, not "not connected".
    let firstAttemptSettled: () => void = () => {};
    const firstAttempt = new Promise<void>((resolve) => (firstAttemptSettled = resolve));
    let inFlight: Pending | undefined;
    let authPrefix = '';
    let stopPolling: (() => void) | undefined;

    const fail = (pending: Pending, err: Error) => {
      pending.cancelTimeout?.();
      pending.reject(err);
    };
    const pump = () => {
      if (inFlight || queue.length === 0 || !client.isConnected) return;
      const next = queue.shift()!;
      inFlight = next;
      client.send(authPrefix + next.line);
      authPrefix = '';
      next.cancelTimeout = mod.after(mod.settings.commandTimeoutMs, () => {
        if (inFlight !== next) return;
        inFlight = undefined;
        next.reject(new PjlinkError(`no answer to ${next.command} within ${mod.settings.commandTimeoutMs} ms`));
        // A lost answer would pair every later answer with the wrong command: start again cleanly.
        client.reset('answer timeout');
      });
    };
    const send = (command: PjlinkCommand, param: string): Promise<string> =>
      new Promise((resolve, reject) => {
        if (!client.isConnected) {
          reject(new PjlinkError(`projector not connected (${target.host}:${target.port})`));
          return;
        }
        queue.push({ command, line: formatCommand(command, param), resolve, reject });
        pump();
      });
    const checked = async (command: PjlinkCommand, param: string): Promise<string> => {
      const value = await send(command, param);
      const error = pjlinkErrors[value];
      if (error) throw new PjlinkError(`${command} ${param}: ${error} (${value})`);
      return value;
    };

    const refresh = async () => {
      const power = await checked('POWR', '?');
      const state = powerStates[power as keyof typeof powerStates] ?? 'unknown';
      status.set('power_state', state);
      status.set('power', power === '1' || power === '3');
      status.set('input', await checked('INPT', '?'));
      status.set('mute', (await checked('AVMT', '?')).endsWith('1'));
    };

    const client = new TcpLineClient({
      host: target.host,
      port: target.port,
      initialBackoffMs: mod.settings.reconnectInitialMs,
      maxBackoffMs: mod.settings.reconnectMaxMs,
      connectTimeoutMs: mod.settings.commandTimeoutMs,
      schedule: (ms, fn) => mod.after(ms, fn),
      onConnect: () => mod.log.debug(`connected to ${target.host}:${target.port}`),
      onLine: (text) => {
        const line = parseLine(text);
        if (line.kind === 'greeting') {
          authPrefix = line.auth ? createHash('md5').update(line.random + (mod.settings.password ?? '')).digest('hex') : '';
          status.set('connected', true);
          firstAttemptSettled();
          stopPolling = mod.every(mod.settings.pollMs, refresh);
          // One catch for both queries: a NAME that times out must not become an unhandled rejection.
          refresh()
            .then(async () => status.set('name', await checked('NAME', '?')))
            .catch((err: Error) => mod.log.warn(`first query failed: ${err.message}`));
        } else if (line.kind === 'auth-error') {
          mod.log.error('projector refused the password');
        } else if (line.kind === 'answer' && inFlight && line.command === inFlight.command) {
          const done = inFlight;
          inFlight = undefined;
          done.cancelTimeout?.();
          done.resolve(line.value);
          pump();
        } else {
          mod.log.warn(`unexpected line from projector: ${text}`);
        }
      },
      onDisconnect: (reason, retryInMs) => {
        firstAttemptSettled();
        stopPolling?.();
        status.set('connected', false);
        mod.log.warn(`${reason}; reconnecting in ${retryInMs} ms`);
        const lost = new PjlinkError('connection lost');
        if (inFlight) fail(inFlight, lost);
        inFlight = undefined;
        for (const pending of queue.splice(0)) fail(pending, lost);
      },
    });
    client.start();
    mod.after(mod.settings.commandTimeoutMs, firstAttemptSettled);
    await firstAttempt;

    return {
      methods: {
        power: method({ state: z.boolean() }, async ({ state }) => {
          await checked('POWR', state ? '1' : '0');
          status.set('power', state);
          status.set('power_state', state ? 'on' : 'off');
          mod.log.debug(`power changed to ${state}`);
          return state;
        }),
        input: method({ code: z.string().regex(inputCodePattern, 'a PJLink input code such as "31"') }, async ({ code }) => {
          await checked('INPT', code);
          status.set('input', code);
          mod.log.debug(`input changed to ${code}`);
          return code;
        }),
        mute: method({ state: z.boolean() }, async ({ state }) => {
          await checked('AVMT', state ? '31' : '30');
          status.set('mute', state);
          return state;
        }),
        inputs: method({}, async () => (await checked('INST', '?')).split(' ')),
        refresh: method({}, async () => {
          await refresh();
          return { power: status.get('power'), input: status.get('input'), mute: status.get('mute') };
        }),
      },
      onUnload() {
        client.close();
      },
    };
  },
});
