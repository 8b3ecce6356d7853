'use strict';
// Shared by the end-to-end tests: Debian's chromium driven by playwright-core, headless and kept
// off the network. CHROMIUM=/path overrides the executable; without one the tests are skipped
// with a message saying so (CI installs it: scripts/setup-system.sh).

const fs = require('node:fs');
const path = require('node:path');

const executablePath = process.env.CHROMIUM || '/usr/bin/chromium';
const haveChromium = fs.existsSync(executablePath);
const skip = haveChromium ? false : `chromium not found at ${executablePath}: install it (bash scripts/setup-system.sh) or set CHROMIUM=/path/to/chromium`;
if (skip) console.log(`# e2e skipped: ${skip}`);

const ARGS = [
  '--no-sandbox',
  '--disable-background-networking',
  '--disable-component-update',
  '--disable-default-apps',
  '--disable-extensions',
  '--disable-sync',
  '--no-first-run',
  '--no-default-browser-check',
  '--metrics-recording-only',
  '--disable-dev-shm-usage',
];

async function launch() {
  const { chromium } = require('playwright-core');
  return chromium.launch({ executablePath, args: ARGS, headless: true, timeout: 30_000 });
}

const artifacts = path.join(__dirname, 'artifacts');
async function screenshot(page, name) {
  fs.mkdirSync(artifacts, { recursive: true });
  const file = path.join(artifacts, `${name}.png`);
  await page.screenshot({ path: file });
  return file;
}

/** Polls `f` (sync or async) until it returns a truthy value; fails with `what` after `ms`. */
async function until(f, what, ms = 10_000, every = 50) {
  const end = Date.now() + ms;
  let last;
  for (;;) {
    try {
      last = await f();
      if (last) return last;
    } catch (e) {
      last = e;
    }
    if (Date.now() > end) throw new Error(`timed out after ${ms} ms waiting for ${what} (last: ${last instanceof Error ? last.message : JSON.stringify(last)})`);
    await new Promise((r) => setTimeout(r, every));
  }
}

module.exports = { skip, launch, screenshot, until, artifacts };
