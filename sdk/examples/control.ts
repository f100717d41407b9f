import { ControlClient } from '../src/index.js';

const url = process.env.SWITCHBOARD_URL ?? 'ws://127.0.0.1:8080';
const control = new ControlClient({ url, apiKey: 'demo-admin-key' });
const power = { sys: 'sys-demo', mod: 'Display', index: 1, name: 'power' };
const values = control.values(power); // bound now, re-bound after every reconnection
console.log('power is', (await values.next()).value);
console.log('exec returned', (await control.exec(power, 'power', [true])).value); // errors: ControlError subclasses
console.log('power is', (await values.next()).value);
await values.return?.();
await control.close();
