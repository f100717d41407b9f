import { NotificationClient } from '@switchboard/sdk';

const url = process.env.SWITCHBOARD_URL ?? 'ws://127.0.0.1:8080';
const client = new NotificationClient({ url: `${url}/`, poll: async () => null }); // poll: ask your backend after a reconnect
client.on('pending', (e) => console.log('pending:', e.commandId, e.body));
console.log('joined', (await client.join('demo-token-alice')).channelId); // re-joined after every reconnection
console.log('waiting up to 60 s for command 23f7978a to finish, then for download b24b68f6');
const { body } = await client.command('23f7978a', { timeoutMs: 60_000 }); // status 3 rejects: CommandFailedError
console.log('done:', body);
console.log('link:', await client.download('b24b68f6', { timeoutMs: 60_000 }));
await client.close();
