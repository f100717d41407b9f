import assert from 'node:assert/strict';
import { type ChildProcess, spawn } from 'node:child_process';
import { existsSync, readFileSync } from 'node:fs';
import { dirname, join, relative } from 'node:path';
import { createInterface } from 'node:readline';
import { after, before, describe, it } from 'node:test';
import { demoControl, uniqueId } from '../helpers/gateway.js';
import { type GatewayProcess, startGatewayProcess } from '../helpers/gateway-process.js';

/**
 * README.md, followed as a newcomer follows it: the blocks of the tour, the control tour, the SDK examples,
 * the publisher snippet and the CLI run against a gateway this test starts, and what they print is compared
 * with what the README says they print.
 *
 * Markers in README.md (HTML comments, invisible on GitHub), on the line before a fenced block:
 *   <!-- readme-test: run NAME -->               a block this test runs (bash through `bash -c`, js as an ES module)
 *   <!-- readme-test: output NAME [any-order] --> the lines block NAME prints, in order unless any-order
 *   <!-- readme-test: skip (why) -->             a block this test leaves alone
 * Every bash block carries one, and every run/output name is used here, so a new command cannot slip past.
 *
 * What differs from a newcomer's terminal, and nothing else:
 * - the gateway is `node dist/src/main.js` (what `npm start` runs) on config/demo.json with its simulated
 *   devices on port 0 (a copy), listening on a free port, and with AMQP_URL set (the CLI block publishes
 *   through RabbitMQ). Every `127.0.0.1:8080` in a block becomes `127.0.0.1:<that port>`;
 * - every block and the gateway get QUEUE_PREFIX=<unique> and RETENTION_QUEUE_EXPIRES_MS=60000, so the shared
 *   RabbitMQ's queues of other runs are never touched and nothing stays behind; the SDK examples get
 *   SWITCHBOARD_URL (their documented variable) for the port.
 */

const readme = readFileSync('README.md', 'utf8');

interface Block {
  kind: 'run' | 'output' | 'skip';
  name: string;
  flags: string[];
  lang: string;
  text: string;
  line: number;
}

/** The fenced blocks of a markdown text with the marker before each (if any). */
function parseBlocks(markdown: string): { marked: Block[]; unmarked: Array<{ lang: string; line: number }> } {
  const lines = markdown.split('\n');
  const marked: Block[] = [];
  const unmarked: Array<{ lang: string; line: number }> = [];
  for (let i = 0; i < lines.length; i++) {
    const open = /^```(\w*)\s*$/.exec(lines[i]!);
    if (!open) continue;
    const end = lines.indexOf('```', i + 1);
    assert.ok(end > i, `README.md:${i + 1}: unclosed block`);
    const marker = /^<!-- readme-test: (run|output|skip)\s*([^\s>]*)\s*(.*?)\s*-->$/.exec(lines[i - 1] ?? '');
    if (marker) {
      marked.push({
        kind: marker[1] as Block['kind'],
        name: marker[1] === 'skip' ? '' : marker[2]!,
        flags: marker[3]!.split(/\s+/).filter(Boolean),
        lang: open[1]!,
        text: lines.slice(i + 1, end).join('\n'),
        line: i + 1,
      });
    } else {
      unmarked.push({ lang: open[1]!, line: i + 1 });
    }
    i = end;
  }
  return { marked, unmarked };
}

const { marked, unmarked } = parseBlocks(readme);

/** The names this test runs and compares; the README must have exactly these. */
const runNames = ['tour-join', 'tour-publish', 'control-bind', 'control-rest', 'sdk-control', 'sdk-notify', 'sdk-notify-publish', 'publisher', 'cli'];
const outputNames = ['tour-join', 'control-bind', 'control-change', 'sdk-control', 'sdk-notify'];

function block(kind: 'run' | 'output', name: string): Block {
  const found = marked.filter((b) => b.kind === kind && b.name === name);
  assert.equal(found.length, 1, `README.md has one "${kind} ${name}" block`);
  return found[0]!;
}

const running = new Set<ChildProcess>();

/** A process started from a README block: its stdout lines as they come, read with a cursor. */
class Started {
  readonly lines: string[] = [];
  stderr = '';
  private cursor = 0;
  private readonly waiters = new Set<() => void>();
  readonly exited: Promise<number | null>;

  constructor(readonly name: string, readonly child: ChildProcess) {
    running.add(child);
    createInterface({ input: child.stdout! }).on('line', (line) => {
      this.lines.push(line);
      for (const wake of this.waiters) wake();
    });
    child.stderr!.on('data', (d: Buffer) => (this.stderr += d.toString()));
    this.exited = new Promise((resolve) =>
      child.on('close', (code) => {
        running.delete(child);
        for (const wake of this.waiters) wake();
        resolve(code);
      }),
    );
  }

  /** The next `count` lines (waits for them; fails if the process ends first or nothing comes in time). */
  async next(count: number, timeoutMs = 20_000): Promise<string[]> {
    const deadline = Date.now() + timeoutMs;
    while (this.lines.length < this.cursor + count) {
      if (this.child.exitCode !== null || this.child.signalCode !== null) break;
      const remaining = deadline - Date.now();
      if (remaining <= 0) break;
      await new Promise<void>((resolve) => {
        const timer = setTimeout(done, remaining);
        const waiters = this.waiters;
        function done() {
          clearTimeout(timer);
          waiters.delete(done);
          resolve();
        }
        waiters.add(done);
      });
    }
    const got = this.lines.slice(this.cursor, this.cursor + count);
    assert.equal(got.length, count, `"${this.name}" printed ${JSON.stringify(this.lines.slice(this.cursor))}, expected ${count} lines; stderr: ${this.stderr}`);
    this.cursor += count;
    return got;
  }

  /** Ends the block's whole process group (bash and what it started). */
  async stop(): Promise<void> {
    if (this.child.exitCode === null && this.child.signalCode === null) process.kill(-this.child.pid!, 'SIGTERM');
    await this.exited;
  }
}

describe('README.md, run as written', () => {
  let gw: GatewayProcess;
  let env: NodeJS.ProcessEnv;
  const substitute = (text: string) => text.replaceAll('127.0.0.1:8080', `127.0.0.1:${gw.port}`);

  /** Starts a run block in its own process group, as a terminal would. */
  const start = (name: string): Started => {
    const b = block('run', name);
    const [command, args] =
      b.lang === 'bash' ? ['bash', ['-c', `set -eo pipefail\n${substitute(b.text)}`]] : [process.execPath, ['--input-type=module', '-e', substitute(b.text)]];
    assert.ok(b.lang === 'bash' || b.lang === 'js', `README.md:${b.line}: run blocks are bash or js`);
    return new Started(name, spawn(command, args as string[], { cwd: process.cwd(), env, detached: true, stdio: ['ignore', 'pipe', 'pipe'] }));
  };

  /** Runs a block to its end; fails on a non-zero exit. */
  const run = async (name: string): Promise<Started> => {
    const started = start(name);
    const timer = setTimeout(() => void started.stop(), 30_000);
    const code = await started.exited;
    clearTimeout(timer);
    assert.equal(code, 0, `"${name}" exited with ${code}; stdout: ${started.lines.join('\n')}; stderr: ${started.stderr}`);
    return started;
  };

  /** The next lines of a started block must be the README's output block of that name. */
  const expectOutput = async (started: Started, name: string) => {
    const b = block('output', name);
    const expected = substitute(b.text).split('\n');
    const got = await started.next(expected.length);
    if (b.flags.includes('any-order')) assert.deepEqual([...got].sort(), [...expected].sort(), `README.md:${b.line}`);
    else assert.deepEqual(got, expected, `README.md:${b.line}`);
  };

  before(async () => {
    const prefix = `${uniqueId('readme')}.`;
    const shared = { QUEUE_PREFIX: prefix, RETENTION_QUEUE_EXPIRES_MS: '60000' };
    const control = demoControl();
    gw = await startGatewayProcess(
      { ...JSON.parse(readFileSync('config/demo.json', 'utf8')), control },
      { AMQP_URL: 'amqp://guest:guest@127.0.0.1:5672', ...shared },
    );
    env = { ...process.env, ...shared, SWITCHBOARD_URL: gw.wsUrl };
    // A newcomer's terminal has none of these; an inherited one would change what a block does.
    for (const name of ['AMQP_URL', 'REDIS_URL', 'PORT', 'SWITCHBOARD_CONFIG', 'SWITCHBOARD_GATEWAY', 'SWITCHBOARD_API_KEY', 'TOKEN_VERIFIER']) delete env[name];
  });

  after(async () => {
    for (const child of running) {
      try {
        process.kill(-child.pid!, 'SIGKILL');
      } catch {
        // Already gone between its exit and the 'close' event.
      }
    }
    await gw?.stop();
  });

  it('marks every shell block, and names only blocks this test runs', () => {
    assert.deepEqual(unmarked.filter((b) => b.lang === 'bash' || b.lang === 'sh'), [], 'every bash block needs a readme-test marker');
    assert.deepEqual(marked.filter((b) => b.kind === 'run').map((b) => b.name).sort(), [...runNames].sort());
    assert.deepEqual(marked.filter((b) => b.kind === 'output').map((b) => b.name).sort(), [...outputNames].sort());
    // npx run on this repository's own bin first installs the project into npx's cache and runs its
    // `prepare` (a full build, into the dist/ other tests are running from): the README says node bin/switchboard.js.
    for (const b of marked.filter((b) => b.kind === 'run')) assert.doesNotMatch(b.text, /\bnpx\b/, `README.md:${b.line}: no npx in a block a newcomer runs here`);
  });

  it('links only to files in the repository (a clone has nothing beside it), and they exist', () => {
    for (const file of ['README.md', 'docs/notify-protocol.md', 'docs/control-protocol.md', 'sdk/README.md']) {
      const text = readFileSync(file, 'utf8');
      const links = [...text.matchAll(/\]\(([^)\s]+)\)/g)].map((m) => m[1]!);
      for (const link of links) {
        if (link.startsWith('#')) continue;
        assert.doesNotMatch(link, /^[a-z]+:/i, `${file} links outside the repository: ${link}`);
        const target = join(dirname(file), link.split('#')[0]!);
        assert.ok(!relative('.', target).startsWith('..'), `${file} links outside the repository: ${link}`);
        assert.ok(existsSync(target), `${file} links to a missing file: ${link}`);
      }
    }
    assert.doesNotMatch(readme, /\.\.\/shared/, 'no path out of the repository in the README text');
  });

  it('five-minute tour: alice joins, a published message arrives exactly as sent', async () => {
    const alice = start('tour-join');
    await expectOutput(alice, 'tour-join');
    const publish = await run('tour-publish');
    assert.equal(publish.lines[0]?.trim(), 'HTTP/1.1 202 Accepted');
    const sent = /-d '([^']+)'/.exec(block('run', 'tour-publish').text)?.[1];
    assert.ok(sent, 'the publish block sends a body with -d');
    assert.deepEqual(await alice.next(1), [sent]);
    await alice.stop();
  });

  it('control tour: bind and debug, switch the display on over REST, see the change', async () => {
    const socket = start('control-bind');
    await expectOutput(socket, 'control-bind');
    const rest = await run('control-rest');
    const text = rest.lines.join('\n');
    assert.ok(text.startsWith('true'), `the exec prints true: ${text}`);
    const systems = JSON.parse(text.slice('true'.length)) as Array<{ id: string }>;
    assert.deepEqual(systems.map((s) => s.id), ['sys-demo'], 'the user key lists only sys-demo');
    await expectOutput(socket, 'control-change');
    await socket.stop();
  });

  it('SDK examples: control switches the power over, notify completes once both are published', async () => {
    await expectOutput(await run('sdk-control'), 'sdk-control');
    const notify = start('sdk-notify');
    const expected = block('output', 'sdk-notify').text.split('\n');
    assert.deepEqual(await notify.next(2), expected.slice(0, 2), 'joined, then says what it waits for');
    await run('sdk-notify-publish');
    assert.deepEqual(await notify.next(expected.length - 2), expected.slice(2));
    assert.equal(await notify.exited, 0, notify.stderr);
  });

  it('publishing: the publisher snippet and the CLI lines reach a joined socket', async () => {
    const alice = start('tour-join');
    await expectOutput(alice, 'tour-join');

    await run('publisher');
    const fromSnippet = (await alice.next(3)).map((line) => JSON.parse(line) as { data: Record<string, unknown> });
    assert.deepEqual(
      fromSnippet.map(({ data }) => [data.type, data.id, data.command_status ?? data.output_type]),
      [
        ['X-DPT-CAB-ID', '5f0c2a9e', 1],
        ['X-DPT-CAB-ID', '5f0c2a9e', 2],
        ['X-DPT-CAB-REQUEST-ID', 'b24b68f6', 1],
      ],
    );

    const cli = await run('cli');
    const example = /e\.g\. `(published [^`]+)`/.exec(readme.replace(/\n/g, ' '))?.[1];
    assert.ok(example, 'the README shows what the CLI prints');
    assert.equal(cli.lines[0], substitute(example));
    assert.equal(cli.lines.length, 3, cli.lines.join('\n'));
    const fromCli = (await alice.next(3)).map((line) => (JSON.parse(line) as { data: { id: string } }).data.id);
    assert.deepEqual(fromCli, ['23f7978a', 'b24b68f6', '1']);
    await alice.stop();
  });
});
