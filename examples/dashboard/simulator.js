'use strict';
// The dashboard's data: a supply chain in motion. Each feed goes through the hub on the lane that
// fits it (the lanes are set on the hub, by topic pattern, in server.js):
//   prices            5,000 rows, a few hundred small changes a second, hub.upsert   (normal)
//   suppliers         40 rows, one change every couple of seconds, hub.upsert        (low)
//   shipments         60 rows, positions every 250 ms, hub.publish of the whole list (high)
//   market/trends     recomputed whole every 3 s, hub.publish: the hub sends the diff (normal)
//   forecast/demand   recomputed whole every 5 s, hub.publish                      (normal)
//   alerts            a risk alert every few seconds, hub.upsert, never conflated    (critical)
//   stats             the hub's own counters once a second                           (low)
// Every row carries `ts` (ms since 1970, on the server) so that the page can show the
// publish-to-screen latency.

const MATERIALS = [
  ['Steel coil', 't', 780], ['Aluminium ingot', 't', 2350], ['Copper cathode', 't', 8900], ['Nickel', 't', 16800],
  ['Zinc', 't', 2600], ['Polypropylene', 't', 1150], ['Polyethylene', 't', 1080], ['PVC resin', 't', 890],
  ['Lithium carbonate', 't', 13500], ['Cobalt', 't', 33000], ['Cement', 't', 115], ['Timber', 'm3', 420],
  ['Corrugated board', 't', 640], ['Glass', 't', 510], ['Natural rubber', 't', 1650], ['Cotton', 't', 1900],
  ['Urea', 't', 330], ['Diesel', 'm3', 910], ['Jet fuel', 'm3', 980], ['Silicon wafer', 'k', 2400],
  ['Wheat', 't', 245], ['Soybeans', 't', 440], ['Coffee', 't', 4100], ['Sugar', 't', 530], ['Palm oil', 't', 880],
];
const LOCATIONS = [
  ['Rotterdam', 'EU'], ['Hamburg', 'EU'], ['Antwerp', 'EU'], ['Genoa', 'EU'], ['Valencia', 'EU'], ['Gdansk', 'EU'],
  ['Shanghai', 'APAC'], ['Shenzhen', 'APAC'], ['Singapore', 'APAC'], ['Busan', 'APAC'], ['Tokyo', 'APAC'],
  ['Mumbai', 'APAC'], ['Jakarta', 'APAC'], ['Ho Chi Minh', 'APAC'], ['Sydney', 'APAC'], ['Dubai', 'MEA'],
  ['Jeddah', 'MEA'], ['Durban', 'MEA'], ['Lagos', 'MEA'], ['Los Angeles', 'AM'], ['Houston', 'AM'],
  ['New York', 'AM'], ['Savannah', 'AM'], ['Vancouver', 'AM'], ['Santos', 'AM'], ['Veracruz', 'AM'],
  ['Callao', 'AM'], ['Chicago', 'AM'], ['Felixstowe', 'EU'], ['Le Havre', 'EU'],
];
const SUPPLIER_NAMES = [
  'Nordstahl', 'Pacific Metals', 'Andes Copper', 'Baltic Timber', 'Sunrise Polymers', 'Ganges Chemicals', 'Rhine Logistics',
  'Kestrel Mining', 'Atlas Cement', 'Orion Glass', 'Mekong Rubber', 'Sahara Minerals', 'Fjord Aluminium', 'Yangtze Steel',
  'Pampas Agro', 'Cascade Paper', 'Delta Fuels', 'Monsoon Textiles', 'Kobalt Works', 'Lithium Ridge',
];
const COUNTRIES = ['DE', 'US', 'CL', 'PL', 'KR', 'IN', 'NL', 'AU', 'MX', 'BE', 'VN', 'MA', 'NO', 'CN', 'AR', 'CA', 'NG', 'BD', 'CD', 'AR'];
const ALERTS = [
  ['critical', 'Port closure', 'Strike action halts container handling at {loc}'],
  ['high', 'Supplier at risk', '{sup} reports a furnace outage; deliveries slip 2-3 weeks'],
  ['high', 'Price spike', '{mat} up more than 6% in an hour at {loc}'],
  ['medium', 'Weather', 'Typhoon warning near {loc}: vessels diverted'],
  ['medium', 'Customs delay', 'New inspection rules add 48 h at {loc}'],
  ['critical', 'Sanctions', 'Export licences suspended for {mat}'],
];

const round = (x, d = 2) => Math.round(x * 10 ** d) / 10 ** d;
const TREND = 16; // points in each row's sparkline

/** A seeded PRNG (mulberry32): the same board on every start. */
function prng(seed) {
  let a = seed >>> 0;
  return () => {
    a = (a + 0x6d2b79f5) >>> 0;
    let t = a;
    t = Math.imul(t ^ (t >>> 15), t | 1);
    t ^= t + Math.imul(t ^ (t >>> 7), t | 61);
    return ((t ^ (t >>> 14)) >>> 0) / 4294967296;
  };
}

function makePrices(rows, rnd, now) {
  const out = [];
  for (let i = 0; out.length < rows; i++) {
    const [material, unit, base] = MATERIALS[i % MATERIALS.length];
    const [location, region] = LOCATIONS[Math.floor(i / MATERIALS.length) % LOCATIONS.length];
    const grade = Math.floor(i / (MATERIALS.length * LOCATIONS.length));
    const price = round(base * (0.85 + rnd() * 0.3) * (1 + grade * 0.04));
    const trend = [price];
    let p = price;
    for (let k = 1; k < TREND; k++) trend.unshift((p = round(p * (1 + (rnd() - 0.5) * 0.01))));
    out.push({
      id: `p${String(i + 1).padStart(4, '0')}`,
      material: grade ? `${material} G${grade + 1}` : material,
      location,
      region,
      unit,
      price,
      change: round(price - trend[0]),
      trend,
      ts: now,
    });
  }
  return out;
}

function makeSuppliers(rnd, now) {
  return Array.from({ length: 40 }, (_, i) => ({
    id: `s${i + 1}`,
    name: `${SUPPLIER_NAMES[i % SUPPLIER_NAMES.length]}${i >= SUPPLIER_NAMES.length ? ' II' : ''}`,
    country: COUNTRIES[i % COUNTRIES.length],
    rating: round(3 + rnd() * 2, 1),
    availability: round(70 + rnd() * 30, 0),
    leadTimeDays: 5 + Math.floor(rnd() * 40),
    ts: now,
  }));
}

function makeShipments(rnd, now) {
  return Array.from({ length: 60 }, (_, i) => {
    const from = LOCATIONS[Math.floor(rnd() * LOCATIONS.length)][0];
    let to = LOCATIONS[Math.floor(rnd() * LOCATIONS.length)][0];
    if (to === from) to = LOCATIONS[(i + 3) % LOCATIONS.length][0];
    return { id: `sh${1000 + i}`, from, to, status: 'in transit', progress: round(rnd() * 90, 1), speedKn: round(12 + rnd() * 10, 1), etaH: 0, ts: now };
  });
}

/**
 * Starts the feeds on `hub`. Returns { ready (a promise: every topic has its first value), pause(),
 * resume(), stop(), alert(row) (publishes an alert now), skipped (price ticks left out for
 * backpressure) }. `rows`: the price board's size; `changesPerSecond`: price changes a second
 * (default 300, fewer when the hub cannot keep up); `maxPending`: the hub's queue (stats().pending)
 * above which a price tick is skipped (default 16).
 */
function startSimulator(hub, { rows = 5000, changesPerSecond = 300, seed = 7, maxPending = 16 } = {}) {
  const rnd = prng(seed);
  const now = Date.now();
  const prices = makePrices(rows, rnd, now);
  const byId = new Map(prices.map((r) => [r.id, r]));
  const suppliers = makeSuppliers(rnd, now);
  let shipments = makeShipments(rnd, now);
  const alerts = [];
  let alertSeq = 0;
  let paused = false;
  const timers = [];
  const every = (ms, f) => timers.push(setInterval(() => paused || f(), ms));
  const quiet = (p) => p && p.catch && p.catch(() => {}); // a change after hub.close() is refused: fine at shutdown

  const trends = () => {
    const t = Date.now();
    return {
      ts: t,
      indices: ['Metals', 'Energy', 'Polymers', 'Agri', 'Freight'].map((name, i) => {
        const value = round(100 + 12 * Math.sin(t / 60000 + i) + (rnd() - 0.5) * 2, 1);
        return { id: name.toLowerCase(), name, value, change: round(((value - 100) / 100) * 100, 1) };
      }),
    };
  };
  const forecast = () => {
    const t = Date.now();
    return {
      ts: t,
      weeks: Array.from({ length: 12 }, (_, w) => {
        const demand = Math.round(1000 + 250 * Math.sin((w + t / 20000) / 2) + rnd() * 40);
        return { id: `w${w + 1}`, week: w + 1, demand, low: Math.round(demand * 0.9), high: Math.round(demand * 1.1) };
      }),
    };
  };
  const stats = () => {
    const s = hub.stats();
    return { ts: Date.now(), bytesSent: s.bytesSent, bytesSaved: s.bytesSaved, framesSent: s.framesSent, changes: s.changes, connections: s.connections };
  };

  const ready = Promise.all([
    hub.publish('prices', prices),
    hub.publish('suppliers', suppliers),
    hub.publish('shipments', shipments),
    hub.publish('market/trends', trends()),
    hub.publish('forecast/demand', forecast()),
    hub.publish('alerts', alerts),
    hub.publish('stats', stats()),
  ]);

  // prices: ticks of 20 ms, each moving a handful of rows
  const perTick = Math.max(1, Math.round(changesPerSecond / 50));
  // Backpressure: a tick is skipped while the hub still has changes queued (an upsert costs its
  // row on the hub's thread, a few microseconds, but a starved machine can still fall behind), so a
  // slow machine gets fewer changes a second, not a queue that grows without bound and delays
  // everything.
  let skipped = 0;
  every(20, () => {
    if (hub.stats().pending > maxPending) return void skipped++;
    const t = Date.now();
    for (let k = 0; k < perTick; k++) {
      const i = Math.floor(rnd() * prices.length);
      const old = prices[i];
      const price = round(old.price * (1 + (rnd() - 0.5) * 0.004));
      if (price === old.price) continue;
      const row = { ...old, price, change: round(price - old.trend[0], 2), trend: [...old.trend.slice(1), price], ts: t };
      prices[i] = row;
      byId.set(row.id, row);
      quiet(hub.upsert('prices', row.id, row));
    }
  });
  every(2000, () => {
    const i = Math.floor(rnd() * suppliers.length);
    const s = suppliers[i];
    suppliers[i] = { ...s, availability: Math.max(0, Math.min(100, s.availability + Math.round((rnd() - 0.5) * 10))), rating: round(Math.max(1, Math.min(5, s.rating + (rnd() - 0.5) * 0.2)), 1), ts: Date.now() };
    quiet(hub.upsert('suppliers', suppliers[i].id, suppliers[i]));
  });
  every(250, () => {
    const t = Date.now();
    shipments = shipments.map((s) => {
      if (s.status === 'delivered') return rnd() < 0.02 ? { ...s, status: 'loading', progress: 0, ts: t } : s;
      if (s.status === 'loading') return rnd() < 0.05 ? { ...s, status: 'in transit', ts: t } : s;
      if (rnd() < 0.5) return s;
      const progress = round(Math.min(100, s.progress + s.speedKn / 60), 1);
      const status = progress >= 100 ? 'delivered' : rnd() < 0.005 ? 'delayed' : s.status === 'delayed' && rnd() < 0.1 ? 'in transit' : s.status;
      return { ...s, progress, status, etaH: Math.round(((100 - progress) * 40) / s.speedKn), ts: t };
    });
    quiet(hub.publish('shipments', shipments, { immutable: true })); // unchanged rows are the same objects
  });
  every(3000, () => quiet(hub.publish('market/trends', trends())));
  every(5000, () => quiet(hub.publish('forecast/demand', forecast())));
  every(1000, () => quiet(hub.publish('stats', stats())));

  function alert(fields = {}) {
    const [severity, title, text] = ALERTS[Math.floor(rnd() * ALERTS.length)];
    const row = {
      id: `a${++alertSeq}`,
      severity,
      title,
      detail: text
        .replace('{loc}', LOCATIONS[Math.floor(rnd() * LOCATIONS.length)][0])
        .replace('{sup}', suppliers[Math.floor(rnd() * suppliers.length)].name)
        .replace('{mat}', MATERIALS[Math.floor(rnd() * MATERIALS.length)][0]),
      ts: Date.now(),
      ...fields,
    };
    alerts.unshift(row);
    const dropped = alerts.splice(20);
    const done = [hub.upsert('alerts', row.id, row)];
    for (const old of dropped) done.push(hub.remove('alerts', old.id));
    return Promise.all(done).then(() => row);
  }
  every(6000, () => quiet(alert()));

  return {
    ready,
    get: (id) => byId.get(id),
    get skipped() {
      return skipped;
    },
    alert,
    pause: () => void (paused = true),
    resume: () => void (paused = false),
    stop() {
      paused = true;
      for (const t of timers) clearInterval(t);
    },
  };
}

module.exports = { startSimulator, makePrices, prng };
