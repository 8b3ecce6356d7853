'use strict';
// examples/dashboard, examples/ssr and examples/harness as a newcomer runs them: `npm start` (the
// dashboard's server as a child process: its log line, PORT=, a port in use, Ctrl-C), the SSR
// page's HTML, and the harness's own tests.

const { test } = require('node:test');
const assert = require('node:assert/strict');
const { spawn, execFile } = require('node:child_process');
const fs = require('node:fs');
const net = require('node:net');
const path = require('node:path');
const root = path.resolve(__dirname, '..', '..');
const pkg = require('../../package.json');

/** Starts `node examples/dashboard/server.js` with env; collects its output; kills it at the end of `t`. */
function startServer(t, env) {
  const child = spawn(process.execPath, ['examples/dashboard/server.js'], { cwd: root, env: { ...process.env, ...env }, stdio: ['ignore', 'pipe', 'pipe'] });
  const out = { stdout: '', stderr: '' };
  child.stdout.on('data', (d) => (out.stdout += d));
  child.stderr.on('data', (d) => (out.stderr += d));
  const exited = new Promise((resolve) => child.on('exit', (code, signal) => resolve({ code, signal })));
  t.after(() => child.exitCode === null && child.signalCode === null && child.kill('SIGKILL'));
  return { child, out, exited };
}

async function waitFor(what, f, ms = 30_000) {
  const end = Date.now() + ms;
  while (!f()) {
    if (Date.now() > end) throw new Error(`timed out waiting for ${what}`);
    await new Promise((r) => setTimeout(r, 50));
  }
}

function freePort() {
  return new Promise((resolve, reject) => {
    const s = net.createServer();
    s.once('error', reject);
    s.listen(0, () => {
      const { port } = s.address();
      s.close(() => resolve(port));
    });
  });
}

test('package.json: npm start serves the dashboard; the terminal board is demo:terminal', () => {
  // exec: the shell npm runs a script in becomes node, so that the signals npm forwards reach it
  assert.equal(pkg.scripts.start, 'exec node examples/dashboard/server.js');
  assert.equal(pkg.scripts['demo:terminal'], 'exec node examples/live-board.js');
  assert.equal(pkg.scripts.demo, 'exec npm start');
  assert.match(pkg.scripts.test, /test:e2e/);
});

test('npm start: PORT= picks the port, the log line names the URL, the page and the feeds are served, Ctrl-C stops it cleanly', { timeout: 60_000 }, async (t) => {
  const port = await freePort();
  const { child, out, exited } = startServer(t, { PORT: String(port) });
  await waitFor('the log line', () => out.stdout.includes('serving'));
  assert.match(out.stdout, new RegExp(`deltacast dashboard: serving http://localhost:${port} `));
  const page = await fetch(`http://localhost:${port}/`);
  assert.equal(page.status, 200);
  assert.match(await page.text(), /<script src="\/app.js">/);
  const script = await fetch(`http://localhost:${port}/app.js`);
  assert.equal(script.status, 200);
  assert.ok((await script.text()).length > 100_000, 'the bundled React app');
  const prices = await (await fetch(`http://localhost:${port}/deltacast/topics/prices`)).json();
  assert.equal(prices.data.length, 5000);
  assert.deepEqual(Object.keys(prices.data[0]).sort(), ['change', 'id', 'location', 'material', 'price', 'region', 'trend', 'ts', 'unit']);
  // anonymous: no watchlist; logged in as bob: his own, not alice's
  assert.equal((await fetch(`http://localhost:${port}/deltacast/topics/user%2Fbob%2Fwatchlist`)).status, 403);
  const login = await fetch(`http://localhost:${port}/api/login?user=bob`, { method: 'POST' });
  const cookie = login.headers.get('set-cookie').split(';')[0];
  assert.equal((await fetch(`http://localhost:${port}/deltacast/topics/user%2Fbob%2Fwatchlist`, { headers: { cookie } })).status, 200);
  const refused = await fetch(`http://localhost:${port}/deltacast/topics/user%2Falice%2Fwatchlist`, { headers: { cookie } });
  assert.equal(refused.status, 403);
  assert.equal((await refused.json()).code, 'DELTACAST_FORBIDDEN');

  child.kill('SIGINT');
  const { code } = await exited;
  assert.equal(code, 0, out.stderr);
  assert.match(out.stdout, /deltacast dashboard: stopped/);
  assert.equal(out.stderr, '');
});

/**
 * The pids whose parent is `pid` and whose command line holds `text`, read from /proc: no process
 * is spawned (a synchronous spawn blocks the event loop, and a fork of a process running under
 * ASan can deadlock before it execs, so a test using one could hang instead of failing).
 */
function childrenOf(pid, text) {
  const found = [];
  for (const entry of fs.readdirSync('/proc')) {
    if (!/^\d+$/.test(entry)) continue;
    try {
      const stat = fs.readFileSync(`/proc/${entry}/stat`, 'utf8');
      const ppid = Number(stat.slice(stat.lastIndexOf(')') + 2).split(' ')[1]); // "pid (comm) state ppid ..."
      if (ppid === pid && fs.readFileSync(`/proc/${entry}/cmdline`, 'utf8').includes(text)) found.push(Number(entry));
    } catch {
      // gone meanwhile
    }
  }
  return found;
}

// npm runs a script as `sh -c <script>` and forwards SIGINT and SIGTERM to that shell only. dash
// (Debian's and Ubuntu's /bin/sh) neither execs a lone command nor passes a signal on: without
// `exec` in the script, SIGINT to npm was swallowed by the shell (the server went on serving) and
// SIGTERM killed npm and the shell, leaving the server running on its port.
for (const signal of ['SIGINT', 'SIGTERM']) {
  test(`npm start: ${signal} to the shell npm starts the script in stops the server`, { timeout: 60_000 }, async (t) => {
    const child = spawn('/bin/sh', ['-c', pkg.scripts.start], { cwd: root, env: { ...process.env, PORT: '0', HOST: '127.0.0.1' }, stdio: ['ignore', 'pipe', 'pipe'] });
    const out = { stdout: '', stderr: '' };
    child.stdout.on('data', (d) => (out.stdout += d));
    child.stderr.on('data', (d) => (out.stderr += d));
    const exited = new Promise((resolve) => child.on('exit', (code, sig) => resolve({ code, signal: sig })));
    let serverChild = 0; // without exec the server is the shell's child (and outlives a shell killed by SIGTERM)
    t.after(() => {
      if (serverChild) {
        try {
          process.kill(serverChild, 'SIGKILL');
        } catch {
          // gone already
        }
      }
      if (child.exitCode === null && child.signalCode === null) child.kill('SIGKILL');
    });
    await waitFor('the log line', () => out.stdout.includes('serving'));
    const port = Number(/localhost:(\d+)/.exec(out.stdout)[1]);
    serverChild = childrenOf(child.pid, 'examples/dashboard/server.js')[0] ?? 0; // none: the shell became the server
    child.kill(signal);
    let timer;
    const result = await Promise.race([exited, new Promise((r) => (timer = setTimeout(() => r('still running'), 5000)))]);
    clearTimeout(timer);
    assert.deepEqual(result, { code: 0, signal: null }, `after ${signal} to pid ${child.pid}\n${out.stdout}${out.stderr}`);
    assert.match(out.stdout, /deltacast dashboard: stopped/);
    await assert.rejects(fetch(`http://127.0.0.1:${port}/`), 'the port is free again');
  });
}

test('npm start: Ctrl-C under npm (the stop signal twice at once: from the terminal and from npm) still stops cleanly', { timeout: 60_000 }, async (t) => {
  const { child, out, exited } = startServer(t, { PORT: '0', HOST: '127.0.0.1' });
  await waitFor('the log line', () => out.stdout.includes('serving'));
  // two different signals, which the kernel does not merge (without the repeat window: 130 in most runs)
  child.kill('SIGINT');
  child.kill('SIGTERM');
  const { code } = await exited;
  assert.equal(code, 0, 'not the exit code of a second Ctrl-C (130)');
  assert.match(out.stdout, /deltacast dashboard: stopped/);
});

test('npm start: a port in use is a clear message and exit code 1', { timeout: 60_000 }, async (t) => {
  const blocker = net.createServer();
  await new Promise((r) => blocker.listen(0, r));
  t.after(() => blocker.close());
  const { port } = blocker.address();
  const { out, exited } = startServer(t, { PORT: String(port) });
  const { code } = await exited;
  assert.equal(code, 1);
  assert.match(out.stderr, new RegExp(`deltacast dashboard: port ${port} is already in use\\. .*PORT=${port + 1} npm start`));
  assert.equal(out.stdout, '');
});

test('npm start: without PORT the dashboard is on port 3000', { timeout: 60_000 }, async (t) => {
  const { child, out, exited } = startServer(t, { PORT: '' });
  // port 3000 may be taken on this machine: then the message names it
  await waitFor('the log line or the error', () => out.stdout.includes('serving') || out.stderr.includes('in use'));
  if (out.stdout.includes('serving')) {
    assert.match(out.stdout, /serving http:\/\/localhost:3000 /);
    child.kill('SIGINT');
    assert.equal((await exited).code, 0);
  } else {
    assert.match(out.stderr, /port 3000 is already in use/);
    assert.equal((await exited).code, 1);
  }
});

test('npm start: loopback only unless HOST says otherwise; HOST=0.0.0.0 prints URLs that open the page, not 0.0.0.0', { timeout: 60_000 }, async (t) => {
  // Another address of this machine: a connection to it must be refused (the demo's logins take no password).
  const other = Object.values(require('node:os').networkInterfaces())
    .flat()
    .find((a) => !a.internal && a.family === 'IPv4');
  if (other === undefined) return t.skip('this machine has no non-loopback IPv4 address to try');
  for (const [host, reachable] of [[undefined, false], ['0.0.0.0', true]]) {
    const env = { ...process.env, PORT: '0' };
    delete env.HOST;
    if (host !== undefined) env.HOST = host;
    const child = spawn(process.execPath, ['examples/dashboard/server.js'], { cwd: root, env, stdio: ['ignore', 'pipe', 'pipe'] });
    let stdout = '';
    child.stdout.on('data', (d) => (stdout += d));
    const exited = new Promise((resolve) => child.on('exit', (code) => resolve(code)));
    t.after(() => child.exitCode === null && child.signalCode === null && child.kill('SIGKILL'));
    await waitFor('the log line', () => stdout.includes('serving'));
    const port = Number(/http:\/\/\S+:(\d+)/.exec(stdout)[1]);
    assert.equal((await fetch(`http://127.0.0.1:${port}/`)).status, 200, `HOST=${host}: loopback`);
    const outside = await fetch(`http://${other.address}:${port}/`).then((r) => r.status, (err) => err.cause?.code ?? err.message);
    assert.equal(outside, reachable ? 200 : 'ECONNREFUSED', `HOST=${host}: ${other.address}`);
    if (host === '0.0.0.0') {
      // 0.0.0.0 is no address to open: the log names localhost and this machine's addresses, and each opens the page
      assert.doesNotMatch(stdout, /0\.0\.0\.0/);
      assert.match(stdout, /^deltacast dashboard: serving on every interface \(Ctrl-C to stop\)$/m);
      const urls = [...stdout.matchAll(/^ {2}(Local|Network): +(\S+)$/gm)].map((m) => `${m[1]} ${m[2]}`);
      assert.deepEqual(urls.filter((u) => u.startsWith('Local ')), [`Local http://localhost:${port}`]);
      assert.ok(urls.includes(`Network http://${other.address}:${port}`), stdout);
      for (const line of urls) assert.equal((await fetch(line.split(' ')[1])).status, 200, line);
    } else {
      assert.match(stdout, new RegExp(`^deltacast dashboard: serving http://localhost:${port} \\(Ctrl-C to stop\\)\n$`));
    }
    child.kill('SIGINT');
    assert.equal(await exited, 0);
  }
});

test('npm start: the log line for each HOST: a specific host as itself, a wildcard as localhost and every address it takes connections on', () => {
  const { servingLines } = require('../../examples/dashboard/server.js');
  const interfaces = {
    lo: [
      { address: '127.0.0.1', family: 'IPv4', internal: true },
      { address: '::1', family: 'IPv6', internal: true },
    ],
    eth0: [
      { address: '2001:db8::7', family: 'IPv6', internal: false },
      { address: 'fe80::1', family: 'IPv6', internal: false, scopeid: 2 }, // link-local: a URL would need its zone
      { address: '192.0.2.7', family: 'IPv4', internal: false },
    ],
    wlan0: [{ address: '198.51.100.3', family: 4, internal: false }], // Node 18.0-18.3
  };
  const one = (shown) => [`deltacast dashboard: serving http://${shown}:3000 (Ctrl-C to stop)`];
  assert.deepEqual(servingLines('127.0.0.1', 3000, interfaces), one('localhost'));
  assert.deepEqual(servingLines('localhost', 3000, interfaces), one('localhost'));
  assert.deepEqual(servingLines('::1', 3000, interfaces), one('[::1]'));
  assert.deepEqual(servingLines('192.0.2.7', 3000, interfaces), one('192.0.2.7'));
  const every = ['deltacast dashboard: serving on every interface (Ctrl-C to stop)', '  Local:   http://localhost:3000'];
  // 0.0.0.0 takes IPv4 only
  assert.deepEqual(servingLines('0.0.0.0', 3000, interfaces), [...every, '  Network: http://192.0.2.7:3000', '  Network: http://198.51.100.3:3000']);
  // :: is dual-stack: IPv4 first, then IPv6 in brackets
  for (const host of ['::', '::0', '0:0:0:0:0:0:0:0']) {
    assert.deepEqual(
      servingLines(host, 3000, interfaces),
      [...every, '  Network: http://192.0.2.7:3000', '  Network: http://198.51.100.3:3000', '  Network: http://[2001:db8::7]:3000'],
      host,
    );
  }
  assert.deepEqual(servingLines('0.0.0.0', 3000, { lo: interfaces.lo }), every, 'no other address: Local only');
});

test('npm start: a PORT that is not a port number is refused', { timeout: 30_000 }, async (t) => {
  const { out, exited } = startServer(t, { PORT: 'eighty' });
  assert.equal((await exited).code, 1);
  assert.match(out.stderr, /PORT must be a port number \(0 to 65535\), not "eighty"/);
});

test('examples/ssr: the HTML carries the rendered rows and the dehydrated (epoch, version) of hub.get', { timeout: 60_000 }, async (t) => {
  const { startSsr } = require('../../examples/ssr/server.js');
  const ssr = await startSsr({ port: 0, changesPerSecond: 0 });
  t.after(() => ssr.close());
  const held = ssr.hub.get('prices');
  const html = await (await fetch(ssr.url)).text();
  const state = JSON.parse(html.match(/window\.__DELTACAST__=(.*?)<\/script>/)[1]);
  assert.equal(state.prices.epoch, held.epoch);
  assert.equal(state.prices.version, held.version);
  assert.deepEqual(state.prices.data, held.data);
  const rows = [...html.matchAll(/<tr data-id="(p\d+)">.*?data-testid="price">([^<]+)</g)];
  assert.equal(rows.length, 50);
  for (const [, id, price] of rows) {
    const row = held.data.find((r) => r.id === id);
    assert.equal(price, row.price.toLocaleString('en-US', { minimumFractionDigits: 2, maximumFractionDigits: 2 }));
  }
  assert.match(html, new RegExp(`prices v${held.version} · connecting`));
});

test('examples/harness: its tests pass as a user would run them (node --test examples/harness/)', { timeout: 120_000 }, async () => {
  const env = { ...process.env };
  delete env.NODE_TEST_CONTEXT; // a test run of its own, not a child reporting to this one
  const out = await new Promise((resolve, reject) =>
    execFile(process.execPath, ['--test', '--test-reporter=tap', 'examples/harness/'], { cwd: root, env, timeout: 110_000 }, (err, stdout, stderr) =>
      err ? reject(Object.assign(err, { message: `${err.message}\n${stdout}\n${stderr}` })) : resolve(stdout),
    ),
  );
  assert.match(out, /# pass 5\b/);
  assert.match(out, /# fail 0\b/);
});
