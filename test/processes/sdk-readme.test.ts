import assert from 'node:assert/strict';
import { execFileSync } from 'node:child_process';
import { readFileSync } from 'node:fs';
import { describe, it } from 'node:test';

/** sdk/README.md: its generated reference and bundle size match the code (npm run docs:sdk regenerates them). */
describe('SDK README', () => {
  it('holds the reference generated from the current TSDoc and the current bundle size', () => {
    const out = execFileSync(process.execPath, ['sdk/scripts/docs.mjs', '--check'], { encoding: 'utf8', stdio: ['ignore', 'pipe', 'pipe'] });
    assert.match(out, /up to date/);
  });

  it('has the guide sections the issue asked for', () => {
    const readme = readFileSync('sdk/README.md', 'utf8');
    for (const heading of ['## In a browser', '## Reconnection and error handling', '### Close codes', '### Offline: queue or fail fast', '## Bundle size', '## Reference']) {
      assert.ok(readme.includes(heading), heading);
    }
    assert.match(readme, /\| whole SDK .*\| [\d.]+ kB \| [\d.]+ kB \|/);
    assert.match(readme, /#### NotificationClient/);
  });
});
