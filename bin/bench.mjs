#!/usr/bin/env node
// `npm run bench -- [workload ...] [--smoke | --full]`: installs the benchmark's
// own dependencies (bench/package.json: the peer job systems) when they are
// missing, then runs bench/run.ts through tsx. Exits with the runner's code.
import { spawnSync } from 'node:child_process';
import { existsSync, readFileSync } from 'node:fs';
import path from 'node:path';
import { fileURLToPath } from 'node:url';

const root = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '..');
const bench = path.join(root, 'bench');
const pkg = JSON.parse(readFileSync(path.join(bench, 'package.json'), 'utf8'));
const missing = Object.keys(pkg.devDependencies ?? {}).filter(
  (name) => !existsSync(path.join(bench, 'node_modules', name, 'package.json')),
);
if (missing.length) {
  console.error(`bench: installing benchmark dependencies (${missing.join(', ')})`);
  const npm = spawnSync('npm', ['install', '--prefix', bench, '--no-audit', '--no-fund'], {
    cwd: root,
    stdio: ['ignore', 'inherit', 'inherit'],
  });
  if (npm.status !== 0) process.exit(npm.status ?? 1);
}

const run = spawnSync(process.execPath, ['--import', 'tsx', path.join(bench, 'run.ts'), ...process.argv.slice(2)], {
  cwd: root,
  stdio: 'inherit',
});
process.exit(run.status ?? 1);
