import assert from 'node:assert/strict';
import { existsSync, mkdirSync, mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, before, describe, it } from 'node:test';
import { type BrowserContext, chromium, type Page } from 'playwright-core';
import { startGateway, type RunningGateway } from '../helpers/gateway.js';

const chromiumPath = '/usr/bin/chromium';
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

    const dir = process.env.UPDATE_SCREENSHOT === '1' ? 'docs' : join('dist', 'test-artifacts');
    mkdirSync(dir, { recursive: true });
    await page.screenshot({ path: join(dir, 'console.png'), fullPage: true });
    assert.deepEqual(pageErrors, []);
  });
});
