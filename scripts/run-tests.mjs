#!/usr/bin/env node
// Runs every `*.test.ts` file under test/ with node's own test runner (TypeScript through tsx).
// Usage: npm test [-- <path filter> ...]   e.g. `npm test -- lorawan/mac`
import { spawnSync } from 'node:child_process';
import { readdirSync } from 'node:fs';
import { join, relative } from 'node:path';
import { fileURLToPath } from 'node:url';

const root = fileURLToPath(new URL('..', import.meta.url));

function findTests(dir) {
  const found = [];
  for (const entry of readdirSync(dir, { withFileTypes: true })) {
    const path = join(dir, entry.name);
    if (entry.isDirectory()) found.push(...findTests(path));
    else if (entry.name.endsWith('.test.ts')) found.push(path);
  }
  return found;
}

const filters = process.argv.slice(2);
const files = findTests(join(root, 'test'))
  .map((path) => relative(root, path))
  .filter((path) => filters.length === 0 || filters.some((f) => path.includes(f)))
  .sort();

if (files.length === 0) {
  console.error(`no test file matches ${filters.join(' ')}`);
  process.exit(1);
}

const failureSummary = join(root, 'scripts', 'failure-summary-reporter.mjs');
// One test file at a time by default: the timing-sensitive scenario tests share 2 cores with the
// Galets they start. GALET_TEST_CONCURRENCY=2 ran the suite 13 % faster on such a machine
// (484 s against 556 s, all passing), at the price of more CPU contention.
const concurrency = process.env.GALET_TEST_CONCURRENCY ?? '1';
const runnerFlags = [
  `--test-concurrency=${concurrency}`,
  '--test-reporter=tap',
  '--test-reporter-destination=stdout',
  `--test-reporter=${failureSummary}`,
  '--test-reporter-destination=stderr',
];
const result = spawnSync(
  process.execPath,
  ['--import', 'tsx', '--test', ...runnerFlags, ...files],
  {
    cwd: root,
    stdio: 'inherit',
  },
);
process.exit(result.status ?? 1);
