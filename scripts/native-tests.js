#!/usr/bin/env node
'use strict';
// Builds and runs the GoogleTest suite of the C++ core with plain CMake + CTest.
//
//   node scripts/native-tests.js             Release build in build/native, then ctest
//   node scripts/native-tests.js --sanitize  ASan+UBSan Debug build in build/native-asan, then ctest;
//                                            then the addon under ASan (scripts/build.js --sanitize)
//                                            and the JS tests in a node with libasan preloaded
//   node scripts/native-tests.js --bench     builds the Google Benchmark programs in build/bench
//                                            (does not run them)
//
// Exits non-zero as soon as a step fails.

const { spawnSync } = require('node:child_process');
const fs = require('node:fs');
const os = require('node:os');
const path = require('node:path');

const root = path.resolve(__dirname, '..');
const usage = 'usage: node scripts/native-tests.js [--sanitize | --bench]';

const args = process.argv.slice(2);
for (const arg of args) {
  if (arg === '-h' || arg === '--help') {
    process.stdout.write(`${usage}\n`);
    process.exit(0);
  }
  if (arg !== '--sanitize' && arg !== '--bench') fail(`unknown argument '${arg}'\n${usage}`);
}
const sanitize = args.includes('--sanitize');
const bench = args.includes('--bench');
if (sanitize && bench) fail(`--sanitize and --bench are separate runs\n${usage}`);

const jobs = String(Math.max(1, os.availableParallelism?.() ?? os.cpus().length));

function fail(message) {
  process.stderr.write(`\nnative-tests: ${message}\n`);
  process.exit(1);
}

function heading(text) {
  process.stdout.write(`\n---- ${text}\n`);
}

/** Runs a command with inherited stdio from the repository root; exits on failure. */
function run(cmd, argv, { env } = {}) {
  const r = spawnSync(cmd, argv, { stdio: 'inherit', cwd: root, env: env ?? process.env });
  if (r.error) {
    const hint = r.error.code === 'ENOENT' ? ' (not installed? run: bash scripts/setup-system.sh)' : '';
    fail(`could not start ${cmd}: ${r.error.message}${hint}`);
  }
  if (r.signal) fail(`${cmd} ${argv.join(' ')} was killed by ${r.signal}`);
  if (r.status !== 0) fail(`${cmd} ${argv.join(' ')} failed with exit code ${r.status}`);
}

function configureAndBuild(buildDir, options) {
  heading(`configure ${buildDir}`);
  run('cmake', ['-S', '.', '-B', buildDir, ...options]);
  heading(`build ${buildDir} (${jobs} jobs)`);
  run('cmake', ['--build', buildDir, '--parallel', jobs]);
}

function ctest(buildDir, env) {
  heading(`ctest ${buildDir}`);
  // --no-tests=error: a suite that registered no test is a broken build, not a pass.
  run('ctest', ['--test-dir', buildDir, '--output-on-failure', '--no-tests=error'], { env });
}

/** The shared ASan runtime of g++, which must be the first library a plain `node` loads. */
function libasanPath() {
  const r = spawnSync('g++', ['-print-file-name=libasan.so'], { encoding: 'utf8' });
  if (r.error || r.status !== 0) fail('g++ -print-file-name=libasan.so failed; is g++ installed?');
  const file = r.stdout.trim();
  // g++ echoes the bare name back when it has no such file.
  if (!path.isAbsolute(file) || !fs.existsSync(file)) {
    fail(`g++ has no libasan.so (it answered '${file}'); install the libasan package of your g++ version`);
  }
  return file;
}

if (bench) {
  configureAndBuild(path.join('build', 'bench'), [
    '-DCMAKE_BUILD_TYPE=Release',
    '-DDELTACAST_BUILD_BENCHMARKS=ON',
    '-DDELTACAST_BUILD_TESTS=OFF',
    '-DDELTACAST_SANITIZE=OFF',
  ]);
  process.stdout.write('\nnative-tests: benchmarks built in build/bench (not run)\n');
} else if (!sanitize) {
  const buildDir = path.join('build', 'native');
  configureAndBuild(buildDir, [
    '-DCMAKE_BUILD_TYPE=Release',
    '-DDELTACAST_BUILD_TESTS=ON',
    '-DDELTACAST_SANITIZE=OFF',
  ]);
  ctest(buildDir);
} else {
  const buildDir = path.join('build', 'native-asan');
  configureAndBuild(buildDir, [
    '-DCMAKE_BUILD_TYPE=Debug',
    '-DDELTACAST_BUILD_TESTS=ON',
    '-DDELTACAST_SANITIZE=ON',
  ]);
  // The test binaries link the runtime themselves; leak checking stays on for them.
  ctest(buildDir, { ...process.env, UBSAN_OPTIONS: process.env.UBSAN_OPTIONS ?? 'print_stacktrace=1' });

  heading('build the addon with ASan+UBSan');
  run(process.execPath, [path.join('scripts', 'build.js'), '--sanitize']);

  heading('JS tests against the ASan addon');
  const env = {
    ...process.env,
    LD_PRELOAD: libasanPath(),
    // node itself does not free everything at exit; leaks would drown real reports.
    ASAN_OPTIONS: 'detect_leaks=0',
    UBSAN_OPTIONS: process.env.UBSAN_OPTIONS ?? 'print_stacktrace=1',
    // Absolute, so lib/native.js finds it whatever it resolves a relative path against.
    DELTACAST_ADDON: path.join(root, 'build', 'Asan', 'deltacast.node'),
  };
  run(process.execPath, ['--test', '--test-reporter=spec', path.join('test', 'js') + path.sep], { env });
}
