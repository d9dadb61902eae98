// A stand-in for `kpress center`, for developing and testing the web UI without the
// Rust backend: it serves ../../ui/ at the center's paths, the login form and fake
// API answers in the shapes of docs/center.md. Dev only; the real center is the
// reference.
//
//   node mock-center.mjs [--port 8071] [--token dev-token]
//
// It also exports startMock() for `node ui.test.mjs --mock`.

import { createServer } from 'node:http';
import { readFile } from 'node:fs/promises';
import { fileURLToPath, pathToFileURL } from 'node:url';
import path from 'node:path';

const UI_DIR = fileURLToPath(new URL('../../ui/', import.meta.url));
const PAGES = { '/': 'index.html', '/login': 'login.html', '/compare': 'compare.html' };
const ASSETS = {
  '/ui/app.js': ['app.js', 'text/javascript; charset=utf-8'],
  '/ui/chart.js': ['chart.js', 'text/javascript; charset=utf-8'],
  '/ui/style.css': ['style.css', 'text/css; charset=utf-8'],
};
// As strict as a real deployment should be, so the UI is known to work under it.
const SECURITY_HEADERS = {
  'Content-Security-Policy': "default-src 'self'; img-src 'self' data:; frame-ancestors 'none'; form-action 'self'",
  'X-Content-Type-Options': 'nosniff',
  'Referrer-Policy': 'same-origin',
};
// The live run's length: it is `running` for this long after the mock starts.
const LIVE_SECONDS = 40;

// Deterministic noise, so the fake runs look the same on every start.
function random(seed) {
  let s = seed >>> 0;
  return () => {
    s = (s * 1664525 + 1013904223) >>> 0;
    return s / 2 ** 32;
  };
}

function trend(base, rnd) {
  const p50 = base * (1 + rnd() * 0.1);
  return {
    min: +(base * 0.3).toFixed(3),
    mean: +(p50 * 1.1).toFixed(3),
    p50: +p50.toFixed(3),
    p90: +(p50 * 1.8).toFixed(3),
    p95: +(p50 * 2.2).toFixed(3),
    p99: +(p50 * 3.5).toFixed(3),
    'p99.9': +(p50 * 5).toFixed(3),
    max: +(p50 * 8).toFixed(3),
    hdr: 'HISTFAAAAB94nJNpmSzMwMDAxQABzFCaEUzOmNZg/wEiAFIMBCo=',
  };
}

// One second of the merged timeline (GET /api/runs/{id}/timeline).
function point(t, { rate, errors, latency, runners }, rnd) {
  const requests = Math.round(rate * (0.9 + rnd() * 0.2) * Math.min(1, (t + 1) / 5));
  const failed = Math.round(requests * errors * rnd() * 2);
  const p50 = latency * (0.9 + rnd() * 0.3);
  return {
    t,
    requests,
    failed,
    rate: requests,
    error_rate: requests ? failed / requests : 0,
    p50: +p50.toFixed(3),
    p95: +(p50 * 2.1).toFixed(3),
    p99: +(p50 * 3.4).toFixed(3),
    max: +(p50 * 6).toFixed(3),
    vus: Math.round(rate / 10),
    runners,
  };
}

function makeRun(spec, now) {
  const rnd = random(spec.seed);
  const seconds = spec.seconds.filter((t) => t < (spec.liveUntil ? Math.min(spec.elapsed(now), LIVE_SECONDS) : Infinity));
  const points = seconds.map((t) => point(t, spec, rnd));
  const running = spec.liveUntil && spec.elapsed(now) < LIVE_SECONDS;
  const requests = points.reduce((n, p) => n + p.requests, 0);
  const failed = points.reduce((n, p) => n + p.failed, 0);
  const duration = points.length ? points[points.length - 1].t + 1 : 0;
  const started = spec.started;
  const ended = new Date(Date.parse(started) + duration * 1000).toISOString();
  const withSummary = !running && spec.summary !== false;
  const duration_trend = trend(spec.latency, rnd);
  const summary = withSummary ? {
    version: 1,
    test: spec.test,
    run: spec.id,
    segment: spec.missing ? `partial/${spec.runners}` : `all/${spec.runners}`,
    segments: Array.from({ length: spec.runners - (spec.missing?.length ?? 0) }, (_, i) => `${i}/${spec.runners}`),
    missing_segments: spec.missing ?? [],
    started,
    ended,
    duration_s: duration,
    status: spec.status === 'failed' ? 'partial' : spec.status,
    ...(spec.stop_reason ? { stop_reason: spec.stop_reason } : {}),
    ...(spec.runners > 1 ? { start_skew_ms: 3.25 } : {}),
    metrics: {
      http_reqs: { count: requests, rate: duration ? requests / duration : 0 },
      http_req_failed: { rate: requests ? failed / requests : 0, fails: failed, passes: requests - failed },
      http_req_duration: duration_trend,
      http_req_service_duration: trend(spec.latency * 0.8, rnd),
      http_req_send_lag: trend(0.2, rnd),
      iterations: { count: requests, rate: duration ? requests / duration : 0 },
      dropped_iterations: { count: spec.dropped ?? 0, rate: duration ? (spec.dropped ?? 0) / duration : 0 },
      data_sent: { count: requests * 312, rate: duration ? (requests * 312) / duration : 0 },
      data_received: { count: requests * 2048, rate: duration ? (requests * 2048) / duration : 0 },
      vus: { value: 0, min: 0, max: Math.round(spec.rate / 10) },
      vus_max: { value: Math.round(spec.rate / 5), min: Math.round(spec.rate / 5), max: Math.round(spec.rate / 5) },
    },
    errors: failed ? spec.errorClasses(failed) : {},
    thresholds: spec.thresholds(duration_trend, requests ? failed / requests : 0),
    // The stored summary carries the runners' full timeline with histograms; the UI
    // reads the merged one from /timeline, so the mock leaves it out.
    timeline: [],
  } : null;
  const status = running ? 'running' : spec.status;
  const runnersDone = running ? 0 : spec.runners;
  const info = {
    id: spec.id,
    test: spec.test,
    app: spec.app,
    mode: spec.mode,
    started_by: spec.started_by,
    status,
    runners: spec.runners,
    runners_done: runnersDone,
    created: spec.created,
    started: points.length ? started : null,
    ended: running ? null : ended,
    duration_s: running ? null : duration,
    requests: summary ? requests : null,
    error_rate: summary ? summary.metrics.http_req_failed.rate : null,
    p99_ms: summary ? duration_trend.p99 : null,
    labels: spec.labels ?? {},
  };
  const runnerStates = Array.from({ length: spec.runners }, (_, index) => ({
    index,
    state: running ? 'running' : spec.runnerState(index),
    message: running ? null : spec.runnerMessage?.(index) ?? null,
    updated: running ? started : ended,
  }));
  return { info, summary, points, runnerStates, scenario: spec.scenario };
}

function ago(ms, base) {
  return new Date(base - ms).toISOString();
}

function specs(startedAt) {
  const range = (n) => Array.from({ length: n }, (_, i) => i);
  const normalThresholds = (d, errorRate) => ({
    http_req_duration: [
      { expr: 'p(99)<250ms', ok: d.p99 < 250, actual: d.p99, abortOnFail: false, delayAbortEvalMs: 0 },
      { expr: 'p(95)<100ms', ok: d.p95 < 100, actual: d.p95, abortOnFail: true, delayAbortEvalMs: 10000 },
    ],
    http_req_failed: [{ expr: 'rate<0.01', ok: errorRate < 0.01, actual: errorRate, abortOnFail: false, delayAbortEvalMs: 0 }],
  });
  const errorClasses = (n) => ({ 'status 503': Math.ceil(n * 0.7), timeout: Math.floor(n * 0.3) });
  const scenario = 'name: checkout\nscenarios:\n  main:\n    executor: constant-arrival-rate\n    rate: 200\n    duration: 60s\n';
  return [
    {
      id: 'a1c0ffee01', seed: 1, test: 'checkout', app: 'tenc-app=press-client-148-online', mode: 'job',
      started_by: 'alice@build-7', status: 'passed', runners: 2, seconds: range(60), rate: 200, errors: 0.001,
      latency: 12, created: ago(3_600_000, startedAt), started: ago(3_590_000, startedAt),
      labels: { 'kpress.io/job': 'checkout-a1c0ffee01' }, runnerState: () => 'completed',
      thresholds: normalThresholds, errorClasses, scenario,
    },
    {
      id: 'b2c0ffee02', seed: 2, test: 'checkout', app: 'tenc-app=press-client-148-online', mode: 'job',
      started_by: 'https://ci.example.test/jobs/42', status: 'thresholds_failed', runners: 2, seconds: range(60),
      rate: 190, errors: 0.02, latency: 45, dropped: 37, created: ago(1_800_000, startedAt), started: ago(1_790_000, startedAt),
      runnerState: () => 'completed', thresholds: normalThresholds, errorClasses, scenario,
    },
    {
      id: 'c3c0ffee03', seed: 3, test: 'search', app: 'tenc-app=search-api', mode: 'deployment', started_by: 'bob@laptop',
      status: 'passed', runners: 3, seconds: range(LIVE_SECONDS), rate: 120, errors: 0, latency: 8,
      created: ago(2_000, startedAt), started: ago(0, startedAt), liveUntil: true,
      elapsed: (now) => Math.floor((now - startedAt) / 1000),
      runnerState: () => 'completed', thresholds: () => ({}), errorClasses, scenario: 'name: search\n',
    },
    {
      id: 'd4c0ffee04', seed: 4, test: 'search', app: null, mode: 'local', started_by: null, status: 'failed',
      runners: 1, seconds: [], rate: 0, errors: 0, latency: 1, summary: false,
      created: ago(7_200_000, startedAt), started: ago(7_200_000, startedAt),
      runnerState: () => 'failed', runnerMessage: () => 'connect refused: <script>alert("x")</script>',
      thresholds: () => ({}), errorClasses, scenario: '',
    },
    {
      // Markup in every text field: the UI must show it as text.
      id: 'e5c0ffee05', seed: 5, test: '<img src=x onerror=alert(1)>', app: 'team=<b>bold</b>', mode: 'job',
      started_by: '"><svg onload=alert(1)>', status: 'partial', runners: 3, missing: ['2/3'],
      seconds: [0, 1, 2, 3, 7, 8, 9, 12, 20, 21, 22], rate: 50, errors: 0.05, latency: 20,
      created: ago(9_000_000, startedAt), started: ago(9_000_000, startedAt),
      runnerState: (i) => (i === 2 ? 'failed' : 'completed'), runnerMessage: (i) => (i === 2 ? 'pod evicted' : null),
      thresholds: (d) => ({ http_req_duration: [{ expr: 'p(99)<250ms', ok: null, actual: null, abortOnFail: false, delayAbortEvalMs: 0 }] }),
      errorClasses: (n) => ({ '<em>status 500</em>': n }), scenario: 'name: "<script>"\n',
    },
    {
      id: 'f6c0ffee06', seed: 6, test: 'login', app: 'tenc-app=auth', mode: 'local', started_by: 'carol@host',
      status: 'aborted', runners: 1, seconds: [0], rate: 30, errors: 0.5, latency: 300, stop_reason: 'threshold p(99)<250ms crossed',
      created: ago(10_000_000, startedAt), started: ago(10_000_000, startedAt), runnerState: () => 'completed',
      thresholds: normalThresholds, errorClasses, scenario: 'name: login\n',
    },
    {
      id: 'a7c0ffee07', seed: 7, test: 'login', app: 'tenc-app=auth', mode: 'local', started_by: 'carol@host',
      status: 'interrupted', runners: 1, seconds: range(5), rate: 30, errors: 0, latency: 30, stop_reason: 'SIGTERM',
      created: ago(11_000_000, startedAt), started: ago(11_000_000, startedAt), runnerState: () => 'completed',
      thresholds: () => ({}), errorClasses, scenario: 'name: login\n',
    },
  ];
}

function compareMetrics(a, b) {
  const ma = a.summary?.metrics;
  const mb = b.summary?.metrics;
  const pick = (m, f) => (m ? f(m) : null);
  const rows = [
    ['requests', 'count', (m) => m.http_reqs.count],
    ['rate', 'req/s', (m) => m.http_reqs.rate],
    ['error_rate', 'ratio', (m) => m.http_req_failed.rate],
    ...['p50', 'p90', 'p95', 'p99', 'p99.9', 'max'].map((q) => [`http_req_duration ${q}`, 'ms', (m) => m.http_req_duration[q]]),
  ];
  return rows.map(([name, unit, f]) => {
    const va = pick(ma, f);
    const vb = pick(mb, f);
    const both = va != null && vb != null;
    return { name, unit, a: va, b: vb, delta: both ? vb - va : null, ratio: both && va !== 0 ? vb / va : null };
  });
}

function parseCookies(header = '') {
  return Object.fromEntries(header.split(';').map((c) => c.trim().split('=')).filter(([k]) => k).map(([k, ...v]) => [k, decodeURIComponent(v.join('='))]));
}

function readBody(req) {
  return new Promise((resolve, reject) => {
    let data = '';
    req.setEncoding('utf8');
    req.on('data', (chunk) => {
      data += chunk;
    });
    req.on('end', () => resolve(data));
    req.on('error', reject);
  });
}

export function startMock({ port = 0, token = 'dev-token', host = '127.0.0.1' } = {}) {
  const startedAt = Date.now();
  const all = specs(startedAt);
  const runs = () => {
    const now = Date.now();
    return all.map((s) => makeRun(s, now)).sort((x, y) => y.info.created.localeCompare(x.info.created));
  };

  const send = (res, status, body, type = 'application/json') => {
    res.writeHead(status, { 'Content-Type': type, 'Cache-Control': 'no-store', ...SECURITY_HEADERS });
    res.end(type === 'application/json' ? JSON.stringify(body) : body);
  };
  const fail = (res, status, code, message) => send(res, status, { error: { code, message } });
  const file = async (res, name, type = 'text/html; charset=utf-8') => send(res, 200, await readFile(path.join(UI_DIR, name)), type);

  const server = createServer(async (req, res) => {
    const url = new URL(req.url, `http://${req.headers.host}`);
    const p = url.pathname;
    try {
      if (req.method === 'GET' && ASSETS[p]) return await file(res, ...ASSETS[p]);
      if (req.method === 'GET' && PAGES[p]) return await file(res, PAGES[p]);
      if (req.method === 'GET' && /^\/runs\/[^/]+$/.test(p)) return await file(res, 'run.html');
      if (req.method === 'POST' && p === '/login') {
        const form = new URLSearchParams(await readBody(req));
        if (form.get('token') !== token) return fail(res, 401, 'unauthorized', 'wrong token');
        res.writeHead(303, {
          Location: '/',
          'Set-Cookie': `kpress_token=${encodeURIComponent(token)}; HttpOnly; SameSite=Strict; Path=/`,
          ...SECURITY_HEADERS,
        });
        return res.end();
      }
      if (p === '/healthz') return send(res, 200, { status: 'ok' });
      if (!p.startsWith('/api/')) return fail(res, 404, 'not_found', 'no such page');

      const bearer = req.headers.authorization?.replace(/^Bearer /, '');
      if (bearer !== token && parseCookies(req.headers.cookie).kpress_token !== token) {
        return fail(res, 401, 'unauthorized', 'a token is required');
      }
      if (req.method !== 'GET') return fail(res, 400, 'bad_request', 'the mock only answers GET');

      const list = runs();
      const byId = (id) => list.find((r) => r.info.id === id);
      if (p === '/api/runs') {
        const q = url.searchParams;
        const limit = Math.min(Number(q.get('limit') ?? 100), 1000);
        const offset = Number(q.get('offset') ?? 0);
        const picked = list
          .filter((r) => ['test', 'app', 'status'].every((k) => !q.has(k) || r.info[k] === q.get(k)))
          .slice(offset, offset + limit);
        return send(res, 200, { runs: picked.map((r) => r.info) });
      }
      const m = p.match(/^\/api\/runs\/([^/]+)(\/timeline)?$/);
      if (m) {
        const run = byId(decodeURIComponent(m[1]));
        if (!run) return fail(res, 404, 'not_found', 'no such run');
        if (m[2]) return send(res, 200, { points: run.points });
        return send(res, 200, { ...run.info, scenario: run.scenario, summary: run.summary, runner_states: run.runnerStates });
      }
      if (p === '/api/compare') {
        const a = byId(url.searchParams.get('a') ?? '');
        const b = byId(url.searchParams.get('b') ?? '');
        if (!a || !b) return fail(res, 404, 'not_found', 'no such run');
        return send(res, 200, { a: a.info, b: b.info, metrics: compareMetrics(a, b) });
      }
      return fail(res, 404, 'not_found', 'no such route');
    } catch (err) {
      return fail(res, 500, 'internal', err.message);
    }
  });

  return new Promise((resolve, reject) => {
    server.once('error', reject);
    server.listen(port, host, () => {
      const url = `http://${host}:${server.address().port}`;
      resolve({
        url,
        token,
        runA: 'a1c0ffee01',
        runB: 'b2c0ffee02',
        runLive: 'c3c0ffee03',
        close: () => new Promise((done) => server.close(done)),
      });
    });
  });
}

if (import.meta.url === pathToFileURL(process.argv[1] ?? '').href) {
  const arg = (name, fallback) => {
    const i = process.argv.indexOf(`--${name}`);
    return i > 0 ? process.argv[i + 1] : fallback;
  };
  const mock = await startMock({ port: Number(arg('port', 8071)), token: arg('token', 'dev-token') });
  console.log(`mock center on ${mock.url} (token ${mock.token}); runs ${mock.runA}, ${mock.runB}, live ${mock.runLive}`);
}
