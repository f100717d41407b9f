import assert from 'node:assert/strict';
import { execFileSync } from 'node:child_process';
import { once } from 'node:events';
import { mkdtempSync, readFileSync, renameSync } from 'node:fs';
import { request } from 'node:https';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, before, describe, it } from 'node:test';
import { WebSocket } from 'ws';
import { type GatewayProcess, startGatewayProcess } from '../helpers/gateway-process.js';

/** A self-signed certificate for 127.0.0.1 made by openssl, as an operator would for a test. */
function makeCertificate(dir: string, name: string): { cert: string; key: string } {
  const cert = join(dir, `${name}.crt`);
  const key = join(dir, `${name}.key`);
  execFileSync('openssl', ['req', '-x509', '-newkey', 'ec', '-pkeyopt', 'ec_paramgen_curve:P-256', '-nodes', '-days', '1', '-subj', `/CN=${name}`,
    '-addext', 'subjectAltName=IP:127.0.0.1,DNS:localhost', '-keyout', key, '-out', cert], { stdio: 'ignore' });
  return { cert, key };
}

function getHealth(port: number, ca: Buffer): Promise<number> {
  return new Promise((resolve, reject) => {
    const req = request({ host: '127.0.0.1', port, path: '/health', ca, agent: false }, (res) => {
      res.resume();
      resolve(res.statusCode ?? 0);
    });
    req.on('error', reject);
    req.end();
  });
}

/** Issue 10 "Must show 3": wss:// and https:// served directly; a new certificate on SIGHUP, open sockets kept. */
describe('native TLS', () => {
  const dir = mkdtempSync(join(tmpdir(), 'switchboard-tls-'));
  const first = makeCertificate(dir, 'first');
  const second = makeCertificate(dir, 'second');
  const live = { cert: join(dir, 'live.crt'), key: join(dir, 'live.key') };
  let gw: GatewayProcess;

  before(async () => {
    execFileSync('cp', [first.cert, live.cert]);
    execFileSync('cp', [first.key, live.key]);
    gw = await startGatewayProcess({}, { TLS_CERT_FILE: live.cert, TLS_KEY_FILE: live.key });
  });
  after(() => gw?.stop());

  it('serves https and wss, and takes a new certificate on SIGHUP without dropping an open socket', async () => {
    const caFirst = readFileSync(first.cert);
    const caSecond = readFileSync(second.cert);
    assert.equal(await getHealth(gw.port, caFirst), 200);

    const ws = new WebSocket(`wss://127.0.0.1:${gw.port}/`, { ca: caFirst });
    await once(ws, 'open');
    const pong = async () => {
      ws.send('ping');
      const [data] = (await once(ws, 'message')) as [Buffer];
      return String(data);
    };
    assert.equal(await pong(), 'pong');

    // The operator replaces the files (atomically, as a certificate tool does) and signals the gateway.
    execFileSync('cp', [second.cert, `${live.cert}.new`]);
    execFileSync('cp', [second.key, `${live.key}.new`]);
    renameSync(`${live.key}.new`, live.key);
    renameSync(`${live.cert}.new`, live.cert);
    const before = gw.logs.length;
    gw.child.kill('SIGHUP');
    await gw.waitForLog((l) => l.msg === 'TLS certificate reloaded' && gw.logs.indexOf(l) >= before);

    assert.equal(await pong(), 'pong', 'the socket opened before the reload is still served');
    assert.equal(await getHealth(gw.port, caSecond), 200, 'new connections get the new certificate');
    await assert.rejects(getHealth(gw.port, caFirst), /self[- ]signed|unable to verify|certificate/i);
    ws.close();
  });
});
