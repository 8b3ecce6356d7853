#!/usr/bin/env node
'use strict';
// Builds the native addon with plain CMake, offline, against the Node headers of
// the running node and the node-addon-api package. Run by `npm install`.
//
//   node scripts/build.js            Release build into build/Release/deltacast.node
//   node scripts/build.js --debug    Debug build
//   node scripts/build.js --sanitize ASan+UBSan build (load node with LD_PRELOAD=libasan.so)

const { spawnSync } = require('node:child_process');
const fs = require('node:fs');
const path = require('node:path');

const root = path.resolve(__dirname, '..');
const args = new Set(process.argv.slice(2));
const debug = args.has('--debug');
const sanitize = args.has('--sanitize');
const buildType = debug || sanitize ? 'Debug' : 'Release';
const buildDir = path.join(root, 'build', sanitize ? 'addon-asan' : `addon-${buildType.toLowerCase()}`);
const outDir = path.join(root, 'build', sanitize ? 'Asan' : buildType);

function fail(message) {
  process.stderr.write(`\ndeltacast: ${message}\n\n`);
  process.exit(1);
}

function have(cmd) {
  const r = spawnSync(cmd, ['--version'], { stdio: 'ignore' });
  return !r.error && r.status === 0;
}

if (!have('cmake')) {
  fail('cmake was not found. Install it with:  sudo apt-get install -y cmake\n' +
    '  (or run: bash node_modules/deltacast/scripts/setup-system.sh)');
}
if (!have(process.env.CXX || 'g++') && !have('c++')) {
  fail('a C++20 compiler (g++ 10 or newer) was not found. Install it with:  sudo apt-get install -y g++');
}

const nodeInclude = [
  path.resolve(process.execPath, '../../include/node'),
  process.env.npm_config_nodedir && path.join(process.env.npm_config_nodedir, 'include/node'),
  '/usr/include/node',
].find((dir) => dir && fs.existsSync(path.join(dir, 'node_api.h')));
if (!nodeInclude) {
  fail('the Node.js headers (node_api.h) were not found next to ' + process.execPath +
    '. Install Node.js with its headers (the official tarball has them; on Debian: sudo apt-get install -y libnode-dev).');
}

let addonApiDir;
try {
  addonApiDir = path.dirname(require.resolve('node-addon-api/package.json', { paths: [root] }));
} catch {
  fail('the npm package node-addon-api is missing; run npm install first.');
}

function run(argv) {
  const r = spawnSync('cmake', argv, { stdio: 'inherit', cwd: root });
  if (r.error) fail(`cmake could not be started: ${r.error.message}`);
  if (r.status !== 0) fail(`the native build failed (cmake ${argv[0]} ...). See the messages above.`);
}

run([
  '-S', root, '-B', buildDir,
  `-DCMAKE_BUILD_TYPE=${buildType}`,
  '-DDELTACAST_BUILD_ADDON=ON',
  '-DDELTACAST_BUILD_TESTS=OFF',
  `-DDELTACAST_SANITIZE=${sanitize ? 'ON' : 'OFF'}`,
  `-DNODE_INCLUDE_DIR=${nodeInclude}`,
  `-DNODE_ADDON_API_DIR=${addonApiDir}`,
]);
run(['--build', buildDir, '--target', 'deltacast_addon', '--parallel', String(Math.max(1, require('node:os').availableParallelism?.() ?? 2))]);

fs.mkdirSync(outDir, { recursive: true });
// Copy then rename: a process that has the old addon loaded keeps its
// mapping intact instead of seeing the file rewritten under it.
const target = path.join(outDir, 'deltacast.node');
const staging = `${target}.${process.pid}.tmp`;
fs.copyFileSync(path.join(buildDir, 'deltacast.node'), staging);
fs.renameSync(staging, target);
process.stdout.write(`deltacast: built ${path.relative(process.cwd(), target) || target}\n`);
