import { readFileSync } from 'node:fs';
import { parseArgs } from 'node:util';
import { ConfigError, loadConfig } from '../config/load.js';
import { GatewayError } from '../core/errors.js';
import { connectPublisher, type PublishTarget } from '../publish/connect-publisher.js';

/** Exit codes, also listed in the help text. */
export const exitCodes = { ok: 0, failed: 1, usage: 2, refused: 3, unavailable: 4 } as const;

const help = `Usage: switchboard publish --profile <id> <message> <target>

Publishes one notification for a profile's sockets, through RabbitMQ or a gateway's HTTP endpoint.

Message (exactly one):
  --command-status <1|2|3> --id <command id> --body <text>
        {"data":{"type":"X-DPT-CAB-ID",...}}; 1 pending, 2 success, 3 failed (body = reason)
  --download --id <request id> (--link <url> | --body <text>) [--data-context <ctx>]
        {"data":{"type":"X-DPT-CAB-REQUEST-ID",...}}; --link: output_type 1, --body: output_type 0
  --json <object>      any notification, sent byte for byte, e.g. '{"data":{"type":"X","id":"1"}}'
                       ('-' reads it from standard input)

Target (exactly one):
  --amqp-url <url>     RabbitMQ (default: AMQP_URL). The mailbox is declared as the gateways declare it:
                       QUEUE_PREFIX, RETENTION_* and SWITCHBOARD_CONFIG are read like the gateway reads them.
  --gateway <url>      a gateway's base URL, e.g. http://127.0.0.1:8080 (default: SWITCHBOARD_GATEWAY)
  --api-key <key>      with --gateway: a key with the publish right (default: SWITCHBOARD_API_KEY;
                       prefer the variable, a command line is visible to other users)

  -h, --help           this text

Exit codes: 0 published, 2 usage or invalid message, 3 refused (API key missing, unknown or without the
publish right), 4 target unavailable (broker or gateway down, timeout), 1 anything else.

Examples:
  switchboard publish --profile alice --command-status 2 --id 23f7978a-5561-4718-84ca-c38d7db0843c --body "Command completed successfully"
  switchboard publish --profile alice --download --id b24b68f6 --link "https://download.example/path?auth=token" --gateway http://127.0.0.1:8080 --api-key demo-admin-key
  AMQP_URL=amqp://127.0.0.1 switchboard publish --profile alice --json '{"data":{"type":"X-DPT-CAB-ID","id":"1","command_status":1,"body":"pending"}}'
`;

export interface CliIo {
  stdout: (text: string) => void;
  stderr: (text: string) => void;
  env: NodeJS.ProcessEnv;
  readStdin: () => string;
}

const defaultIo: CliIo = {
  stdout: (text) => process.stdout.write(text),
  stderr: (text) => process.stderr.write(text),
  env: process.env,
  readStdin: () => readFileSync(0, 'utf8'),
};

class UsageError extends Error {}
/** No credential at all: the same exit code as a refused one (--help: "3 refused (API key missing, ...)"). */
class MissingKeyError extends Error {}

/** Runs the CLI; resolves with the process exit code. */
export async function main(argv: string[], io: CliIo = defaultIo): Promise<number> {
  const [command, ...rest] = argv;
  if (command === undefined || command === '-h' || command === '--help' || command === 'help') {
    io[command === undefined ? 'stderr' : 'stdout'](help);
    return command === undefined ? exitCodes.usage : exitCodes.ok;
  }
  if (command !== 'publish') {
    io.stderr(`switchboard: unknown command "${command}"; try: switchboard publish --help\n`);
    return exitCodes.usage;
  }
  try {
    return await publish(rest, io);
  } catch (err) {
    if (err instanceof UsageError) {
      io.stderr(`switchboard publish: ${err.message}\nTry: switchboard publish --help\n`);
      return exitCodes.usage;
    }
    if (err instanceof MissingKeyError) {
      io.stderr(`switchboard publish: ${err.message}\n`);
      return exitCodes.refused;
    }
    if (err instanceof ConfigError) {
      io.stderr(`switchboard publish: ${err.message}\n`);
      return exitCodes.usage;
    }
    if (err instanceof GatewayError) {
      io.stderr(`switchboard publish: ${err.message}\n`);
      if (err.code === 'bad_request') return exitCodes.usage;
      if (err.code === 'unauthorized' || err.code === 'forbidden') return exitCodes.refused;
      if (err.code === 'unavailable' || err.code === 'timeout' || err.code === 'not_found') return exitCodes.unavailable;
      return exitCodes.failed;
    }
    io.stderr(`switchboard publish: ${(err as Error).message}\n`);
    return exitCodes.failed;
  }
}

async function publish(args: string[], io: CliIo): Promise<number> {
  let values;
  try {
    ({ values } = parseArgs({
      args,
      strict: true,
      allowPositionals: false,
      options: {
        profile: { type: 'string' },
        'command-status': { type: 'string' },
        download: { type: 'boolean' },
        json: { type: 'string' },
        id: { type: 'string' },
        body: { type: 'string' },
        link: { type: 'string' },
        'data-context': { type: 'string' },
        'amqp-url': { type: 'string' },
        gateway: { type: 'string' },
        'api-key': { type: 'string' },
        help: { type: 'boolean', short: 'h' },
      },
    }));
  } catch (err) {
    throw new UsageError((err as Error).message);
  }
  if (values.help) {
    io.stdout(help);
    return exitCodes.ok;
  }
  const profile = values.profile;
  if (!profile) throw new UsageError('--profile is required');

  const kinds = [values['command-status'] !== undefined && '--command-status', values.download && '--download', values.json !== undefined && '--json'].filter(Boolean);
  if (kinds.length !== 1) throw new UsageError(`give exactly one of --command-status, --download, --json (got ${kinds.length === 0 ? 'none' : kinds.join(', ')})`);

  const target = resolveTarget(values, io.env);
  const publisher = connectPublisher(target.target);
  try {
    let what: string;
    if (values['command-status'] !== undefined) {
      const status = Number(values['command-status']);
      if (![1, 2, 3].includes(status)) throw new UsageError('--command-status must be 1 (pending), 2 (success) or 3 (failed)');
      if (!values.id) throw new UsageError('--command-status needs --id <command id>');
      if (values.body === undefined) throw new UsageError('--command-status needs --body <text>');
      await publisher.publishCommandStatus(profile, { id: values.id, status: status as 1 | 2 | 3, body: values.body });
      what = `command status ${status} for ${values.id}`;
    } else if (values.download) {
      if (!values.id) throw new UsageError('--download needs --id <request id>');
      if ((values.link === undefined) === (values.body === undefined)) throw new UsageError('--download needs exactly one of --link <url>, --body <text>');
      if (values.link !== undefined && !URL.canParse(values.link)) throw new UsageError('--link must be a URL');
      await publisher.publishDataDownload(profile, {
        id: values.id,
        outputType: values.link !== undefined ? 1 : 0,
        body: values.link ?? values.body!,
        ...(values['data-context'] !== undefined && { dataContext: values['data-context'] }),
      });
      what = `data download for ${values.id}`;
    } else {
      const text = values.json === '-' ? io.readStdin().trim() : values.json!;
      await publisher.publish(profile, text);
      what = 'message';
    }
    io.stdout(`published ${what} to profile ${profile} via ${target.description}\n`);
    return exitCodes.ok;
  } finally {
    await publisher.close();
  }
}

function resolveTarget(values: Record<string, string | boolean | undefined>, env: NodeJS.ProcessEnv): { target: PublishTarget; description: string } {
  const gateway = (values.gateway as string | undefined) ?? (values['amqp-url'] === undefined ? env.SWITCHBOARD_GATEWAY : undefined);
  if (gateway !== undefined && values['amqp-url'] !== undefined) throw new UsageError('give either --amqp-url or --gateway, not both');
  if (gateway !== undefined) {
    if (!URL.canParse(gateway) || !/^https?:$/.test(new URL(gateway).protocol)) throw new UsageError('--gateway must be an http:// or https:// URL');
    const apiKey = (values['api-key'] as string | undefined) ?? env.SWITCHBOARD_API_KEY;
    if (!apiKey) throw new MissingKeyError('--gateway needs an API key: --api-key <key> or SWITCHBOARD_API_KEY');
    return { target: { gatewayUrl: gateway, apiKey }, description: new URL(gateway).origin };
  }
  if (values['api-key'] !== undefined) throw new UsageError('--api-key goes with --gateway');
  // Read the configuration the way the gateway does, so the mailbox is declared with the same arguments.
  const overrides: Record<string, unknown> = values['amqp-url'] !== undefined ? { amqpUrl: values['amqp-url'] } : {};
  const { config } = loadConfig(env, overrides);
  if (!config.amqpUrl) throw new UsageError('no target: give --amqp-url <url> (or AMQP_URL), or --gateway <url> --api-key <key>');
  const url = new URL(config.amqpUrl);
  return {
    target: { amqpUrl: config.amqpUrl, queuePrefix: config.notify.queuePrefix, deadLetterQueue: config.notify.deadLetterQueue, retention: config.notify.retention, connectionName: 'switchboard publish (cli)' },
    description: `RabbitMQ at ${url.host}`,
  };
}
