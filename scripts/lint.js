#!/usr/bin/env node
'use strict';
// Checks formatting and static types of the whole repository:
//   1. clang-format (the repository's .clang-format) over the C++ of native/, binding/, test/native/, bench/native/
//   2. eslint (eslint.config.js) over the JS
//   3. tsc -p tsconfig.json (no DOM types) and -p tsconfig.dom.json (query/react): the .d.ts
//      files and the type tests in test/types/
//
//   node scripts/lint.js         check only; exits non-zero if any step fails
//   node scripts/lint.js --fix   rewrite with clang-format -i and eslint --fix, then check what is left
//
// Every step runs even when an earlier one failed, so one run shows every problem.

const { spawnSync } = require('node:child_process');
const fs = require('node:fs');
const path = require('node:path');

const root = path.resolve(__dirname, '..');
const usage = 'usage: node scripts/lint.js [--fix]';

const args = process.argv.slice(2);
for (const arg of args) {
  if (arg === '-h' || arg === '--help') {
    process.stdout.write(`${usage}\n`);
    process.exit(0);
  }
  if (arg !== '--fix') {
    process.stderr.write(`lint: unknown argument '${arg}'\n${usage}\n`);
    process.exit(2);
  }
}
const fix = args.includes('--fix');

// Directory (relative to the root) -> file extensions clang-format checks in it, recursively.
const cppSources = [
  ['native', ['.h', '.cc']],
  ['binding', ['.h', '.cc']],
  [path.join('test', 'native'), ['.cc']],
  [path.join('test', 'fuzz'), ['.h', '.cc']],
  [path.join('bench', 'native'), ['.cc']],
];

/** Files under `dir` (relative to the root) whose names end in one of `extensions`, sorted. */
function listFiles(dir, extensions) {
  const abs = path.join(root, dir);
  if (!fs.existsSync(abs)) return [];
  const found = [];
  const walk = (current) => {
    for (const entry of fs.readdirSync(current, { withFileTypes: true })) {
      const full = path.join(current, entry.name);
      if (entry.isDirectory()) walk(full);
      else if (entry.isFile() && extensions.some((ext) => entry.name.endsWith(ext))) {
        found.push(path.relative(root, full));
      }
    }
  };
  walk(abs);
  return found.sort();
}

function heading(text) {
  process.stdout.write(`\n---- ${text}\n`);
}

/** Runs a command from the root with inherited stdio; returns true when it exited 0. */
function run(cmd, argv, missingHint) {
  const r = spawnSync(cmd, argv, { stdio: 'inherit', cwd: root });
  if (r.error) {
    const hint = r.error.code === 'ENOENT' && missingHint ? ` (${missingHint})` : '';
    process.stderr.write(`lint: could not start ${cmd}: ${r.error.message}${hint}\n`);
    return false;
  }
  return r.status === 0;
}

/** A tool from node_modules/.bin, or null (with a message) when devDependencies are not installed. */
function localBin(name) {
  const bin = path.join(root, 'node_modules', '.bin', name);
  if (fs.existsSync(bin)) return bin;
  process.stderr.write(`lint: ${path.relative(root, bin)} is missing; run npm install (devDependencies) first\n`);
  return null;
}

const CLANG_FORMAT_HINT = 'install it with: bash scripts/setup-system.sh';
// Keeps each command line well under the kernel's argument limit.
const BATCH = 200;

function clangFormat() {
  const files = cppSources.flatMap(([dir, extensions]) => listFiles(dir, extensions));
  heading(`clang-format (${files.length} files)${fix ? ' --fix' : ''}`);
  if (files.length === 0) return true;
  let ok = true;
  for (let i = 0; i < files.length; i += BATCH) {
    const batch = files.slice(i, i + BATCH);
    if (fix) ok = run('clang-format', ['-i', '--style=file', ...batch], CLANG_FORMAT_HINT) && ok;
    ok = run('clang-format', ['--dry-run', '--Werror', '--style=file', ...batch], CLANG_FORMAT_HINT) && ok;
  }
  return ok;
}

function eslint() {
  heading(`eslint${fix ? ' --fix' : ''}`);
  const bin = localBin('eslint');
  return bin !== null && run(bin, fix ? ['--fix', '.'] : ['.']);
}

function tsc() {
  const bin = localBin('tsc');
  if (bin === null) return false;
  // Without DOM types (what a Node project has), then query/react with them.
  let ok = true;
  for (const project of ['tsconfig.json', 'tsconfig.dom.json']) {
    heading(`tsc -p ${project}`);
    ok = run(bin, ['-p', project]) && ok;
  }
  return ok;
}

const results = [
  ['clang-format', clangFormat()],
  ['eslint', eslint()],
  ['tsc', tsc()],
];

heading('lint summary');
for (const [name, ok] of results) process.stdout.write(`${ok ? 'ok    ' : 'FAILED'} ${name}\n`);
if (results.some(([, ok]) => !ok)) process.exit(1);
