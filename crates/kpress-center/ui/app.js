// The center's web UI: one module for the three data pages, chosen by
// <body data-page>. The browser is signed in by the HttpOnly `kpress_token`
// cookie, so API calls only need `credentials: 'same-origin'`; a 401 sends the
// user to /login.
//
// Everything that comes from the API is put in the page as text (textContent,
// attribute values), never as HTML.

import { lineChart, formatValue } from './chart.js';

const STATUSES = ['running', 'passed', 'thresholds_failed', 'aborted', 'interrupted', 'partial', 'failed'];
const RUNNER_STATES = ['pending', 'running', 'completed', 'failed'];
const LIVE_REFRESH_MS = 1000;
const LIST_REFRESH_MS = 5000;

class ApiError extends Error {
  constructor(status, code, message) {
    super(message);
    this.status = status;
    this.code = code;
  }
}

async function api(path) {
  const res = await fetch(path, { credentials: 'same-origin', headers: { Accept: 'application/json' } });
  if (res.status === 401) {
    location.assign('/login');
    // The page is being replaced: never settle, so no error flashes up meanwhile.
    return new Promise(() => {});
  }
  const text = await res.text();
  let body = null;
  if (text) {
    try {
      body = JSON.parse(text);
    } catch {
      // Not JSON (a proxy's error page, say): the status line explains the error.
    }
  }
  if (!res.ok) {
    const err = body?.error ?? {};
    throw new ApiError(res.status, err.code ?? `http_${res.status}`, err.message ?? `${res.status} ${res.statusText}`);
  }
  return body;
}

// ---- DOM helpers -------------------------------------------------------------

function el(tag, props = {}, ...children) {
  const node = document.createElement(tag);
  for (const [k, v] of Object.entries(props)) {
    if (v == null || v === false) continue;
    if (k === 'class') node.className = v;
    else if (k === 'dataset') Object.assign(node.dataset, v);
    else if (k.startsWith('on')) node.addEventListener(k.slice(2), v);
    else node.setAttribute(k, v === true ? '' : String(v));
  }
  for (const c of children.flat()) {
    if (c == null || c === false) continue;
    node.append(c instanceof Node ? c : String(c));
  }
  return node;
}

function showError(err) {
  const box = document.getElementById('error');
  if (!err) {
    box.hidden = true;
    box.replaceChildren();
    return;
  }
  const text = err instanceof ApiError ? `${err.message} (${err.code})` : `Could not reach the center: ${err.message}`;
  box.replaceChildren(text);
  box.hidden = false;
}

const runUrl = (id) => `/runs/${encodeURIComponent(id)}`;
const compareUrl = (a, b) => `/compare?${new URLSearchParams({ a, b })}`;

// ---- formatting --------------------------------------------------------------

const DASH = '—';
const isNum = (n) => typeof n === 'number' && Number.isFinite(n);

function fmtInt(n) {
  return isNum(n) ? Math.round(n).toLocaleString() : DASH;
}

function fmtMs(ms) {
  if (!isNum(ms)) return DASH;
  return ms.toLocaleString(undefined, { maximumFractionDigits: ms < 10 ? 2 : ms < 1000 ? 1 : 0 });
}

function fmtPct(fraction) {
  if (!isNum(fraction)) return DASH;
  const pct = fraction * 100;
  return `${pct.toLocaleString(undefined, { maximumFractionDigits: pct !== 0 && pct < 0.1 ? 3 : 2 })} %`;
}

function fmtRate(perSecond, unit = '/s') {
  return isNum(perSecond) ? `${formatValue(perSecond)} ${unit}` : DASH;
}

function fmtDuration(s) {
  if (!isNum(s)) return DASH;
  if (s < 60) return `${s.toFixed(s < 10 ? 2 : 1)} s`;
  const total = Math.round(s);
  const h = Math.floor(total / 3600);
  const m = Math.floor((total % 3600) / 60);
  const sec = String(total % 60).padStart(2, '0');
  return h ? `${h} h ${String(m).padStart(2, '0')} m ${sec} s` : `${m} m ${sec} s`;
}

function fmtBytes(n) {
  if (!isNum(n)) return DASH;
  const units = ['B', 'KiB', 'MiB', 'GiB', 'TiB'];
  let v = n;
  let i = 0;
  while (Math.abs(v) >= 1024 && i < units.length - 1) {
    v /= 1024;
    i++;
  }
  return `${v.toLocaleString(undefined, { maximumFractionDigits: i ? 1 : 0 })} ${units[i]}`;
}

function timeEl(iso) {
  if (!iso) return DASH;
  const d = new Date(iso);
  const shown = Number.isNaN(d.getTime()) ? iso : d.toLocaleString();
  return el('time', { datetime: iso, title: iso }, shown);
}

function statusBadge(status) {
  const known = STATUSES.includes(status) ? status : 'unknown';
  return el('span', { class: `badge status-${known}`, dataset: { status: String(status) } }, String(status).replace(/_/g, ' '));
}

function runnerBadge(state) {
  const known = RUNNER_STATES.includes(state) ? state : 'unknown';
  return el('span', { class: `badge runner-${known}` }, String(state));
}

// A right-aligned number cell; `data-value` keeps the exact number for tests and copying.
function numCell(text, value, { dataset = {}, ...attrs } = {}, ...children) {
  const data = isNum(value) ? { ...dataset, value: String(value) } : dataset;
  return el('td', { class: 'num', ...attrs, dataset: data }, text, ...children);
}

function table(headers, rows, attrs = {}) {
  return el('div', { class: 'table-wrap' },
    el('table', { class: 'data', ...attrs },
      el('thead', {}, el('tr', {}, headers.map((h) => el('th', { scope: 'col', class: h.num ? 'num' : null }, h.label ?? h)))),
      el('tbody', {}, rows)));
}

function definitionList(pairs) {
  return el('dl', { class: 'facts' }, pairs.filter(Boolean).map(([k, v]) => el('div', {}, el('dt', {}, k), el('dd', {}, v))));
}

// ---- runs list ---------------------------------------------------------------

async function runsPage() {
  const params = new URLSearchParams(location.search);
  const form = document.getElementById('filters');
  const query = new URLSearchParams();
  for (const name of ['test', 'app', 'status']) {
    const value = params.get(name) ?? '';
    form.elements[name].value = value;
    // Empty fields mean "any": they are left out of the API call.
    if (value) query.set(name, value);
  }
  const selected = new Map();
  const button = document.getElementById('compare-selected');
  const tbody = document.querySelector('#runs tbody');

  const updateSelection = () => {
    button.disabled = selected.size !== 2;
    button.textContent = `Compare selected (${selected.size}/2)`;
    for (const box of tbody.querySelectorAll('input[type=checkbox]')) {
      box.disabled = !box.checked && selected.size >= 2;
    }
  };
  button.addEventListener('click', () => {
    // The older run is the baseline A, so deltas read "what changed since".
    const [a, b] = [...selected.values()].sort((x, y) => String(x.created).localeCompare(String(y.created)));
    location.assign(compareUrl(a.id, b.id));
  });

  const row = (run) => {
    const box = el('input', {
      type: 'checkbox',
      'aria-label': `Select run ${run.id} for comparison`,
      onchange: (ev) => {
        if (ev.target.checked) selected.set(run.id, run);
        else selected.delete(run.id);
        updateSelection();
      },
    });
    box.checked = selected.has(run.id);
    return el('tr', { dataset: { runId: run.id } },
      el('td', {}, box),
      el('td', {}, statusBadge(run.status)),
      el('td', {}, el('a', { href: runUrl(run.id) }, run.test)),
      el('td', { class: 'app' }, run.app ?? DASH),
      el('td', {}, run.mode),
      el('td', {}, timeEl(run.started ?? run.created)),
      numCell(fmtDuration(run.duration_s), run.duration_s),
      numCell(fmtInt(run.requests), run.requests),
      numCell(fmtPct(run.error_rate), run.error_rate, { class: `num ${run.error_rate > 0 ? 'bad' : ''}` }),
      numCell(fmtMs(run.p99_ms), run.p99_ms),
      el('td', {}, el('a', { href: runUrl(run.id), class: 'mono' }, run.id)));
  };

  const load = async () => {
    let runs;
    try {
      ({ runs } = await api(`/api/runs${query.toString() ? `?${query}` : ''}`));
      showError(null);
    } catch (err) {
      showError(err);
      return;
    }
    for (const id of [...selected.keys()]) {
      const fresh = runs.find((r) => r.id === id);
      if (fresh) selected.set(id, fresh);
      else selected.delete(id);
    }
    tbody.replaceChildren(...(runs.length
      ? runs.map(row)
      : [el('tr', {}, el('td', { colspan: 11, class: 'empty' }, 'No runs match these filters.'))]));
    document.getElementById('runs-count').textContent = `${runs.length} run${runs.length === 1 ? '' : 's'}, newest first`;
    updateSelection();
    // Running runs change: keep the list current while any is shown.
    if (runs.some((r) => r.status === 'running')) setTimeout(load, LIST_REFRESH_MS);
  };
  await load();
}

// ---- run page ----------------------------------------------------------------

function runHeader(run) {
  const s = run.summary;
  const labels = Object.entries(run.labels ?? {});
  const live = run.status === 'running';
  return [
    el('div', { class: 'title-row' },
      el('h1', { id: 'run-title' }, run.test),
      statusBadge(run.status),
      live ? el('span', { class: 'live', title: 'Refreshed every second' }, 'live') : null),
    definitionList([
      ['Run', el('span', { class: 'mono' }, run.id)],
      ['Mode', run.mode],
      ['Application', run.app ?? DASH],
      ['Started by', run.started_by ?? DASH],
      ['Created', timeEl(run.created)],
      ['Started', timeEl(run.started)],
      ['Ended', timeEl(run.ended)],
      ['Duration', fmtDuration(run.duration_s)],
      ['Runners done', `${run.runners_done} / ${run.runners}`],
      ['Requests', fmtInt(run.requests)],
      ['Error rate', fmtPct(run.error_rate)],
      ['p99', isNum(run.p99_ms) ? `${fmtMs(run.p99_ms)} ms` : DASH],
      s?.segment ? ['Segment', s.segment] : null,
      s?.missing_segments?.length ? ['Missing runners', s.missing_segments.join(', ')] : null,
      s?.stop_reason ? ['Stop reason', s.stop_reason] : null,
      isNum(s?.start_skew_ms) ? ['Start skew', `${fmtMs(s.start_skew_ms)} ms`] : null,
    ]),
    labels.length
      ? el('ul', { class: 'labels', 'aria-label': 'Labels' }, labels.map(([k, v]) => el('li', {}, `${k}=${v}`)))
      : null,
  ];
}

const COUNTERS = [
  ['http_reqs', 'requests', fmtInt, (r) => fmtRate(r, 'req/s')],
  ['iterations', 'iterations', fmtInt, (r) => fmtRate(r)],
  ['dropped_iterations', 'dropped iterations', fmtInt, (r) => fmtRate(r)],
  ['data_sent', 'data sent', fmtBytes, (r) => (isNum(r) ? `${fmtBytes(r)}/s` : DASH)],
  ['data_received', 'data received', fmtBytes, (r) => (isNum(r) ? `${fmtBytes(r)}/s` : DASH)],
];
const TRENDS = [
  ['http_req_duration', 'corrected for coordinated omission'],
  ['http_req_service_duration', 'from the actual send'],
  ['http_req_send_lag', 'send time behind schedule'],
];
const TREND_STATS = ['min', 'mean', 'p50', 'p90', 'p95', 'p99', 'p99.9', 'max'];

function summaryTables(metrics) {
  const m = metrics ?? {};
  const rows = COUNTERS.map(([key, label, fmt, fmtR]) => el('tr', {},
    el('th', { scope: 'row' }, el('code', {}, key)),
    numCell(fmt(m[key]?.count), m[key]?.count, { dataset: { metric: `${key}.count` } }),
    numCell(fmtR(m[key]?.rate), m[key]?.rate),
    el('td', { class: 'muted' }, label)));
  const failed = m.http_req_failed;
  rows.splice(1, 0, el('tr', {},
    el('th', { scope: 'row' }, el('code', {}, 'http_req_failed')),
    numCell(fmtPct(failed?.rate), failed?.rate, { dataset: { metric: 'http_req_failed.rate' } }),
    numCell(DASH),
    el('td', { class: 'muted' }, `${fmtInt(failed?.fails)} failed, ${fmtInt(failed?.passes)} passed`)));
  for (const key of ['vus', 'vus_max']) {
    rows.push(el('tr', {},
      el('th', { scope: 'row' }, el('code', {}, key)),
      numCell(fmtInt(m[key]?.value), m[key]?.value, { dataset: { metric: `${key}.value` } }),
      numCell(DASH),
      el('td', { class: 'muted' }, `min ${fmtInt(m[key]?.min)}, max ${fmtInt(m[key]?.max)}`)));
  }
  const counters = table(['Metric', { label: 'Value', num: true }, { label: 'Rate', num: true }, 'Details'], rows, { id: 'summary-counters' });

  const trendRows = TRENDS.map(([key, note]) => el('tr', {},
    el('th', { scope: 'row' }, el('code', {}, key), el('div', { class: 'muted small' }, note)),
    TREND_STATS.map((stat) => numCell(fmtMs(m[key]?.[stat]), m[key]?.[stat], { dataset: { metric: `${key}.${stat}` } }))));
  const trends = table(['Latency (ms)', ...TREND_STATS.map((s) => ({ label: s, num: true }))], trendRows, { id: 'summary-latency' });
  return [counters, trends];
}

// While a run is running there is no merged summary yet: its totals so far come
// from the timeline.
function liveTotals(points) {
  const requests = points.reduce((n, p) => n + (p.requests ?? 0), 0);
  const failed = points.reduce((n, p) => n + (p.failed ?? 0), 0);
  return el('p', { class: 'muted' },
    `No merged summary yet: it is made when every runner is done. So far, from the timeline: ${fmtInt(requests)} requests, `
    + `${fmtInt(failed)} failed (${fmtPct(requests ? failed / requests : null)}) over ${points.length} s.`);
}

function thresholdsView(thresholds) {
  const rows = Object.entries(thresholds ?? {}).flatMap(([metric, list]) => (list ?? []).map((t) => {
    const [mark, word, cls] = t.ok === true ? ['✓', 'held', 'ok'] : t.ok === false ? ['✗', 'crossed', 'fail'] : ['–', 'not judged', 'na'];
    const unit = /duration|lag/.test(metric) ? ' ms' : '';
    return el('tr', { dataset: { ok: String(t.ok ?? null) } },
      el('td', {}, el('code', {}, metric)),
      el('td', {}, el('code', {}, t.expr), t.abortOnFail ? el('span', { class: 'muted small' }, ' aborts on fail') : null),
      numCell(isNum(t.actual) ? `${formatValue(t.actual)}${unit}` : DASH, t.actual),
      el('td', { class: `verdict verdict-${cls}` }, el('span', { 'aria-hidden': 'true' }, mark), ` ${word}`));
  }));
  if (!rows.length) return el('p', { class: 'muted', id: 'no-thresholds' }, 'No thresholds.');
  return table(['Metric', 'Threshold', { label: 'Actual', num: true }, 'Result'], rows, { id: 'thresholds-table' });
}

function errorsView(errors, requests) {
  const entries = Object.entries(errors ?? {}).sort((x, y) => y[1] - x[1]);
  if (!entries.length) return el('p', { class: 'muted', id: 'no-errors' }, 'No failed requests.');
  return table(['Class', { label: 'Count', num: true }, { label: 'Share of requests', num: true }],
    entries.map(([cls, n]) => el('tr', {},
      el('td', {}, cls),
      numCell(fmtInt(n), n),
      numCell(fmtPct(requests ? n / requests : null)))),
    { id: 'errors-table' });
}

function runnersView(run) {
  const states = run.runner_states ?? [];
  if (!states.length) return el('p', { class: 'muted' }, `${run.runners} runner${run.runners === 1 ? '' : 's'}, none reported yet.`);
  return table([{ label: 'Runner', num: true }, 'State', 'Message', 'Updated'],
    states.map((r) => el('tr', {},
      numCell(String(r.index), r.index),
      el('td', {}, runnerBadge(r.state)),
      el('td', { class: 'message' }, r.message ?? ''),
      el('td', {}, timeEl(r.updated)))),
    { id: 'runners-table' });
}

// A deployment-mode run: its Deployment, the start barrier, and what removing it did.
function deploymentView(run) {
  const d = run.deployment;
  const c = d.cleanup;
  const cleanup = c
    ? el('span', { class: `badge ${c.ok ? 'status-passed' : 'status-failed'}`, id: 'cleanup-state' }, c.ok ? 'removed' : 'clean-up failed')
    : el('span', { class: 'badge status-running', id: 'cleanup-state' }, run.status === 'running' ? 'running' : 'removing');
  const facts = definitionList([
    ['Deployment', el('code', { id: 'deployment-name' }, `${d.namespace}/${d.name}`)],
    ['Created by', d.created_by_center ? 'the center' : 'whoever applied it'],
    ['Shares leased', el('span', { id: 'deployment-leased', dataset: { value: String(d.leased) } }, `${d.leased} of ${run.runners}`)],
    ['Start', d.start_at ? timeEl(d.start_at) : el('span', {}, 'when every share is leased, by ', timeEl(d.start_by))],
    d.report_by && ['Report by', timeEl(d.report_by)],
    ['Clean-up', cleanup],
    c?.error && ['Clean-up error', c.error],
  ]);
  if (!c?.hooks?.length) return [facts];
  return [facts, table(['Hook', 'Outcome', { label: 'Attempts', num: true }, 'Error', 'Finished'],
    c.hooks.map((h) => el('tr', { dataset: { ok: String(h.ok) } },
      el('td', {}, h.name),
      el('td', {}, runnerBadge(h.ok ? 'completed' : 'failed')),
      numCell(String(h.attempts), h.attempts),
      el('td', { class: 'message' }, h.error ?? ''),
      el('td', {}, timeEl(h.finished)))),
    { id: 'hooks-table' })];
}

function renderCharts(points) {
  const series = (name, y) => ({ name, points: points.map((p) => ({ x: p.t, y: y(p) })) });
  const pct = (v) => (isNum(v) ? v * 100 : null);
  // Seconds are whole numbers: a missing second is a gap in the line.
  const common = { maxGap: 1 };
  document.getElementById('chart-rate').replaceChildren(lineChart({
    ...common, title: 'Request rate', unit: 'req/s', series: [series('requests/s', (p) => p.rate)],
  }));
  document.getElementById('chart-errors').replaceChildren(lineChart({
    ...common, title: 'Error rate', unit: '%', series: [series('failed', (p) => pct(p.error_rate))],
  }));
  document.getElementById('chart-latency').replaceChildren(lineChart({
    ...common,
    title: 'Latency',
    unit: 'ms',
    series: [series('p50', (p) => p.p50), series('p95', (p) => p.p95), series('p99', (p) => p.p99)],
  }));
}

function renderRun(run, points, chartsChanged) {
  document.title = `${run.test} · ${run.id} · kpress center`;
  document.getElementById('run-header').replaceChildren(...runHeader(run).filter(Boolean));
  if (chartsChanged) renderCharts(points);
  const s = run.summary;
  document.getElementById('summary').replaceChildren(...(s
    ? summaryTables(s.metrics)
    : [run.status === 'running' ? liveTotals(points) : el('p', { class: 'muted' }, 'No summary: no runner delivered a result.')]));
  document.getElementById('thresholds').replaceChildren(s
    ? thresholdsView(s.thresholds)
    : el('p', { class: 'muted' }, 'Thresholds are judged on the merged summary.'));
  document.getElementById('errors').replaceChildren(s
    ? errorsView(s.errors, s.metrics?.http_reqs?.count)
    : el('p', { class: 'muted' }, 'Errors by class come with the merged summary.'));
  document.getElementById('runners').replaceChildren(runnersView(run));
  if (run.deployment) {
    document.getElementById('deployment').replaceChildren(...deploymentView(run));
    document.getElementById('deployment-section').hidden = false;
  }
  const scenario = document.getElementById('scenario');
  if (run.scenario && scenario.textContent !== run.scenario) {
    scenario.textContent = run.scenario;
    document.getElementById('scenario-section').hidden = false;
  }
}

async function runPage() {
  const id = decodeURIComponent(location.pathname.replace(/^\/runs\//, '').replace(/\/+$/, ''));
  const base = `/api/runs/${encodeURIComponent(id)}`;
  let running = false;
  // Charts are redrawn only when the timeline changed, so a tooltip being read
  // survives refreshes that brought nothing new.
  let drawn = null;
  const refresh = async () => {
    try {
      const [run, timeline] = await Promise.all([api(base), api(`${base}/timeline`)]);
      running = run.status === 'running';
      const points = timeline?.points ?? [];
      const key = JSON.stringify(points);
      renderRun(run, points, key !== drawn);
      drawn = key;
      showError(null);
    } catch (err) {
      showError(err);
      if (err instanceof ApiError && err.status === 404) {
        document.getElementById('run-title').textContent = 'Run not found';
        running = false;
      }
    }
    // Live while running; one last refresh above has already shown the final state.
    if (running) setTimeout(refresh, LIVE_REFRESH_MS);
  };
  await refresh();
}

// ---- compare page ------------------------------------------------------------

// Which way is worse for a metric: latencies and errors up is worse, throughput
// (requests, rate) down is worse.
function higherIsWorse(metric) {
  return metric.unit === 'ms' || /error|fail/i.test(metric.name);
}

function deltaClass(metric) {
  const { delta } = metric;
  if (!isNum(delta)) return 'na';
  if (delta === 0) return 'same';
  return (delta > 0) === higherIsWorse(metric) ? 'worse' : 'better';
}

function fmtSigned(v, fmt) {
  if (!isNum(v)) return DASH;
  return `${v > 0 ? '+' : v < 0 ? '−' : '±'}${fmt(Math.abs(v))}`;
}

function runCard(label, run) {
  return el('article', { class: 'card run-card', dataset: { side: label.toLowerCase(), runId: run.id } },
    el('h2', {}, `${label}: `, el('a', { href: runUrl(run.id) }, run.test), ' ', statusBadge(run.status)),
    definitionList([
      ['Run', el('a', { href: runUrl(run.id), class: 'mono' }, run.id)],
      ['Application', run.app ?? DASH],
      ['Mode', run.mode],
      ['Started', timeEl(run.started ?? run.created)],
      ['Duration', fmtDuration(run.duration_s)],
      ['Requests', fmtInt(run.requests)],
      ['Error rate', fmtPct(run.error_rate)],
      ['p99', isNum(run.p99_ms) ? `${fmtMs(run.p99_ms)} ms` : DASH],
    ]));
}

async function comparePage() {
  const params = new URLSearchParams(location.search);
  const a = params.get('a');
  const b = params.get('b');
  if (!a || !b) {
    showError(new ApiError(400, 'bad_request', 'Pick two runs to compare: /compare?a=ID&b=ID'));
    return;
  }
  let data;
  try {
    data = await api(`/api/compare?${new URLSearchParams({ a, b })}`);
  } catch (err) {
    showError(err);
    return;
  }
  document.title = `${data.a.test} vs ${data.b.test} · kpress center`;
  document.getElementById('compare-runs').replaceChildren(runCard('A', data.a), runCard('B', data.b));
  document.getElementById('compare-links').replaceChildren(
    el('a', { href: compareUrl(data.b.id, data.a.id) }, 'Swap A and B'), ' · ', el('a', { href: '/' }, 'All runs'));
  const words = { worse: 'worse', better: 'better', same: 'unchanged', na: '' };
  const rows = (data.metrics ?? []).map((m) => {
    const cls = deltaClass(m);
    const fmt = m.unit === 'ms' ? fmtMs : formatValue;
    return el('tr', { dataset: { metric: m.name } },
      el('th', { scope: 'row' }, m.name),
      el('td', { class: 'muted' }, m.unit ?? ''),
      numCell(fmt(m.a), m.a),
      numCell(fmt(m.b), m.b),
      numCell(fmtSigned(m.delta, fmt), m.delta, { class: `num delta delta-${cls}`, title: words[cls] || null },
        words[cls] ? el('span', { class: 'visually-hidden' }, ` (${words[cls]})`) : null),
      numCell(isNum(m.ratio) ? `×${m.ratio.toLocaleString(undefined, { maximumFractionDigits: 3 })}` : DASH, m.ratio));
  });
  const tableEl = document.getElementById('compare');
  tableEl.tBodies[0].replaceChildren(...rows);
  tableEl.hidden = false;
}

// ---- entry -------------------------------------------------------------------

const pages = { runs: runsPage, run: runPage, compare: comparePage };
const page = pages[document.body.dataset.page];
if (page) {
  page().catch((err) => showError(err));
}
