// The dashboard page: React on TanStack Query, kept live by deltacast/react (useRealtimeQuery,
// useConnectionStatus, useRealtimeEvents) and deltacast/query (optimisticUpdate). Bundled by
// server.js with esbuild at start.
import React, { useCallback, useEffect, useMemo, useRef, useState } from 'react';
import { createRoot } from 'react-dom/client';
import { QueryClient, QueryClientProvider, useQueryClient } from '@tanstack/react-query';
import { io } from 'socket.io-client';
import { createClient } from 'deltacast/client';
import { optimisticUpdate } from 'deltacast/query';
import { RealtimeProvider, RealtimeContext, useConnectionStatus, useRealtimeEvents, useRealtimeQuery } from 'deltacast/react';

const ROW_H = 28;
const fmt = (n, d = 2) => (n == null ? '' : n.toLocaleString('en-US', { minimumFractionDigits: d, maximumFractionDigits: d }));
const kb = (n) => (n >= 1048576 ? `${(n / 1048576).toFixed(1)} MB` : `${(n / 1024).toFixed(0)} KB`);

// ---- metrics: updates per second and publish-to-screen latency ---------------------------------
const meter = { updates: 0, pendingTs: [], latencies: [] };
function afterPaint(f) {
  requestAnimationFrame(() => setTimeout(f, 0));
}

function useClient() {
  return React.useContext(RealtimeContext).client;
}

// ---- the price board: a small virtualizer (only the visible rows render) -----------------------
function Sparkline({ points }) {
  const min = Math.min(...points);
  const max = Math.max(...points);
  const span = max - min || 1;
  const d = points.map((p, i) => `${((i / (points.length - 1)) * 88).toFixed(1)},${(18 - ((p - min) / span) * 16).toFixed(1)}`).join(' ');
  const up = points[points.length - 1] >= points[0];
  return (
    <svg width="90" height="20" aria-hidden="true">
      <polyline points={d} fill="none" stroke={up ? '#0a8f4e' : '#c8372d'} strokeWidth="1.3" />
    </svg>
  );
}

function PriceRow({ row, top, watched, onWatch }) {
  // A cell flashes when its row changes while shown (not when it scrolls into view), green or red
  // against the price shown before: the span is keyed by the row's timestamp, so each change
  // mounts it again and its animation plays once.
  const seen = useRef({ ts: row.ts, price: row.price, flash: '' });
  if (seen.current.ts !== row.ts) seen.current = { ts: row.ts, price: row.price, flash: row.price >= seen.current.price ? 'flash-up' : 'flash-down' };
  return (
    <div className="board-row" style={{ top }} data-testid="price-row" data-id={row.id}>
      <button className={`star${watched ? ' starred' : ''}`} title={watched ? 'On your watchlist' : 'Add to watchlist'} data-testid="watch" onClick={() => onWatch(row.id)}>
        {watched ? '★' : '☆'}
      </button>
      <span className="muted">{row.id}</span>
      <span>{row.material}</span>
      <span>{row.location}</span>
      <span className="muted">{row.region}</span>
      <span key={row.ts} className={`num ${seen.current.flash}`} data-testid="price">
        {fmt(row.price)}
      </span>
      <span className={`num ${row.change >= 0 ? 'up' : 'down'}`}>{fmt(row.change)}</span>
      <Sparkline points={row.trend} />
    </div>
  );
}

function PriceBoard({ watchlist, onWatch }) {
  const { data, realtime } = useRealtimeQuery({ topic: 'prices' });
  const [scrollTop, setScrollTop] = useState(0);
  const [filter, setFilter] = useState('');
  const height = 560;
  const rows = useMemo(() => {
    if (!data || !filter) return data;
    const f = filter.toLowerCase();
    return data.filter((r) => r.material.toLowerCase().includes(f) || r.location.toLowerCase().includes(f) || r.id === f);
  }, [data, filter]);
  useEffect(() => {
    if (!meter.pendingTs.length) return;
    const ts = meter.pendingTs.splice(0);
    afterPaint(() => {
      const now = Date.now();
      for (const t of ts) meter.latencies.push(now - t);
      if (meter.latencies.length > 200) meter.latencies.splice(0, meter.latencies.length - 200);
    });
  }, [data]);
  const first = Math.max(0, Math.floor(scrollTop / ROW_H) - 5);
  const last = rows ? Math.min(rows.length, Math.ceil((scrollTop + height) / ROW_H) + 5) : 0;
  const watched = new Set((watchlist?.items || []).map((i) => i.id));
  return (
    <section>
      <h2>
        <span>
          Material prices by location <small>{rows ? `${rows.length.toLocaleString()} rows · v${realtime.version ?? '–'} · ${realtime.status}` : 'loading…'}</small>
        </span>
        <input type="search" placeholder="filter: steel, Rotterdam…" value={filter} onChange={(e) => setFilter(e.target.value)} />
      </h2>
      <div className="board-head">
        <span />
        <span>id</span>
        <span>material</span>
        <span>location</span>
        <span>region</span>
        <span className="num">price</span>
        <span className="num">Δ (16 ticks)</span>
        <span>trend</span>
      </div>
      <div className="board" style={{ height }} onScroll={(e) => setScrollTop(e.currentTarget.scrollTop)} data-testid="board" data-version={realtime.version ?? ''}>
        {!rows ? (
          Array.from({ length: 16 }, (_, i) => <div key={i} className="skeleton" data-testid="skeleton" style={{ width: `${70 + ((i * 37) % 30)}%` }} />)
        ) : (
          <div style={{ height: rows.length * ROW_H, position: 'relative' }}>
            {rows.slice(first, last).map((row, i) => (
              <PriceRow key={row.id} row={row} top={(first + i) * ROW_H} watched={watched.has(row.id)} onWatch={onWatch} />
            ))}
          </div>
        )}
      </div>
    </section>
  );
}

// ---- the side panels -------------------------------------------------------------------------
function Skeleton({ lines = 4 }) {
  return Array.from({ length: lines }, (_, i) => <div key={i} className="skeleton" data-testid="skeleton" />);
}

/** A side panel: its title with a note in small type, then its content. */
function Panel({ title, note, children, ...rest }) {
  return (
    <section {...rest}>
      <h2>
        <span>
          {title} <small>{note}</small>
        </span>
      </h2>
      {children}
    </section>
  );
}

function Watchlist({ me, other, watchlist, held, onWatch }) {
  const client = useClient();
  const { data: prices } = useRealtimeQuery({ topic: 'prices' });
  const byId = useMemo(() => new Map((prices || []).map((r) => [r.id, r])), [prices]);
  const confirmed = new Set((held?.items || []).map((i) => i.id));
  const [peek, setPeek] = useState(null);
  const tryPeek = () => {
    const topic = `user/${other.id}/watchlist`;
    setPeek({ topic, state: 'asking…' });
    let unsub = () => {};
    const done = (state, cls) => {
      offErr();
      clearTimeout(timer);
      setPeek({ topic, state, cls });
      setTimeout(unsub, 0); // no longer wanted: off the wire (an event stream refuses a forbidden topic whole)
    };
    const offErr = client.on('error', (e) => e.topic === topic && done(`refused: ${e.code}`, 'err'));
    const timer = setTimeout(() => done('no answer (not connected?)', 'muted'), 5000);
    unsub = client.subscribe(topic, (data) => data && done(`visible?! ${data.items.length} items`, 'err'));
  };
  return (
    <Panel title={`${me.name}'s watchlist`} note={`user/${me.id}/watchlist`} data-testid="watchlist-panel">
      {!watchlist ? (
        <Skeleton lines={3} />
      ) : (
        <ul className="plain" data-testid="watchlist">
          {watchlist.items.map((i) => {
            const r = byId.get(i.id);
            return (
              <li key={i.id} data-id={i.id} className={confirmed.has(i.id) ? '' : 'pending'} data-pending={confirmed.has(i.id) ? undefined : 'true'}>
                <button className="star starred" onClick={() => onWatch(i.id)} title="Remove">
                  ★
                </button>
                <span style={{ flex: 1 }}>
                  {r ? `${r.material} · ${r.location}` : i.id} <span className="muted">{i.id}</span>
                </span>
                <span className="num">{r ? fmt(r.price) : ''}</span>
              </li>
            );
          })}
          {!watchlist.items.length && <li className="muted">empty: click ☆ on a row</li>}
        </ul>
      )}
      <p style={{ margin: '8px 0 0' }}>
        <button onClick={tryPeek} data-testid="peek">
          Try to read {other.id}'s watchlist
        </button>{' '}
        {peek && (
          <span className={peek.cls} data-testid="peek-result">
            {peek.state}
          </span>
        )}
      </p>
    </Panel>
  );
}

function Alerts({ watchlist, onRead }) {
  const { data } = useRealtimeQuery({ topic: 'alerts', critical: true });
  const read = new Set(watchlist?.read || []);
  return (
    <Panel title="Risk alerts" note="critical lane">
      {!data ? (
        <Skeleton />
      ) : (
        <ul className="plain" data-testid="alerts">
          {data.slice(0, 6).map((a) => (
            <li key={a.id} className={read.has(a.id) ? 'read' : ''} data-id={a.id} data-read={read.has(a.id) ? 'true' : undefined}>
              <span className={`sev ${a.severity}`}>{a.severity}</span>
              <span style={{ flex: 1 }} title={a.detail}>
                {a.title}
              </span>
              <button disabled={read.has(a.id)} onClick={() => onRead(a.id)} data-testid="mark-read">
                {read.has(a.id) ? 'read' : 'mark read'}
              </button>
            </li>
          ))}
          {!data.length && <li className="muted">no alerts yet</li>}
        </ul>
      )}
    </Panel>
  );
}

function Market() {
  const { data: trends } = useRealtimeQuery({ topic: 'market/trends' });
  const { data: forecast } = useRealtimeQuery({ topic: 'forecast/demand' });
  const max = forecast ? Math.max(...forecast.weeks.map((w) => w.high)) : 1;
  return (
    <Panel title="Market trends · demand forecast" note="published whole, sent as diffs">
      {!trends ? (
        <Skeleton lines={2} />
      ) : (
        <div className="metrics" style={{ flexWrap: 'wrap', marginBottom: 6 }} data-testid="trends">
          {trends.indices.map((i) => (
            <span key={i.id}>
              {i.name} <b>{fmt(i.value, 1)}</b> <span className={i.change >= 0 ? 'up' : 'down'}>{i.change >= 0 ? '+' : ''}{fmt(i.change, 1)}%</span>
            </span>
          ))}
        </div>
      )}
      {!forecast ? (
        <Skeleton lines={2} />
      ) : (
        <svg width="100%" height="60" viewBox="0 0 240 60" preserveAspectRatio="none" data-testid="forecast">
          {forecast.weeks.map((w, i) => (
            <g key={w.id}>
              <rect x={i * 20 + 3} y={60 - (w.high / max) * 58} width="14" height={((w.high - w.low) / max) * 58} fill="#dfe6fb" />
              <rect x={i * 20 + 3} y={60 - (w.demand / max) * 58} width="14" height="2" fill="#2f5bea" />
            </g>
          ))}
        </svg>
      )}
    </Panel>
  );
}

function Shipments() {
  const { data } = useRealtimeQuery({ topic: 'shipments' });
  return (
    <Panel title="Shipments" note="high lane">
      {!data ? (
        <Skeleton />
      ) : (
        <table className="small">
          <tbody>
            {data.slice(0, 7).map((s) => (
              <tr key={s.id}>
                <td className="muted">{s.id}</td>
                <td>
                  {s.from} → {s.to}
                </td>
                <td className={s.status === 'delayed' ? 'down' : ''}>{s.status}</td>
                <td>
                  <span className="bar">
                    <i style={{ width: `${s.progress}%` }} />
                  </span>
                </td>
              </tr>
            ))}
          </tbody>
        </table>
      )}
    </Panel>
  );
}

function Suppliers() {
  const { data } = useRealtimeQuery({ topic: 'suppliers' });
  return (
    <Panel title="Suppliers" note="low lane">
      {!data ? (
        <Skeleton />
      ) : (
        <table className="small">
          <tbody>
            {[...data]
              .sort((a, b) => a.availability - b.availability)
              .slice(0, 5)
              .map((s) => (
                <tr key={s.id}>
                  <td>{s.name}</td>
                  <td className="muted">{s.country}</td>
                  <td>★ {fmt(s.rating, 1)}</td>
                  <td className={s.availability < 80 ? 'down' : ''}>{s.availability}% avail.</td>
                  <td className="muted">{s.leadTimeDays} d</td>
                </tr>
              ))}
          </tbody>
        </table>
      )}
    </Panel>
  );
}

// ---- header: status, metrics, users, network loss ---------------------------------------------
function Header({ me, users }) {
  const status = useConnectionStatus();
  const client = useClient();
  const { data: stats } = useRealtimeQuery({ topic: 'stats' });
  const [rate, setRate] = useState(0);
  const [latency, setLatency] = useState(null);
  const [loss, setLoss] = useState(0);
  useEffect(() => {
    const t = setInterval(() => {
      setRate(meter.updates);
      meter.updates = 0;
      const l = [...meter.latencies].sort((a, b) => a - b);
      setLatency(l.length ? l[Math.floor(l.length / 2)] : null);
      setLoss((x) => Math.max(0, x - 1));
    }, 1000);
    return () => clearInterval(t);
  }, []);
  const login = (id) => fetch(`/api/login?user=${id}`, { method: 'POST' }).then(() => location.reload());
  const dropNetwork = () =>
    fetch('/api/network-loss?seconds=8', { method: 'POST' })
      .then((r) => r.json())
      .then((r) => setLoss(r.seconds));
  const full = stats ? stats.bytesSent + stats.bytesSaved : 0;
  return (
    <>
      <header>
        <h1>deltacast · supply chain</h1>
        <span className="status" data-testid="status" data-status={status} title={client.carrier ? `carrier: ${client.carrier}` : ''}>
          <i className={`dot ${status}`} />
          {status}
          {client.carrier && <span className="muted">({client.carrier})</span>}
        </span>
        <span className="metrics">
          <span>
            <b data-testid="rate">{rate.toLocaleString()}</b> row updates/s
          </span>
          <span title="all connections: bytes sent by the hub, against what a full snapshot per change would have cost">
            wire <b>{stats ? kb(stats.bytesSent) : '–'}</b> vs snapshots <b>{stats ? kb(full) : '–'}</b>
            {stats && stats.bytesSent > 0 && <> ({Math.round(full / stats.bytesSent)}× less)</>}
          </span>
          <span title="median, server publish to browser paint (normal lane: 50 ms debounce)">
            latency <b data-testid="latency">{latency == null ? '–' : `${latency} ms`}</b>
          </span>
        </span>
        <span className="spacer" />
        <button onClick={dropNetwork} disabled={loss > 0} data-testid="network-loss">
          {loss > 0 ? `network down… ${loss}s` : 'Simulate network loss (8 s)'}
        </button>
        <span>
          {users.map((u) => (
            <button key={u.id} className={u.id === me.id ? 'on' : ''} onClick={() => login(u.id)} data-testid={`login-${u.id}`}>
              {u.id}
            </button>
          ))}
        </span>
      </header>
      {status !== 'open' && (
        <div className={`banner ${status}`} data-testid="banner" data-status={status}>
          {status === 'polling'
            ? `Live updates over ${client.carrier === 'sse' ? 'Server-Sent Events' : 'long-polling'} (WebSocket unavailable); trying to go back to it in the background.`
            : status === 'connecting'
              ? 'Connecting…'
              : 'Connection lost: reconnecting. The data below is as of the last update and resumes from there.'}
        </div>
      )}
    </>
  );
}

// ---- the app ---------------------------------------------------------------------------------
function Toasts({ toasts }) {
  return (
    <div className="toasts">
      {toasts.map((t) => (
        <div key={t.key} className={`toast ${t.kind}`} data-testid="toast" data-kind={t.kind}>
          <b>{t.title}</b>
          <div>{t.text}</div>
        </div>
      ))}
    </div>
  );
}

function Dashboard({ me, users }) {
  const client = useClient();
  const queryClient = useQueryClient();
  const other = users.find((u) => u.id !== me.id);
  const topic = `user/${me.id}/watchlist`;
  const { data: watchlist } = useRealtimeQuery({ topic, critical: true });
  const held = client.get(topic)?.data; // the server's version, without optimistic layers
  const [toasts, setToasts] = useState([]);
  const toast = useCallback((t) => {
    const key = Math.random().toString(36).slice(2);
    setToasts((ts) => [...ts.slice(-3), { ...t, key }]);
    setTimeout(() => setToasts((ts) => ts.filter((x) => x.key !== key)), t.ms || 6000);
  }, []);
  // Risk alerts as toasts: the client's entity events for inserted rows.
  useRealtimeEvents('alerts', (e) => {
    if (e.action === 'insert') toast({ kind: e.data.severity === 'critical' ? 'critical' : 'alert', title: `⚠ ${e.data.title}`, text: e.data.detail });
  });
  const act = (path, id, update) =>
    optimisticUpdate(queryClient, client, {
      topic,
      update,
      mutate: (changeId) =>
        fetch(`${path}?id=${encodeURIComponent(id)}`, { method: 'POST', headers: { 'x-change-id': changeId } }).then(async (r) => {
          const body = await r.json();
          if (!r.ok) throw Object.assign(new Error(body.message), { code: body.code });
          return body;
        }),
    }).catch((e) => toast({ kind: 'rollback', title: 'Rolled back', text: `${e.message} (${e.code || 'error'})` }));
  const onWatch = (id) => {
    const on = (watchlist?.items || []).some((i) => i.id === id);
    if (on) act('/api/watchlist/remove', id, (d) => ({ ...d, items: d.items.filter((i) => i.id !== id) }));
    else act('/api/watchlist/add', id, (d) => ({ ...d, items: [...d.items, { id, addedAt: Date.now() }] }));
  };
  const onRead = (id) => act('/api/alerts/read', id, (d) => ({ ...d, read: [...d.read, id] }));
  return (
    <>
      <Header me={me} users={users} />
      <main>
        <PriceBoard watchlist={watchlist} onWatch={onWatch} />
        <div className="side">
          <Watchlist me={me} other={other} watchlist={watchlist} held={held} onWatch={onWatch} />
          <Alerts watchlist={watchlist} onRead={onRead} />
          <Market />
          <Shipments />
          <Suppliers />
        </div>
      </main>
      <Toasts toasts={toasts} />
    </>
  );
}

async function boot() {
  let me = await fetch('/api/me').then((r) => r.json());
  if (!me.user) {
    await fetch('/api/login?user=alice', { method: 'POST' });
    me = await fetch('/api/me').then((r) => r.json());
  }
  const params = new URLSearchParams(location.search);
  const ws = `${location.protocol === 'https:' ? 'wss' : 'ws'}://${location.host}`;
  const viaSocketIO = params.get('transport') === 'socket.io';
  const client = createClient({
    url: viaSocketIO ? location.origin : `${ws}/ws`,
    transport: viaSocketIO ? 'socket.io' : 'ws',
    io,
    pollUrl: `${location.origin}/deltacast`,
    probeMs: 2000, // on a fallback carrier, try the socket again every 2 s
    // a hidden tab drops its non-critical topics after this long (?hiddenMs= for the tests)
    hiddenUnsubscribeMs: Number(params.get('hiddenMs')) || 10000,
    reconnect: { minMs: 250, maxMs: 4000 },
  });
  client.on('event', (e) => {
    meter.updates++;
    if (e.topic === 'prices' && e.data && e.data.ts) meter.pendingTs.push(e.data.ts);
  });
  const queryClient = new QueryClient({ defaultOptions: { queries: { retry: 1 } } });
  window.__dashboard = { client, queryClient }; // for the end-to-end tests and the console
  createRoot(document.getElementById('root')).render(
    <QueryClientProvider client={queryClient}>
      <RealtimeProvider client={client}>
        <Dashboard me={me.user} users={me.users} />
      </RealtimeProvider>
    </QueryClientProvider>,
  );
}

boot();
