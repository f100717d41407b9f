#!/usr/bin/env node
// Runs every compiled test file under dist/test with node's test runner. Node 20 cannot expand globs
// itself, so the files are listed here. Extra arguments are passed to `node --test` (e.g. a file filter:
// `npm test -- --test-name-pattern=join`).
import { existsSync, readdirSync, statSync } from 'node:fs';
import { join } from 'node:path';
import { spawnSync } from 'node:child_process';

function find(dir) {
  if (!existsSync(dir)) return [];
  return readdirSync(dir).flatMap((name) => {
    const path = join(dir, name);
    if (statSync(path).isDirectory()) return find(path);
    return /\.test\.[jt]s$/.test(name) ? [path] : [];
  });
}

// Test folders by what a test needs (README, "Tests"): pure (no I/O), one-process (a gateway or server in
// this process on loopback, memory backends), rabbitmq-redis (the real broker or state), processes (other
// OS processes), browser (Chromium). Only these folders are run, so compiled files a move left behind in
// dist/ never run; a test source placed anywhere else under test/ stops the run instead of being skipped.
const folders = ['pure', 'one-process', 'rabbitmq-redis', 'processes', 'browser'];
const misplaced = find('test').filter((f) => !folders.some((folder) => f.startsWith(join('test', folder))));
if (misplaced.length > 0) {
  console.error(`test files outside ${folders.join(', ')} (move them by what they need): ${misplaced.join(', ')}`);
  process.exit(1);
}
const only = process.env.TEST_ONLY;
// The bench's own tests live beside it (bench/test/).
const files = [...folders.flatMap((folder) => find(join('dist/test', folder))), ...find('dist/bench/test')]
  .filter((f) => !only || f.includes(only))
  .sort();
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
