import assert from 'node:assert/strict';
import { existsSync, mkdirSync, mkdtempSync, readFileSync, rmSync } from 'node:fs';
import { createRequire } from 'node:module';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, before, describe, it } from 'node:test';
import { type BrowserContext, chromium, type Page } from 'playwright-core';
import { publishOverHttp, startGateway, type RunningGateway } from '../helpers/gateway.js';

const chromiumPath = '/usr/bin/chromium';
const axeSource = readFileSync(createRequire(import.meta.url).resolve('axe-core/axe.min.js'), 'utf8');

interface AxeViolation {
  id: string;
  impact: string | null;
  help: string;
  nodes: Array<{ target: string[] }>;
}
const chromiumArgs = ['--headless', '--no-sandbox', '--disable-gpu', '--disable-background-networking', '--disable-component-update', '--disable-sync', '--no-first-run'];

/**
 * The web console in a real browser (Debian's Chromium driven by playwright-core), served by a real gateway.
 * The screenshot goes to dist/test-artifacts/console.png; with UPDATE_SCREENSHOT=1 to docs/console.png (the
 * README's picture), so a plain test run leaves the work tree clean.
 */
describe('web console in Chromium', () => {
  let gw: RunningGateway;
  let context: BrowserContext;
  let page: Page;
  let userDataDir: string;
  const pageErrors: string[] = [];
  /** Frames the socket proxy holds back (bind replies to delay), and a way to learn when one is held. */
  let hold: ((frame: { cmd?: string; mod?: string; index?: number }) => boolean) | undefined;
  const held: Array<() => void> = [];
  let onHeld: (() => void) | undefined;

  before(async () => {
    assert.ok(existsSync(chromiumPath), `${chromiumPath} is missing: apt-get install -y chromium (.ci/run does it)`);
    gw = await startGateway();
    userDataDir = mkdtempSync(join(tmpdir(), 'switchboard-chromium-'));
    context = await chromium.launchPersistentContext(userDataDir, {
      executablePath: chromiumPath,
      args: chromiumArgs,
      headless: true,
      viewport: { width: 1280, height: 1000 },
    });
    page = context.pages()[0] ?? (await context.newPage());
    page.setDefaultTimeout(15_000);
    page.on('pageerror', (err) => pageErrors.push(err.message));
    // The control socket passes through the test, which refuses binds of the variable `secret` the way a
    // gateway refuses a variable the key may not reach (the demo has no such variable).
    const proxied = (url: URL) => url.pathname.endsWith('/systems/control') && url.searchParams.get('api-key') === 'demo-admin-key';
    await page.routeWebSocket(proxied, (ws) => {
      const server = ws.connectToServer();
      ws.onMessage((message) => {
        const frame = parseFrame(message);
        if (frame?.cmd === 'bind' && frame.name === 'secret') ws.send(JSON.stringify({ id: frame.id, type: 'error', msg: 'access denied to secret', error_code: 2, code: 403 }));
        else if (frame && hold?.(frame)) {
          held.push(() => server.send(message));
          onHeld?.();
        } else server.send(message);
      });
    });
    await page.goto(`${gw.url}/console`);
    await page.getByTestId('api-key').fill('demo-admin-key');
    await page.getByTestId('api-key').dispatchEvent('change');
  });
  after(async () => {
    await context?.close();
    await gw?.close();
    if (userDataDir) rmSync(userDataDir, { recursive: true, force: true });
  });

  it('joins as alice, publishes, and shows the message live', async () => {
    await page.getByTestId('notify-token').fill('demo-token-alice');
    await page.getByTestId('notify-join').click();
    await page.getByTestId('notify-channel').filter({ hasText: 'joined alice' }).waitFor();
    // Acknowledged delivery is asked for by default; a gateway without it answers plain.
    assert.equal(await page.getByTestId('notify-ack').isChecked(), true);
    await page.getByTestId('notify-mode').filter({ hasText: /^delivery: (ack|plain)$/ }).waitFor();
    assert.equal(await page.getByTestId('publish-profile').inputValue(), 'alice');

    await page.getByTestId('publish-template').selectOption('command pending');
    const body = JSON.parse(await page.getByTestId('publish-body').inputValue()) as { data: { id: string } };
    const commandId = body.data.id;
    await page.getByTestId('publish-send').click();
    const row = page.locator(`[data-testid="notify-message"][data-id="${commandId}"]`);
    await row.getByTestId('command-status').filter({ hasText: 'pending' }).waitFor();

    // The same command completes: its row turns to success.
    await page.getByTestId('publish-body').fill(JSON.stringify({ data: { type: 'X-DPT-CAB-ID', id: commandId, command_status: 2, body: 'Command completed successfully' } }));
    await page.getByTestId('publish-send').click();
    await row.getByTestId('command-status').filter({ hasText: 'success' }).waitFor();

    await page.getByTestId('publish-template').selectOption('download link');
    await page.getByTestId('publish-send').click();
    const link = page.getByTestId('download-link').first();
    await link.waitFor();
    assert.equal(await link.getAttribute('href'), 'https://download.example/path?auth=token');

    // The admin stats see this page's socket and alice's channel.
    await page.locator('[data-profile="alice"]').waitFor();
    assert.ok(Number(await page.getByTestId('count-notify').textContent()) >= 1);
  });

  it('reports a refused API key on the control channel as AuthenticationError, without reconnecting', async () => {
    const sockets: string[] = [];
    const onSocket = (ws: { url(): string }) => sockets.push(ws.url());
    page.on('websocket', onSocket);
    try {
      await page.getByTestId('api-key').fill('not-a-key');
      await page.getByTestId('api-key').dispatchEvent('change');
      await page.getByTestId('control-connect').click();
      await page.getByTestId('control-feedback').filter({ hasText: 'AuthenticationError' }).waitFor();
      await page.getByTestId('control-status').filter({ hasText: 'closed' }).waitFor();
      assert.equal(sockets.filter((url) => url.includes('/systems/control')).length, 1, 'one attempt, no reconnection');
    } finally {
      page.off('websocket', onSocket);
      await page.getByTestId('api-key').fill('demo-admin-key');
      await page.getByTestId('api-key').dispatchEvent('change');
    }
  });

  it('binds Display_1.power on sys-demo, execs power(true) with a click, and shows the new value', async () => {
    await page.getByTestId('control-connect').click();
    await page.getByTestId('control-status').filter({ hasText: 'connected' }).waitFor();
    await page.getByTestId('control-system').selectOption('sys-demo');
    await page.getByTestId('control-module').selectOption({ label: 'Display_1 (mod-display-1)' });
    await page.getByTestId('var-power').filter({ hasText: 'false' }).waitFor();

    await page.getByTestId('control-debug').check();
    await page.getByTestId('arg-power-state').fill('true');
    await page.getByTestId('call-power').click();
    await page.getByTestId('var-power').filter({ hasText: 'true' }).waitFor();
    await page.getByTestId('result-power').filter({ hasText: '→ true' }).waitFor();
    await page.getByTestId('control-debug-log').filter({ hasText: 'power changed to true' }).waitFor();

    // A driver error shows as the typed SDK error.
    await page.getByTestId('arg-volume-level').fill('500');
    await page.getByTestId('call-volume').click();
    await page.getByTestId('result-volume').filter({ hasText: 'RequestFailedError' }).waitFor();

    // An unbind button per variable: the row goes, later changes do not bring it back.
    await page.getByTestId('unbind-input').click();
    await page.locator('[data-var="input"]').waitFor({ state: 'detached' });

    // A refused bind from the Bind button is reported, not left as an unhandled rejection.
    await page.getByTestId('control-bind-name').fill('secret');
    await page.getByTestId('control-bind').click();
    await page.getByTestId('control-feedback').filter({ hasText: 'AccessDeniedError' }).waitFor();
    assert.equal(await page.locator('[data-var="secret"]').count(), 0);

    // The module's lifecycle: running on this node; stop, then start it again (issue 15).
    await page.getByTestId('module-state').filter({ hasText: 'running' }).waitFor();
    await page.getByTestId('module-stop').click();
    await page.getByTestId('module-state').filter({ hasText: 'stopped' }).waitFor();
    await page.getByTestId('module-start').click();
    await page.getByTestId('module-state').filter({ hasText: /^running$/ }).waitFor();
    // The fleet view lists the node and where each module runs.
    await page.locator('[data-testid="fleet-body"] [data-module="mod-display-1"]').filter({ hasText: 'running' }).waitFor();

    // The live charts have drawn this test's execs and the first test's messages before the picture is taken.
    await chartPeakAboveZero(page, 'chart-execs-execs');
    await chartPeakAboveZero(page, 'chart-messages-out');
    const dir = process.env.UPDATE_SCREENSHOT === '1' ? 'docs' : join('dist', 'test-artifacts');
    mkdirSync(dir, { recursive: true });
    await page.screenshot({ path: join(dir, 'console.png'), fullPage: true });
    assert.deepEqual(pageErrors, []);
  });

  it('draws the traffic of the last minutes in live charts: sockets, messages in/out, delivery latency, execs', async () => {
    for (const id of ['chart-sockets-notify', 'chart-sockets-control', 'chart-messages-in', 'chart-messages-out', 'chart-latency-p50', 'chart-latency-p99', 'chart-execs-execs']) {
      await chartPeakAboveZero(page, id);
    }
    // A p99 is never below its p50 over the same deliveries.
    const peak = async (id: string) => Number(await page.getByTestId(id).getAttribute('data-peak'));
    assert.ok((await peak('chart-latency-p99')) >= (await peak('chart-latency-p50')));
    assert.ok(Number(await page.getByTestId('chart-execs').getAttribute('data-points')) >= 2, 'more than one point drawn');
    // Each chart's canvas holds its line, drawn in the colour its caption's swatch shows.
    for (const [chart, series] of [['sockets', 'notify'], ['messages', 'out'], ['latency', 'p99'], ['execs', 'execs']] as const) {
      assert.ok((await pixelsOfSwatchColour(page, chart, series)) > 20, `${chart} draws its ${series} line`);
    }
    assert.deepEqual(pageErrors, []);
  });

  it('shows only the last module picked when the module is switched quickly', async () => {
    // Display_2's binds are held back until Lights_1 is picked: its watches complete after the switch.
    hold = (frame) => frame.cmd === 'bind' && frame.mod === 'Display' && frame.index === 2;
    const firstHeld = new Promise<void>((resolve) => (onHeld = resolve));
    await page.getByTestId('control-module').selectOption({ label: 'Display_2 (mod-display-2)' });
    await firstHeld;
    await page.getByTestId('control-module').selectOption({ label: 'Lights_1 (mod-lights-1)' });
    await page.getByTestId('var-level').filter({ hasText: /\d/ }).waitFor();
    hold = undefined;
    onHeld = undefined;
    for (const release of held.splice(0)) release();
    // A round trip on the same socket after the Display binds were answered: any late row would be there by now.
    await page.getByTestId('arg-set_level-level').fill('40');
    await page.getByTestId('call-set_level').click();
    await page.getByTestId('var-level').filter({ hasText: '40' }).waitFor();
    const names = await page.locator('[data-testid="control-variables"] tr').evaluateAll((rows) => rows.map((r) => r.getAttribute('data-var')));
    assert.deepEqual(names, ['level']);
    assert.equal(await page.getByTestId('call-power').count(), 0, "no Display method rows either");
    assert.deepEqual(pageErrors, []);
  });

  it('keeps the message list bounded', async () => {
    const before = await page.getByTestId('notify-message').count();
    for (let i = 0; i < 110; i++) {
      await publishOverHttp(gw, 'alice', JSON.stringify({ data: { type: 'X-DPT-CAB-ID', id: `bulk-${i}`, command_status: 1, body: `bulk ${i}` } }));
    }
    await page.locator('[data-testid="notify-message"][data-id="bulk-109"]').waitFor();
    const count = await page.getByTestId('notify-message').count();
    assert.ok(before < 100 && count === 100, `${count} rows (${before} before)`);
  });

  it('announces status text to screen readers and passes axe-core with no serious or critical violation', async () => {
    for (const id of ['notify-status', 'notify-channel', 'notify-mode', 'notify-feedback', 'publish-result', 'control-status', 'control-feedback', 'result-set_level']) {
      assert.equal(await page.getByTestId(id).getAttribute('aria-live'), 'polite', `${id} is a live region`);
    }
    await page.addScriptTag({ content: axeSource });
    const violations = await page.evaluate(async () => {
      const axe = (globalThis as unknown as { axe: { run: (context: unknown, options: unknown) => Promise<{ violations: AxeViolation[] }> } }).axe;
      const result = await axe.run(document, { resultTypes: ['violations'] });
      return result.violations.map((v) => ({ id: v.id, impact: v.impact, help: v.help, nodes: v.nodes.map((n) => n.target.join(' ')).slice(0, 5) }));
    });
    const serious = violations.filter((v) => v.impact === 'serious' || v.impact === 'critical');
    assert.deepEqual(serious, [], JSON.stringify(serious, null, 1));
  });

  it('does not poll the stats while the tab is hidden, and refreshes when it is shown again', async () => {
    const hiddenPage = await context.newPage();
    try {
      await hiddenPage.clock.install();
      const statsRequests: string[] = [];
      hiddenPage.on('request', (r) => r.url().includes('/api/admin/v1/stats') && statsRequests.push(r.url()));
      await hiddenPage.goto(`${gw.url}/console`);
      await hiddenPage.getByTestId('api-key').fill('demo-admin-key');
      await hiddenPage.getByTestId('api-key').dispatchEvent('change');
      await hiddenPage.getByTestId('count-profiles').waitFor();
      const setVisibility = (state: 'hidden' | 'visible') =>
        hiddenPage.evaluate((s) => {
          Object.defineProperty(document, 'visibilityState', { value: s, configurable: true });
          Object.defineProperty(document, 'hidden', { value: s === 'hidden', configurable: true });
          document.dispatchEvent(new Event('visibilitychange'));
        }, state);
      await setVisibility('hidden');
      const whileHidden = statsRequests.length;
      await hiddenPage.clock.runFor(20_000);
      assert.equal(statsRequests.length, whileHidden, 'no stats request in 20 s hidden');
      const refreshed = hiddenPage.waitForRequest((r) => r.url().includes('/api/admin/v1/stats'));
      await setVisibility('visible');
      await refreshed;
    } finally {
      await hiddenPage.close();
    }
  });
});

/** Waits until a live chart's series (`chart-<chart>-<series>`) has a peak above zero over the charted minutes. */
async function chartPeakAboveZero(page: Page, testId: string): Promise<void> {
  await page.waitForFunction((id) => Number(document.querySelector(`[data-testid="${id}"]`)?.getAttribute('data-peak') || 0) > 0, testId);
}

/** Pixels of a chart's canvas in the colour of the series' swatch in its caption (the line as drawn). */
async function pixelsOfSwatchColour(page: Page, chart: string, series: string): Promise<number> {
  return page.evaluate(
    ([chartId, seriesId]) => {
      const figure = document.querySelector(`[data-testid="chart-${chartId}"]`)!;
      const swatch = document.querySelector(`[data-testid="chart-${chartId}-${seriesId}"]`)!.parentElement!.querySelector('.swatch')!;
      const [r, g, b] = getComputedStyle(swatch).backgroundColor.match(/\d+/g)!.map(Number) as [number, number, number];
      const canvas = figure.querySelector('canvas')!;
      const { data } = canvas.getContext('2d')!.getImageData(0, 0, canvas.width, canvas.height);
      let count = 0;
      for (let i = 0; i < data.length; i += 4) {
        if (Math.abs(data[i]! - r) < 10 && Math.abs(data[i + 1]! - g) < 10 && Math.abs(data[i + 2]! - b) < 10 && data[i + 3]! > 200) count++;
      }
      return count;
    },
    [chart, series] as const,
  );
}

function parseFrame(message: string | Buffer): { id?: number; cmd?: string; name?: string } | undefined {
  try {
    const frame = JSON.parse(String(message)) as unknown;
    return frame !== null && typeof frame === 'object' ? (frame as { id?: number; cmd?: string; name?: string }) : undefined;
  } catch {
    return undefined; // `ping`
  }
}
