'use strict';

// Deterministic price-board data for the diff benchmarks.
//
// A board is an array of rows keyed by a string `id`, the shape a realtime
// price feed publishes: most rows stay the same between two snapshots, a few
// get a price tick, and now and then a row appears, disappears or moves.
// Everything comes from a seeded PRNG, so the JS harness (bench/diff.js) and
// the native benchmark (bench/native, through --write-fixtures) see the same
// documents on every machine.
//
//   node bench/data.js --write-fixtures build/bench-fixtures   # all scenarios
//   node bench/data.js --write-fixtures DIR --n=1000           # one size
//   node bench/data.js --stats                                 # sizes only

const fs = require('node:fs');
const path = require('node:path');

/** mulberry32: a small, fast 32-bit PRNG; returns floats in [0, 1). */
function mulberry32(seed) {
  let s = seed >>> 0;
  return function next() {
    s = (s + 0x6d2b79f5) >>> 0;
    let t = s;
    t = Math.imul(t ^ (t >>> 15), t | 1);
    t ^= t + Math.imul(t ^ (t >>> 7), t | 61);
    return ((t ^ (t >>> 14)) >>> 0) / 4294967296;
  };
}

const MATERIALS = [
  { name: 'Copper cathode A', base: 8400, spread: 900 },
  { name: 'Aluminium P1020A', base: 2250, spread: 300 },
  { name: 'Nickel briquettes', base: 16800, spread: 2500 },
  { name: 'Zinc SHG 99.995%', base: 2650, spread: 350 },
  { name: 'Lead 99.97%', base: 2050, spread: 250 },
  { name: 'Tin 99.85%', base: 25500, spread: 3000 },
  { name: 'HRC steel coil', base: 640, spread: 120 },
  { name: 'CRC steel sheet', base: 780, spread: 140 },
  { name: 'Rebar B500B', base: 590, spread: 90 },
  { name: 'Stainless 304 sheet', base: 2400, spread: 400 },
  { name: 'Iron ore 62% Fe', base: 112, spread: 25 },
  { name: 'Copper scrap #1', base: 7900, spread: 800 },
  { name: 'Aluminium scrap', base: 1650, spread: 300 },
  { name: 'Polypropylene', base: 1150, spread: 200 },
  { name: 'HDPE film pellets', base: 1250, spread: 220 },
  { name: 'PVC resin K67', base: 890, spread: 150 },
  { name: 'Cement CEM I 42.5', base: 98, spread: 20 },
  { name: 'Kraftliner 175 gsm', base: 640, spread: 110 },
  { name: 'Lumber 2x4 KD', base: 520, spread: 120 },
  { name: 'Float glass 4 mm', base: 410, spread: 80 },
];

const LOCATIONS = [
  'Rotterdam, NL',
  'Antwerp, BE',
  'Hamburg, DE',
  'Duisburg, DE',
  'Le Havre, FR',
  'Genoa, IT',
  'Valencia, ES',
  'Gdansk, PL',
  'Shanghai, CN',
  'Ningbo, CN',
  'Busan, KR',
  'Singapore, SG',
  'Port Klang, MY',
  'Jebel Ali, AE',
  'Nhava Sheva, IN',
  'Houston, US',
  'Baltimore, US',
  'Long Beach, US',
  'Santos, BR',
  'Durban, ZA',
];

const CURRENCIES = ['USD', 'USD', 'USD', 'EUR', 'EUR', 'CNY', 'GBP', 'JPY'];
const FX = { USD: 1, EUR: 0.92, CNY: 7.2, GBP: 0.79, JPY: 150 };

const SUPPLIER_PREFIX = ['Nordic', 'Atlas', 'Meridian', 'Pacific', 'Hanseatic', 'Iberian', 'Great Lakes',
  'Sino-Euro', 'Cape', 'Andean', 'Baltic', 'Golden Gate', 'Rhine Valley', 'Lotus', 'Pioneer', 'Summit'];
const SUPPLIER_SUFFIX = ['Metals AB', 'Trading GmbH', 'Commodities', 'Resources Inc', 'Industrial SA',
  'Co., Ltd.', 'Supply B.V.', 'Holdings plc', 'Materials LLC', 'Handels AG'];

const SUPPLIER_COUNT = 250;
// 2024-11-01T00:00:00.000Z; rows were last updated within the 24 hours before it.
const BASE_TIME = Date.UTC(2024, 10, 1);

function pad(num, width) {
  return String(num).padStart(width, '0');
}

function rowId(num) {
  return 'r' + pad(num, 6);
}

function roundTo(x, decimals) {
  const f = 10 ** decimals;
  return Math.round(x * f) / f;
}

function makeSupplier(num) {
  const rand = mulberry32(0x5eed0000 + num);
  const name = SUPPLIER_PREFIX[Math.floor(rand() * SUPPLIER_PREFIX.length)] + ' ' +
    SUPPLIER_SUFFIX[Math.floor(rand() * SUPPLIER_SUFFIX.length)];
  return { id: 's' + pad(num, 4), name, rating: roundTo(2.5 + rand() * 2.5, 1) };
}

// Suppliers are shared objects within a board, as they would be in a real
// model; serialization copies them into every row anyway.
const SUPPLIERS = Array.from({ length: SUPPLIER_COUNT }, (_, i) => makeSupplier(i));

function makeRow(num, rand) {
  const material = MATERIALS[Math.floor(rand() * MATERIALS.length)];
  const currency = CURRENCIES[Math.floor(rand() * CURRENCIES.length)];
  const usd = material.base + (rand() - 0.5) * 2 * material.spread;
  const decimals = currency === 'JPY' ? 0 : 2;
  return {
    id: rowId(num),
    material: material.name,
    location: LOCATIONS[Math.floor(rand() * LOCATIONS.length)],
    price: roundTo(usd * FX[currency], decimals),
    currency,
    change24h: roundTo((rand() - 0.5) * 8, 2),
    updatedAt: new Date(BASE_TIME - Math.floor(rand() * 86_400_000)).toISOString(),
    supplier: SUPPLIERS[Math.floor(rand() * SUPPLIER_COUNT)],
  };
}

/** A board of `n` rows with ids r000000 .. r(n-1), the same for the same seed. */
function makeBoard(n, seed = 1) {
  const rand = mulberry32(seed);
  const board = new Array(n);
  for (let i = 0; i < n; i++) board[i] = makeRow(i, rand);
  return board;
}

// k distinct indices in [0, n), by a partial Fisher-Yates shuffle.
function sampleIndices(n, k, rand) {
  const idx = Array.from({ length: n }, (_, i) => i);
  const count = Math.min(k, n);
  for (let i = 0; i < count; i++) {
    const j = i + Math.floor(rand() * (n - i));
    const t = idx[i];
    idx[i] = idx[j];
    idx[j] = t;
  }
  return idx.slice(0, count);
}

function tick(row, rand, now) {
  const pct = (rand() - 0.5) * 0.02; // a move of up to +-1%
  const decimals = row.currency === 'JPY' ? 0 : 2;
  let price = roundTo(row.price * (1 + pct), decimals);
  if (price === row.price) price = roundTo(row.price + (decimals ? 0.01 : 1), decimals);
  return {
    ...row,
    price,
    change24h: roundTo(row.change24h + pct * 100, 2),
    updatedAt: new Date(now + Math.floor(rand() * 1000)).toISOString(),
  };
}

/**
 * The next snapshot of `board`, as a NEW array (the input is not touched;
 * unchanged rows are shared with it).
 *
 * - fraction:  share of rows that get a price tick (new price, change24h, updatedAt)
 * - insertMid: insert one new row in the middle
 * - deleteOne: delete one row (somewhere in the 20%-80% band)
 * - moveOne:   move one row from about 10% to about 90% of the board
 * - seed:      PRNG seed; the same seed gives the same snapshot
 */
function mutate(board, { fraction = 0.01, insertMid = false, deleteOne = false, moveOne = false, seed = 1 } = {}) {
  const rand = mulberry32(seed ^ 0x9e3779b9);
  const now = BASE_TIME + 60_000 + Math.floor(rand() * 3_600_000);
  const next = board.slice();
  const ticks = Math.round(board.length * fraction);
  for (const i of sampleIndices(board.length, ticks, rand)) next[i] = tick(next[i], rand, now);

  if (deleteOne && next.length > 2) {
    const at = Math.floor(next.length * (0.2 + rand() * 0.6));
    next.splice(at, 1);
  }
  if (insertMid) {
    let maxNum = -1;
    for (const row of board) maxNum = Math.max(maxNum, Number(row.id.slice(1)));
    const row = makeRow(maxNum + 1, rand);
    row.updatedAt = new Date(now).toISOString();
    next.splice(Math.floor(next.length / 2), 0, row);
  }
  if (moveOne && next.length > 2) {
    const from = Math.floor(next.length * 0.1);
    const [row] = next.splice(from, 1);
    next.splice(Math.floor(next.length * 0.9), 0, row);
  }
  return next;
}

// What each scenario kind does to the board besides the price ticks.
const KINDS = {
  values: { insertMid: false, deleteOne: false, moveOne: false, label: 'values only' },
  insdel: { insertMid: true, deleteOne: true, moveOne: false, label: 'values + insert + delete' },
  move: { insertMid: true, deleteOne: true, moveOne: true, label: 'values + insert + delete + move' },
};

const SIZES = [100, 1000, 10000];
const FRACTIONS = [0.01, 0.1];

/** Every scenario: N x fraction x kind. `name` is also the fixture file stem. */
const SCENARIOS = [];
for (const n of SIZES) {
  for (const fraction of FRACTIONS) {
    for (const [kind, spec] of Object.entries(KINDS)) {
      const pct = Math.round(fraction * 100);
      SCENARIOS.push({
        name: `board-${n}-${pct}pct-${kind}`,
        n,
        fraction,
        pct,
        kind,
        label: `N=${n}, ${pct}% ticks, ${spec.label}`,
        mutation: { fraction, insertMid: spec.insertMid, deleteOne: spec.deleteOne, moveOne: spec.moveOne },
      });
    }
  }
}

/**
 * The `index`-th (a, b) pair of a scenario, as objects. Each pair has its own
 * base board and its own mutation, so repeated runs over K pairs do not diff
 * the same documents again and again.
 */
function makePair(scenario, index = 0) {
  const a = makeBoard(scenario.n, 1000 + index);
  const b = mutate(a, { ...scenario.mutation, seed: 7000 + index });
  return { a, b };
}

function parseArgs(argv) {
  const args = { fixtures: null, n: null, stats: false };
  for (let i = 0; i < argv.length; i++) {
    const arg = argv[i];
    if (arg === '--write-fixtures') args.fixtures = argv[++i];
    else if (arg.startsWith('--write-fixtures=')) args.fixtures = arg.slice('--write-fixtures='.length);
    else if (arg.startsWith('--n=')) args.n = arg.slice(4).split(',').map(Number);
    else if (arg === '--stats') args.stats = true;
    else throw new Error(`bench/data.js: unknown argument ${arg}`);
  }
  if (args.fixtures === undefined || args.fixtures === '') throw new Error('--write-fixtures needs a directory');
  return args;
}

function main() {
  const args = parseArgs(process.argv.slice(2));
  const scenarios = SCENARIOS.filter((s) => !args.n || args.n.includes(s.n));
  if (args.fixtures) fs.mkdirSync(args.fixtures, { recursive: true });
  for (const scenario of scenarios) {
    const { a, b } = makePair(scenario, 0);
    const aText = JSON.stringify(a);
    const bText = JSON.stringify(b);
    if (args.fixtures) {
      fs.writeFileSync(path.join(args.fixtures, `${scenario.name}-a.json`), aText);
      fs.writeFileSync(path.join(args.fixtures, `${scenario.name}-b.json`), bText);
    }
    console.log(`${scenario.name.padEnd(30)} a ${String(aText.length).padStart(8)} B   b ${String(bText.length).padStart(8)} B`);
  }
  if (args.fixtures) console.log(`wrote ${scenarios.length * 2} files to ${args.fixtures}`);
  else if (!args.stats) console.log('(sizes only; pass --write-fixtures DIR to write the pairs)');
}

if (require.main === module) {
  try {
    main();
  } catch (err) {
    console.error(err.message);
    process.exitCode = 1;
  }
}

module.exports = { mulberry32, makeBoard, mutate, makePair, SCENARIOS, KINDS, SIZES, FRACTIONS };
