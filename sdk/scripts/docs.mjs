#!/usr/bin/env node
// Regenerates the generated parts of sdk/README.md: the API reference (TypeDoc + typedoc-plugin-markdown,
// from the TSDoc in sdk/src) and the browser bundle size (the whole SDK bundled by Vite, minified with its
// esbuild, then gzipped). Run from the repository root: `npm run docs:sdk`. Each part sits between its markers.
// `--check` changes nothing and fails when the README is out of date.
import { mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { gzipSync } from 'node:zlib';
import { Application } from 'typedoc';
import { build, transformWithEsbuild } from 'vite';

const sdk = fileURLToPath(new URL('..', import.meta.url));
const readmePath = join(sdk, 'README.md');

async function reference() {
  const out = mkdtempSync(join(tmpdir(), 'sdk-reference-'));
  try {
    const app = await Application.bootstrapWithPlugins({ options: join(sdk, 'typedoc.json'), out });
    const project = await app.convert();
    if (!project) throw new Error('TypeDoc could not convert the SDK');
    await app.generateOutputs(project);
    // One level down: the README's own headings are ## and the reference sits under "## Reference".
    return readFileSync(join(out, 'reference.md'), 'utf8').replace(/^(#+) /gm, '#$1 ').trim();
  } finally {
    rmSync(out, { recursive: true, force: true });
  }
}

async function bundleSize() {
  const result = await build({
    configFile: false,
    logLevel: 'silent',
    build: {
      write: false,
      minify: false,
      target: 'es2022',
      lib: { entry: join(sdk, 'src/index.ts'), formats: ['es'], fileName: 'sdk' },
    },
  });
  const outputs = (Array.isArray(result) ? result : [result]).flatMap((r) => r.output);
  const bundled = outputs.filter((o) => o.type === 'chunk').map((o) => o.code).join('\n');
  // Vite leaves ES library builds unminified (to keep them tree-shakeable): minify as an app build would.
  const { code } = await transformWithEsbuild(bundled, 'sdk.js', { minify: true, target: 'es2022', format: 'esm' });
  if (/permessage-deflate/.test(code)) throw new Error('the browser bundle contains ws');
  const kb = (n) => `${(n / 1024).toFixed(1)} kB`;
  return `| bundle | minified | minified + gzip |\n| --- | --- | --- |\n| whole SDK (\`import * from '@switchboard/sdk'\`), ES2022 | ${kb(Buffer.byteLength(code))} | ${kb(gzipSync(code, { level: 9 }).length)} |`;
}

function splice(text, name, content) {
  const start = `<!-- ${name}:start -->`;
  const end = `<!-- ${name}:end -->`;
  const from = text.indexOf(start);
  const to = text.indexOf(end);
  if (from < 0 || to < from) throw new Error(`README.md lacks the ${name} markers`);
  return `${text.slice(0, from + start.length)}\n${content}\n${text.slice(to)}`;
}

const current = readFileSync(readmePath, 'utf8');
let readme = splice(current, 'bundle-size', await bundleSize());
readme = splice(readme, 'reference', await reference());
if (process.argv.includes('--check')) {
  // For the tests: the README must say what the code and its TSDoc say.
  if (readme !== current) {
    console.error('sdk/README.md is out of date: run npm run docs:sdk');
    process.exit(1);
  }
  console.log('sdk/README.md is up to date');
} else {
  writeFileSync(readmePath, readme);
  console.log('sdk/README.md updated');
}
