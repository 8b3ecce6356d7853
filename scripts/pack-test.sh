#!/usr/bin/env bash
# Packs deltacast and installs the tarball into an empty project, as a user
# would: the install script must build the addon offline, and both entry
# points must load and work. Run by .ci/run.
set -euo pipefail
root=$(cd "$(dirname "$0")/.." && pwd)
work=$(mktemp -d)
trap 'rm -rf "$work"' EXIT

cd "$root"
tarball=$(npm pack --silent --pack-destination "$work" 2>/dev/null | tail -n1)
echo "packed $tarball ($(du -h "$work/$tarball" | cut -f1))"

mkdir "$work/app" && cd "$work/app"
# npm 11 asks each project to approve dependencies' install scripts
# (deltacast's builds the addon). The approval names the package as npm
# resolved it: "deltacast" from the registry, "file:<path>" for a tarball.
# --strict-allow-scripts makes an unapproved script an error, so this also
# checks that the approval is what lets the build run.
cat > package.json <<JSON
{ "name": "app", "version": "1.0.0", "private": true, "allowScripts": { "file:$work/$tarball": true } }
JSON
npm install --no-audit --no-fund --strict-allow-scripts "$work/$tarball" 2>&1 | tail -n 5
test -f node_modules/deltacast/build/Release/deltacast.node

node -e "
const { diff, applyPatch } = require('deltacast');
const a = { rows: [{ id: 1, p: 1 }, { id: 2, p: 2 }] };
const b = { rows: [{ id: 2, p: 3 }, { id: 1, p: 1 }] };
const ops = diff(a, b);
if (JSON.stringify(applyPatch(a, ops)) !== JSON.stringify(b)) throw new Error('round trip failed');
console.log('require(\"deltacast\") ok:', JSON.stringify(ops));
"
node --input-type=module -e "
import { diff, DeltacastError } from 'deltacast';
import deltacast from 'deltacast';
if (deltacast.diff !== diff) throw new Error('default export differs');
try { diff(1n, 2); throw new Error('no error'); } catch (e) { if (!(e instanceof DeltacastError)) throw e; }
console.log('import from \"deltacast\" ok');
"

# Every entry point of "exports", from the installed tarball, with require and import. The
# optional peers an entry point loads (ws, socket.io, TanStack Query, React, prom-client) are the
# ones this checkout tested with, linked in as a user would have installed them.
for peer in ws socket.io socket.io-client redis @redis react @tanstack/query-core @tanstack/react-query prom-client; do
  mkdir -p "node_modules/$(dirname "$peer")"
  ln -s "$root/node_modules/$peer" "node_modules/$peer"
done
node -e "
const pkg = require('deltacast/package.json');
const expected = {
  'deltacast': ['createHub', 'diff', 'codes'],
  'deltacast/testing': ['createTestClient', 'settle'],
  'deltacast/prometheus': ['hubMetrics'],
  'deltacast/socket.io': ['attachSocketIO'],
  'deltacast/ws': ['attachWebSocketServer'],
  'deltacast/http': ['httpHandler'],
  'deltacast/redis': ['redisEngine'],
  'deltacast/client': ['createClient'],
  'deltacast/query': ['bindQueryClient', 'optimisticUpdate'],
  'deltacast/react': ['RealtimeProvider', 'useRealtimeQuery'],
};
const entries = Object.keys(pkg.exports).filter((k) => k !== './package.json').map((k) => k === '.' ? 'deltacast' : 'deltacast/' + k.slice(2));
const untested = entries.filter((e) => !(e in expected));
if (untested.length) throw new Error('entry points without a check here: ' + untested);
(async () => {
  for (const entry of entries) {
    const cjs = require(entry);
    const esm = await import(entry);
    for (const name of expected[entry]) {
      if (typeof cjs[name] === 'undefined') throw new Error('require(' + entry + ').' + name + ' is missing');
      // deltacast/query and deltacast/react build their ESM entry on the ESM
      // builds of their peers (one copy of TanStack Query in an ESM bundle), so
      // there the two forms are separate instances of the same body.
      const ownInstance = entry === 'deltacast/query' || entry === 'deltacast/react';
      if (ownInstance ? typeof esm[name] !== typeof cjs[name] : esm[name] !== cjs[name]) {
        throw new Error('import ' + name + ' from ' + entry + ' differs from require');
      }
    }
    console.log(entry + ': require and import ok');
  }
  const { codes } = require('deltacast');
  if (codes.UNAUTHORIZED !== 'DELTACAST_UNAUTHORIZED') throw new Error('codes lacks the adapter codes');
})().catch((err) => { console.error(err); process.exit(1); });
"
# The declarations as a TypeScript project gets them through "exports": a
# Node project (lib ES2022, no DOM, no @types/node), strict, declarations
# checked too. The DOM's types must not be needed, nor pulled in: the global
# fetch stays unknown here.
cat > tsconfig.json <<'JSON'
{ "compilerOptions": { "noEmit": true, "strict": true, "target": "ES2022", "lib": ["ES2022"], "module": "node16",
  "moduleResolution": "node16", "types": [], "skipLibCheck": false }, "files": ["consumer.ts"] }
JSON
cat > consumer.ts <<'TS'
import { createHub, diff, type Hub, type Version } from 'deltacast';
import { createClient, type Client } from 'deltacast/client';
import { createTestClient, settle } from 'deltacast/testing';

const hub: Hub = createHub({ clock: 'manual' });
const version: Promise<Version | null> = hub.publish('t', { n: 1 });
const ops = diff({ a: 1 }, { a: 2 });
const client: Client = createClient({ url: 'ws://localhost/rt', window: null, document: null });
const probe = createTestClient(hub);
void [version, ops, client, probe, settle];
// @ts-expect-error: no DOM here, so no global fetch
void fetch;
TS
"$root/node_modules/.bin/tsc" -p tsconfig.json
echo "TypeScript (no DOM, no @types/node): the declarations of deltacast, deltacast/client and deltacast/testing check"

echo "pack test passed"
