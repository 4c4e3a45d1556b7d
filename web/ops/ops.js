/* ops.js — the production floor's dashboard. The operator's token is kept
 * in this tab's sessionStorage only and sent as a bearer token; the board
 * refreshes itself every few seconds. */
'use strict';

const REFRESH_MS = 3000;
const KEY = 'cardd.operator_token';
const $ = (id) => document.getElementById(id);
let timer = null;

function token() { return sessionStorage.getItem(KEY); }

class ApiError extends Error {
  constructor(status, detail) { super(detail || `HTTP ${status}`); this.status = status; }
}

async function api(method, path) {
  const res = await fetch(path, {
    method,
    headers: { 'Authorization': 'Bearer ' + token(), 'Accept': 'application/json' },
    credentials: 'omit',
    cache: 'no-store',
  });
  const body = await res.json().catch(() => null);
  if (!res.ok) throw new ApiError(res.status, body && (body.detail || body.title));
  return body;
}

function el(tag, text, cls) {
  const e = document.createElement(tag);
  if (text !== undefined && text !== null) e.textContent = String(text);
  if (cls) e.className = cls;
  return e;
}
function row(cells) {
  const tr = document.createElement('tr');
  for (const c of cells) {
    if (c instanceof Node) {
      const td = document.createElement('td');
      td.append(c);
      tr.append(td);
    } else if (Array.isArray(c)) {
      tr.append(el('td', c[0], c[1]));
    } else {
      tr.append(el('td', c));
    }
  }
  return tr;
}
function fill(tableId, rows, empty, span) {
  const body = $(tableId).tBodies[0];
  body.textContent = '';
  if (!rows.length) {
    const td = el('td', empty, 'muted');
    td.colSpan = span;
    const tr = document.createElement('tr');
    tr.append(td);
    body.append(tr);
  }
  for (const r of rows) body.append(r);
}
function button(label, onClick, data) {
  const b = el('button', label, 'act');
  b.type = 'button';
  for (const [k, v] of Object.entries(data || {})) b.dataset[k] = v;
  b.addEventListener('click', async () => {
    b.disabled = true;
    try { await onClick(); await refresh(); } catch (e) { problem(e); } finally { b.disabled = false; }
  });
  return b;
}
function riyadh(iso, opts) {
  const d = new Date(iso);
  return isNaN(d) ? iso : new Intl.DateTimeFormat('en-GB', Object.assign({ timeZone: 'Asia/Riyadh' }, opts)).format(d);
}

function problem(e) {
  if (e instanceof ApiError && e.status === 401) return signOut('The token was not accepted. Sign in again.');
  const box = $('message');
  box.textContent = e instanceof ApiError ? `${e.message} (HTTP ${e.status})` : 'The service could not be reached.';
  box.hidden = false;
}

function showStations(list) {
  fill('stations', list.map((s) => {
    const state = el('span', s.state, 'badge ' + s.state);
    const job = s.job ? `${s.job.request_no}${s.job.card_serial ? ' · card ' + s.job.card_serial : ''}` : '—';
    const act = s.paused || s.state === 'error'
      ? button('Resume', () => api('POST', `/v1/stations/${encodeURIComponent(s.id)}/resume`), { action: 'resume', station: s.id })
      : button('Pause', () => api('POST', `/v1/stations/${encodeURIComponent(s.id)}/pause`), { action: 'pause', station: s.id });
    const tr = row([[s.id], state, [s.reason || '—'], [job],
      [s.today ? s.today.produced : '', 'num'], [s.today ? s.today.spoiled : '', 'num'], act]);
    tr.dataset.station = s.id;
    tr.dataset.state = s.state;
    tr.dataset.reason = s.reason || '';
    return tr;
  }), 'No station is configured.', 7);
}

function showSummary(s) {
  const box = $('summary');
  box.textContent = '';
  const items = [['Waiting', s.waiting, 'waiting'], ['Held', s.held, 'held'],
    ['In production', s.in_production, 'in_production'], ['Made today', s.produced_today, 'produced_today'],
    ['Spoiled today', s.spoiled_today, 'spoiled_today'], ['At risk', s.at_risk, 'at_risk']];
  for (const [label, v, key] of items) {
    const d = el('div');
    d.dataset.key = key;
    d.dataset.value = String(v);
    d.append(el('b', v), el('span', label, 'muted small'));
    box.append(d);
  }
}

function showQueue(q) {
  const waiting = q.items.filter((i) => !i.hold_reason);
  fill('queue', waiting.slice(0, 20).map((i) => row([[i.request_no], [i.kind.replace('_', ' ')],
    [riyadh(i.queued_at, { day: '2-digit', month: 'short', hour: '2-digit', minute: '2-digit' })],
    [i.station || '—']])), 'Nothing waits.', 4);
}

function showHeld(q) {
  fill('held', q.items.map((i) => {
    const tr = row([[i.request_no], [i.hold_reason], [i.spoiled_cards, 'num'],
      button('Release', () => api('POST', `/v1/requests/${encodeURIComponent(i.request_no)}/release`),
        { action: 'release', request: i.request_no })]);
    tr.dataset.request = i.request_no;
    return tr;
  }), 'No request is held.', 4);
}

function showStock(s) {
  const keys = ['received', 'used', 'spoiled', 'destroyed', 'in_production', 'available'];
  const line = (name, b, cls) => {
    const sum = b.used + b.spoiled + b.destroyed + b.in_production + b.available;
    const ok = sum === b.received;
    const tr = row([[name, cls]].concat(keys.map((k) => [b[k], 'num']),
      [[ok ? `✓ ${b.received} = ${sum}` : `✗ ${b.received} ≠ ${sum}`, ok ? 'good' : 'bad']]));
    tr.dataset.addsUp = ok ? 'yes' : 'no';
    return tr;
  };
  const rows = s.batches.map((b) => line(b.batch_no, b));
  if (s.batches.length) rows.push(line('All batches', s.totals, 'good'));
  fill('stock', rows, 'No stock received.', 8);
}

function showAtRisk(r) {
  fill('atrisk', r.items.map((i) => {
    const tr = row([[i.request_no], [i.status.replace(/_/g, ' ')], [i.estimated_delivery.latest],
      [i.overdue ? 'past the date' : 'due soon', i.overdue ? 'bad' : '']]);
    tr.dataset.request = i.request_no;
    tr.dataset.overdue = i.overdue ? 'yes' : 'no';
    return tr;
  }), 'None.', 4);
}

/* The last 24 hours as bars, drawn here as SVG. */
function showChart(hours) {
  const NS = 'http://www.w3.org/2000/svg';
  const W = 480, H = 180, L = 30, B = 22, T = 8;
  const max = Math.max(1, ...hours.map((h) => h.produced + h.spoiled));
  const svg = document.createElementNS(NS, 'svg');
  svg.setAttribute('viewBox', `0 0 ${W} ${H}`);
  svg.setAttribute('role', 'img');
  svg.setAttribute('aria-label', 'Cards an hour over the last 24 hours');
  const mk = (tag, attrs, text) => {
    const e = document.createElementNS(NS, tag);
    for (const [k, v] of Object.entries(attrs)) e.setAttribute(k, v);
    if (text !== undefined) e.textContent = text;
    svg.append(e);
    return e;
  };
  const plotH = H - B - T, slot = (W - L) / Math.max(1, hours.length);
  mk('line', { x1: L, y1: T + plotH, x2: W, y2: T + plotH, class: 'axis' });
  mk('line', { x1: L, y1: T, x2: L, y2: T + plotH, class: 'axis' });
  mk('text', { x: L - 4, y: T + 10, 'text-anchor': 'end' }, String(max));
  mk('text', { x: L - 4, y: T + plotH, 'text-anchor': 'end' }, '0');
  hours.forEach((h, i) => {
    const x = L + i * slot + 1, w = Math.max(1, slot - 2);
    const hp = (h.produced / max) * plotH, hs = (h.spoiled / max) * plotH;
    const p = mk('rect', { x, y: T + plotH - hp, width: w, height: hp, class: 'bar-produced' });
    p.dataset.hour = h.hour;
    p.dataset.produced = h.produced;
    p.append(Object.assign(document.createElementNS(NS, 'title'),
      { textContent: `${riyadh(h.hour, { hour: '2-digit', minute: '2-digit' })}: ${h.produced} produced, ${h.spoiled} spoiled` }));
    if (h.spoiled) mk('rect', { x, y: T + plotH - hp - hs, width: w, height: hs, class: 'bar-spoiled' });
    if (i % 4 === 0) mk('text', { x: x + w / 2, y: H - 6, 'text-anchor': 'middle' }, riyadh(h.hour, { hour: '2-digit' }));
  });
  const box = $('chart');
  box.textContent = '';
  box.append(svg);
  box.dataset.total = String(hours.reduce((a, h) => a + h.produced, 0));
}

async function refresh() {
  if (!token()) return;
  try {
    const [stations, summary, queue, held, stock, risk] = await Promise.all([
      api('GET', '/v1/stations'), api('GET', '/v1/production/summary'),
      api('GET', '/v1/production/queue?limit=100'), api('GET', '/v1/production/queue?held=true&limit=100'),
      api('GET', '/v1/stock'), api('GET', '/v1/production/at-risk'),
    ]);
    showStations(stations.stations);
    showSummary(summary);
    showChart(summary.hourly);
    showQueue(queue);
    showHeld(held);
    showStock(stock);
    showAtRisk(risk);
    $('message').hidden = true;
    $('updated').textContent = 'Updated ' + riyadh(new Date().toISOString(), { hour: '2-digit', minute: '2-digit', second: '2-digit' });
    $('board').hidden = false;
  } catch (e) {
    problem(e);
  }
}

function signedIn() {
  $('signin').hidden = true;
  $('signout').hidden = false;
  refresh();
  clearInterval(timer);
  timer = setInterval(refresh, REFRESH_MS);
}

function signOut(why) {
  sessionStorage.removeItem(KEY);
  clearInterval(timer);
  timer = null;
  $('board').hidden = true;
  $('signout').hidden = true;
  $('message').hidden = true;
  $('signin').hidden = false;
  $('updated').textContent = '';
  const err = $('signin-error');
  err.textContent = why || '';
  err.hidden = !why;
}

document.addEventListener('DOMContentLoaded', () => {
  $('signin').addEventListener('submit', (ev) => {
    ev.preventDefault();
    const v = $('token').value.trim();
    if (!v) return;
    sessionStorage.setItem(KEY, v);
    $('token').value = '';
    signedIn();
  });
  $('signout').addEventListener('click', () => signOut());
  if (token()) signedIn(); else signOut();
});
