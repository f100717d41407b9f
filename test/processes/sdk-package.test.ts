import assert from 'node:assert/strict';
import { execFileSync } from 'node:child_process';
import { existsSync, readdirSync, readFileSync } from 'node:fs';
import { describe, it } from 'node:test';

interface PackageJson {
  type: string;
  exports: Record<string, string | { types: string; import: string }>;
  dependencies?: Record<string, string>;
  peerDependenciesMeta?: Record<string, { optional?: boolean }>;
}

/**
 * The SDK's published shape (sdk/package.json) and what keeps it usable in browsers. `npm run build:sdk`
 * writes sdk/dist with the same layout as the root build's dist/, so the export targets are checked there.
 */
describe('SDK package shape', () => {
  const pkg = JSON.parse(readFileSync('sdk/package.json', 'utf8')) as PackageJson;

  it('is ESM with an exports map whose import and types targets are built', () => {
    assert.equal(pkg.type, 'module');
    const main = pkg.exports['.'];
    assert.ok(main && typeof main === 'object');
    for (const target of [main.import, main.types]) {
      assert.match(target, /^\.\/dist\//);
      assert.ok(existsSync(target.replace(/^\.\/dist\//, 'dist/')), `${target} is produced by the build`);
    }
  });

  it('has no runtime dependency; ws is an optional peer', () => {
    assert.equal(pkg.dependencies, undefined);
    assert.equal(pkg.peerDependenciesMeta?.ws?.optional, true);
  });

  it('never imports ws or a Node built-in statically (browser bundles stay clean)', () => {
    let seen = 0;
    for (const file of readdirSync('sdk/src')) {
      const text = readFileSync(`sdk/src/${file}`, 'utf8');
      const imports = [...text.matchAll(/^(?:import|export)[^;]*?from '([^']+)'/gms)].map((m) => m[1]!);
      seen += imports.length;
      for (const spec of imports) assert.ok(spec.startsWith('./') || spec.startsWith('../../src/protocol/'), `${file} imports ${spec}`);
    }
    assert.ok(seen > 20, `found ${seen} imports`);
  });

  it('compiles without Node types (sdk/tsconfig.json has types: [])', () => {
    assert.deepEqual((JSON.parse(readFileSync('sdk/tsconfig.json', 'utf8')) as { compilerOptions: { types: string[] } }).compilerOptions.types, []);
    execFileSync(process.execPath, ['node_modules/typescript/bin/tsc', '-p', 'sdk/tsconfig.json', '--noEmit'], { stdio: 'pipe' });
  });

  it('left ws out of the console bundle', () => {
    const assets = readdirSync('console/dist/assets').filter((f) => f.endsWith('.js'));
    assert.ok(assets.length > 0);
    for (const asset of assets) {
      const text = readFileSync(`console/dist/assets/${asset}`, 'utf8');
      assert.ok(!text.includes('permessage-deflate'), `${asset} contains ws`);
      assert.ok(text.includes('Authorization token expired; channel left.'), `${asset} holds the SDK`);
    }
  });
});
