import { ControlClient } from '@switchboard/sdk';

const url = process.env.SWITCHBOARD_URL ?? 'ws://127.0.0.1:8080';
const control = new ControlClient({ url, apiKey: 'demo-admin-key' });
const power = { sys: 'sys-demo', mod: 'Display', index: 1, name: 'power' };
const values = control.values(power); // bound now, re-bound after every reconnection
const before = (await values.next()).value;
console.log('power is', before);
// Switched over, not on: setting the value it already has publishes no change, and the next line would wait forever.
console.log('exec returned', (await control.exec(power, 'power', [!before])).value); // errors: ControlError subclasses
console.log('power is', (await values.next()).value);
await values.return?.();
await control.close();
