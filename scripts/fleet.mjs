#!/usr/bin/env node
// `npm run fleet`: a fleet of two gateway nodes on this machine, without Docker, sharing the local RabbitMQ
// and Redis the way compose.yaml's nodes share theirs. Each node is `node dist/src/main.js` (what
// `npm start` runs) with its own port and NODE_ID; Ctrl-C (or SIGTERM) stops both, each draining as on a
// deploy. Any other variable (SWITCHBOARD_CONFIG, QUEUE_PREFIX, REDIS_KEY_PREFIX, LOG_FORMAT, ...) reaches
// both nodes unchanged.
import { spawn } from 'node:child_process';
import { fileURLToPath } from 'node:url';
import { parseArgs } from 'node:util';

const usage = `Usage: npm run fleet [-- --ports 8081,8082] [-- --name fleet]

Starts two gateway nodes (dist/src/main.js; run npm run build first if you changed the code) on the
local RabbitMQ (AMQP_URL, default amqp://guest:guest@127.0.0.1:5672) and Redis (REDIS_URL, default
redis://127.0.0.1:6379), listening on 127.0.0.1 (HOST) at the two ports, with NODE_IDs <name>-1 and
<name>-2. Ctrl-C stops both.
`;

let values;
try {
  ({ values } = parseArgs({
    options: {
      ports: { type: 'string', default: '8081,8082' },
      name: { type: 'string', default: 'fleet' },
      help: { type: 'boolean', short: 'h', default: false },
    },
    strict: true,
    allowPositionals: false,
  }));
} catch (err) {
  process.stderr.write(`fleet: ${err.message}\n${usage}`);
  process.exit(2);
}
if (values.help) {
  process.stdout.write(usage);
  process.exit(0);
}
const ports = values.ports.split(',').map((p) => p.trim());
if (ports.length !== 2 || ports.some((p) => !/^\d+$/.test(p) || Number(p) > 65_535)) {
  process.stderr.write(`fleet: --ports takes two port numbers, e.g. 8081,8082\n`);
  process.exit(2);
}

const main = fileURLToPath(new URL('../dist/src/main.js', import.meta.url));
const shared = {
  AMQP_URL: process.env.AMQP_URL || 'amqp://guest:guest@127.0.0.1:5672',
  REDIS_URL: process.env.REDIS_URL || 'redis://127.0.0.1:6379',
  HOST: process.env.HOST || '127.0.0.1',
};

let stopping = false;
let failed = false;
const nodes = ports.map((port, i) => {
  const nodeId = `${values.name}-${i + 1}`;
  const child = spawn(process.execPath, [main], { env: { ...process.env, ...shared, PORT: port, NODE_ID: nodeId }, stdio: 'inherit' });
  const exited = new Promise((resolve) =>
    child.on('exit', (code, signal) => {
      if (!stopping) {
        // One node gone on its own (bad config, port taken, Redis unreachable): the fleet is not what was asked for.
        process.stderr.write(`fleet: ${nodeId} exited (${signal ?? code}); stopping the other node\n`);
        failed = true;
        stop();
      } else if (code !== 0) {
        failed = true;
      }
      resolve();
    }),
  );
  return { nodeId, port, child, exited };
});

function stop() {
  if (stopping) return;
  stopping = true;
  // SIGTERM even when the terminal already sent SIGINT to the whole group: the gateway's stop is idempotent.
  for (const { child } of nodes) if (child.exitCode === null && child.signalCode === null) child.kill('SIGTERM');
}
process.on('SIGINT', stop);
process.on('SIGTERM', stop);

process.stderr.write(
  `fleet: ${nodes.map((n) => `${n.nodeId} on http://${shared.HOST}:${n.port}`).join(', ')}; AMQP_URL=${shared.AMQP_URL.replace(/\/\/[^@/]*@/, '//')} REDIS_URL=${shared.REDIS_URL}; Ctrl-C stops both\n`,
);
await Promise.all(nodes.map((n) => n.exited));
process.exit(failed ? 1 : 0);
