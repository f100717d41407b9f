#!/usr/bin/env node
// Runs every compiled test file under dist/test with node's test runner. Node 20 cannot expand globs
// itself, so the files are listed here. Extra arguments are passed to `node --test` (e.g. a file filter:
// `npm test -- --test-name-pattern=join`).
import { readdirSync, statSync } from 'node:fs';
import { join } from 'node:path';
import { spawnSync } from 'node:child_process';

function find(dir) {
  return readdirSync(dir).flatMap((name) => {
    const path = join(dir, name);
    if (statSync(path).isDirectory()) return find(path);
    return name.endsWith('.test.js') ? [path] : [];
  });
}

const only = process.env.TEST_ONLY;
// The bench's own tests live beside it (bench/test/), the rest under test/.
const files = [...find('dist/test'), ...find('dist/bench/test')].filter((f) => !only || f.includes(only)).sort();
if (files.length === 0) {
  console.error('no test files found under dist/test or dist/bench/test');
  process.exit(1);
}
const result = spawnSync(
  process.execPath,
  ['--test', '--test-concurrency=2', '--test-timeout=120000', ...process.argv.slice(2), ...files],
  { stdio: 'inherit' },
);
process.exit(result.status ?? 1);
