// Headless-browser test of the center's web UI (see README.md).
//
//   node ui.test.mjs [--url URL] [--token TOKEN] [--run-a ID] [--run-b ID] [--run-live ID]
//   node ui.test.mjs URL TOKEN RUN_A RUN_B
//   node ui.test.mjs --mock          # against mock-center.mjs, started in-process
//
// Env fallbacks: KPRESS_CENTER_URL, KPRESS_CENTER_TOKEN, RUN_A, RUN_B, RUN_LIVE,
// CHROMIUM (default /usr/bin/chromium). RUN_A must be finished, with a summary and a
// timeline; RUN_B is compared with it; RUN_LIVE (optional) is a run still running.
// Exit code 0 when every check passes, 1 on a failed check, 2 on bad usage.

import { chromium } from 'playwright-core';

const STEP_TIMEOUT_MS = 15_000;
const TOTAL_TIMEOUT_MS = 180_000;

class CheckFailed extends Error {}

function check(cond, message) {
  if (!cond) throw new CheckFailed(message);
}

function parseArgs(argv) {
  const flags = {};
  const positional = [];
  for (let i = 0; i < argv.length; i++) {
    const a = argv[i];
    if (a === '--mock') flags.mock = true;
    else if (a.startsWith('--')) flags[a.slice(2)] = argv[++i];
    else positional.push(a);
  }
  const env = process.env;
  return {
    mock: Boolean(flags.mock),
    url: (flags.url ?? positional[0] ?? env.KPRESS_CENTER_URL ?? '').replace(/\/+$/, ''),
    token: flags.token ?? positional[1] ?? env.KPRESS_CENTER_TOKEN,
    runA: flags['run-a'] ?? positional[2] ?? env.RUN_A,
    runB: flags['run-b'] ?? positional[3] ?? env.RUN_B,
    runLive: flags['run-live'] ?? positional[4] ?? env.RUN_LIVE,
    runDeployment: flags['run-deployment'] ?? env.RUN_DEPLOYMENT,
    chromium: flags.chromium ?? env.CHROMIUM ?? '/usr/bin/chromium',
  };
}

function log(message) {
  console.log(`ui-test: ${message}`);
}

// Everything the browser reports that means the UI is broken, tagged with the step.
function watch(page, problems, step) {
  page.on('console', (msg) => {
    if (msg.type() === 'error') problems.push(`[${step.name}] console error: ${msg.text()} (${msg.location().url})`);
  });
  page.on('pageerror', (err) => problems.push(`[${step.name}] page error: ${err.message}`));
  page.on('requestfailed', (req) => problems.push(`[${step.name}] request failed: ${req.method()} ${req.url()}: ${req.failure()?.errorText}`));
  page.on('response', (res) => {
    if (res.status() >= 400) problems.push(`[${step.name}] HTTP ${res.status()} for ${res.request().method()} ${res.url()}`);
  });
}

// The number of points a path draws: one per M or L command (chart.js's format).
function pathPoints(d) {
  return (d.match(/[ML]/g) ?? []).length;
}

async function apiGet(request, base, path) {
  const res = await request.get(`${base}${path}`);
  check(res.ok(), `API GET ${path} answered ${res.status()}: ${await res.text()}`);
  return res.json();
}

async function login(page, cfg, step) {
  step.name = 'signed out';
  // A page of its own, unwatched: its 401 is the expected answer here.
  const anonymous = await page.context().newPage();
  await anonymous.goto(`${cfg.url}/`);
  await anonymous.waitForURL(`${cfg.url}/login`);
  await anonymous.close();
  log('signed out, the runs page sends the browser to /login');

  step.name = 'login';
  await page.goto(`${cfg.url}/login`);
  await page.fill('input[name=token]', cfg.token);
  await page.click('button[type=submit]');
  await page.waitForURL(`${cfg.url}/`).catch(() => {
    throw new CheckFailed(`signing in did not lead to / (the browser is at ${page.url()}): is the token right?`);
  });
  const cookies = await page.context().cookies(cfg.url);
  const cookie = cookies.find((c) => c.name === 'kpress_token');
  check(cookie, 'no kpress_token cookie after logging in');
  check(cookie.httpOnly, 'the kpress_token cookie is not HttpOnly');
  log('logged in through the form');
}

async function runsList(page, cfg, step) {
  step.name = 'runs list';
  const { runs } = await apiGet(page.request, cfg.url, '/api/runs');
  const rows = page.locator('#runs tbody tr[data-run-id]');
  await rows.first().waitFor();
  const shown = await rows.evaluateAll((trs) => trs.map((tr) => tr.dataset.runId));
  check(JSON.stringify(shown) === JSON.stringify(runs.map((r) => r.id)),
    `runs table shows ${JSON.stringify(shown)}, the API lists ${JSON.stringify(runs.map((r) => r.id))}`);
  for (const id of [cfg.runA, cfg.runB]) check(shown.includes(id), `run ${id} is not in the runs table`);
  for (const run of runs) {
    const row = page.locator(`#runs tbody tr[data-run-id="${run.id}"]`);
    const status = await row.locator('.badge').getAttribute('data-status');
    check(status === run.status, `run ${run.id}: badge says ${status}, the API ${run.status}`);
    const link = await row.locator(`a[href="/runs/${encodeURIComponent(run.id)}"]`).count();
    check(link > 0, `run ${run.id} has no link to its page`);
  }
  log(`runs table has the ${runs.length} runs of the API`);

  // The test filter goes into the API query and narrows the table.
  const test = runs.find((r) => r.id === cfg.runA).test;
  await page.fill('#filters input[name=test]', test);
  const filtered = page.waitForResponse((res) => new URL(res.url()).pathname === '/api/runs'
    && new URL(res.url()).searchParams.get('test') === test);
  await page.click('#filters button[type=submit]');
  await (await filtered).finished();
  await page.locator(`#runs tbody tr[data-run-id="${cfg.runA}"]`).waitFor();
  const expected = runs.filter((r) => r.test === test).map((r) => r.id);
  const afterFilter = await rows.evaluateAll((trs) => trs.map((tr) => tr.dataset.runId));
  check(JSON.stringify(afterFilter) === JSON.stringify(expected),
    `filtered by test=${test}: table shows ${JSON.stringify(afterFilter)}, expected ${JSON.stringify(expected)}`);
  log(`filter by test narrows the table to ${afterFilter.length} runs`);

  // Picking two runs opens the compare page for them.
  await page.goto(`${cfg.url}/`);
  await rows.first().waitFor();
  for (const id of [cfg.runA, cfg.runB]) await page.check(`#runs tbody tr[data-run-id="${id}"] input[type=checkbox]`);
  await Promise.all([page.waitForURL(/\/compare\?/), page.click('#compare-selected')]);
  const picked = new URL(page.url()).searchParams;
  check([picked.get('a'), picked.get('b')].sort().join() === [cfg.runA, cfg.runB].sort().join(),
    `compare opened with a=${picked.get('a')} b=${picked.get('b')}`);
  log('selecting two runs opens the compare page');
}

async function chartPoints(page, slot) {
  return page.locator(`#${slot} svg path.series-line`).evaluateAll((paths) => paths.map((p) => ({
    name: p.closest('[data-series]').dataset.series,
    d: p.getAttribute('d') ?? '',
  })));
}

async function runPage(page, cfg, step) {
  step.name = `run page ${cfg.runA}`;
  const run = await apiGet(page.request, cfg.url, `/api/runs/${encodeURIComponent(cfg.runA)}`);
  const { points } = await apiGet(page.request, cfg.url, `/api/runs/${encodeURIComponent(cfg.runA)}/timeline`);
  check(run.status !== 'running', `RUN_A ${cfg.runA} must be finished, it is running`);
  check(run.summary, `RUN_A ${cfg.runA} must have a summary`);
  check(points.length > 0, `RUN_A ${cfg.runA} must have a timeline`);

  await page.goto(`${cfg.url}/runs/${encodeURIComponent(cfg.runA)}`);
  await page.locator('#run-header .badge').waitFor();
  check(await page.locator('#run-title').textContent() === run.test, 'run title is not the test name');
  check(await page.locator('#run-header .badge').getAttribute('data-status') === run.status, 'run status badge is wrong');
  check((await page.locator('#run-header').textContent()).includes(run.id), 'run header does not show the run id');

  const charts = { 'chart-rate': ['requests/s'], 'chart-errors': ['failed'], 'chart-latency': ['p50', 'p95', 'p99'] };
  for (const [slot, names] of Object.entries(charts)) {
    await page.locator(`#${slot} svg`).waitFor();
    const series = await chartPoints(page, slot);
    check(JSON.stringify(series.map((s) => s.name)) === JSON.stringify(names),
      `${slot}: series ${JSON.stringify(series.map((s) => s.name))}, expected ${JSON.stringify(names)}`);
    for (const s of series) {
      check(s.d.trim() !== '', `${slot}/${s.name}: empty path`);
      check(pathPoints(s.d) === points.length, `${slot}/${s.name}: ${pathPoints(s.d)} points drawn, the timeline has ${points.length}`);
    }
    check(await page.locator(`#${slot} .chart-legend li`).count() === names.length, `${slot}: legend is incomplete`);
    check(await page.locator(`#${slot} svg text.tick`).count() >= 4, `${slot}: axes have no ticks`);
  }
  log(`three charts drawn with ${points.length} points per series`);

  const count = run.summary.metrics.http_reqs.count;
  const cell = page.locator('[data-metric="http_reqs.count"]');
  check(Number(await cell.getAttribute('data-value')) === count, 'http_reqs count data-value differs from the API');
  check((await cell.textContent()).replace(/\D/g, '') === String(count),
    `summary shows "${await cell.textContent()}" requests, the API ${count}`);
  for (const key of ['http_req_duration', 'http_req_service_duration', 'http_req_send_lag']) {
    for (const stat of ['min', 'mean', 'p50', 'p90', 'p95', 'p99', 'p99.9', 'max']) {
      const v = await page.locator(`[data-metric="${key}.${stat}"]`).getAttribute('data-value');
      check(Number(v) === run.summary.metrics[key][stat], `${key} ${stat}: page has ${v}, the API ${run.summary.metrics[key][stat]}`);
    }
  }
  log(`summary table shows ${count} requests and the latency trends`);

  const thresholds = Object.entries(run.summary.thresholds ?? {}).flatMap(([, list]) => list);
  if (thresholds.length) {
    const oks = await page.locator('#thresholds-table tbody tr').evaluateAll((trs) => trs.map((tr) => tr.dataset.ok));
    check(JSON.stringify(oks) === JSON.stringify(thresholds.map((t) => String(t.ok))),
      `thresholds shown ${JSON.stringify(oks)}, the API has ${JSON.stringify(thresholds.map((t) => t.ok))}`);
    const marks = await page.locator('#thresholds-table .verdict').allTextContents();
    for (const [i, t] of thresholds.entries()) {
      const mark = t.ok === true ? '✓' : t.ok === false ? '✗' : '–';
      check(marks[i].includes(mark), `threshold ${t.expr}: "${marks[i]}" lacks ${mark}`);
    }
  } else {
    await page.locator('#no-thresholds').waitFor();
  }
  log(`${thresholds.length} thresholds rendered`);

  const errorClasses = Object.keys(run.summary.errors ?? {}).length;
  const errorRows = errorClasses ? await page.locator('#errors-table tbody tr').count() : 0;
  check(errorRows === errorClasses, `errors table has ${errorRows} rows, the API ${errorClasses} classes`);
  const runnerRows = (run.runner_states ?? []).length ? await page.locator('#runners-table tbody tr').count() : 0;
  check(runnerRows === (run.runner_states ?? []).length, `runners table has ${runnerRows} rows, the API ${(run.runner_states ?? []).length}`);
  log('errors by class and runner states rendered');
}

async function comparePage(page, cfg, step) {
  step.name = 'compare page';
  const query = `a=${encodeURIComponent(cfg.runA)}&b=${encodeURIComponent(cfg.runB)}`;
  const data = await apiGet(page.request, cfg.url, `/api/compare?${query}`);
  await page.goto(`${cfg.url}/compare?${query}`);
  const rows = page.locator('#compare tbody tr');
  await rows.first().waitFor();
  check(await rows.count() === data.metrics.length, `compare table has ${await rows.count()} rows, the API ${data.metrics.length} metrics`);
  for (const [i, m] of data.metrics.entries()) {
    const row = rows.nth(i);
    check(await row.getAttribute('data-metric') === m.name, `compare row ${i} is not ${m.name}`);
    const delta = row.locator('td.delta');
    const cls = await delta.getAttribute('class');
    check(/delta-(worse|better|same|na)/.test(cls), `${m.name}: delta cell is not coloured (${cls})`);
    if (m.delta != null) {
      check(Number(await delta.getAttribute('data-value')) === m.delta, `${m.name}: delta differs from the API`);
      check((await delta.textContent()).trim() !== '—', `${m.name}: delta not shown`);
    }
  }
  for (const [side, id] of [['a', cfg.runA], ['b', cfg.runB]]) {
    const card = page.locator(`.run-card[data-side="${side}"]`);
    check(await card.getAttribute('data-run-id') === id, `compare header ${side} is not run ${id}`);
    check(await card.locator(`a[href="/runs/${encodeURIComponent(id)}"]`).count() > 0, `compare header ${side} has no link to run ${id}`);
  }
  log(`compare page shows ${data.metrics.length} metrics with deltas`);
}

// A running run's page refreshes by itself: its charts grow or it finishes.
async function livePage(page, cfg, step) {
  step.name = `live run page ${cfg.runLive}`;
  const run = await apiGet(page.request, cfg.url, `/api/runs/${encodeURIComponent(cfg.runLive)}`);
  if (run.status !== 'running') {
    log(`RUN_LIVE ${cfg.runLive} is ${run.status}, not running: live refresh not checked`);
    return;
  }
  await page.goto(`${cfg.url}/runs/${encodeURIComponent(cfg.runLive)}`);
  await page.locator('#run-header .badge').waitFor();
  const drawn = async () => (await chartPoints(page, 'chart-rate')).map((s) => pathPoints(s.d))[0] ?? 0;
  const before = await drawn();
  const deadline = Date.now() + 5_000;
  let after = before;
  while (Date.now() < deadline && after <= before) {
    await page.waitForTimeout(500);
    after = await drawn();
  }
  const status = await page.locator('#run-header .badge').getAttribute('data-status');
  check(after > before || status !== 'running', `live run page did not refresh: ${before} points before, ${after} after 5 s`);
  log(`live run page refreshed: ${before} → ${after} points`);
}

// A deployment-mode run's page shows its Deployment and how many shares are leased.
async function deploymentPage(page, cfg, step) {
  step.name = `deployment run page ${cfg.runDeployment}`;
  const run = await apiGet(page.request, cfg.url, `/api/runs/${encodeURIComponent(cfg.runDeployment)}`);
  check(run.deployment, `RUN_DEPLOYMENT ${cfg.runDeployment} has no deployment`);
  await page.goto(`${cfg.url}/runs/${encodeURIComponent(cfg.runDeployment)}`);
  await page.locator('#deployment-name').waitFor();
  check(await page.locator('#deployment-section').isVisible(), 'the deployment section is hidden');
  const name = await page.locator('#deployment-name').textContent();
  check(name === `${run.deployment.namespace}/${run.deployment.name}`, `deployment shown as "${name}"`);
  const leased = await page.locator('#deployment-leased').getAttribute('data-value');
  check(Number(leased) === run.deployment.leased, `leased shown ${leased}, the API ${run.deployment.leased}`);
  check((await page.locator('#cleanup-state').textContent()).length > 0, 'no clean-up state');
  log(`deployment ${name} shown with ${leased} of ${run.runners} shares leased`);
}

async function main() {
  const cfg = parseArgs(process.argv.slice(2));
  let mock = null;
  if (cfg.mock) {
    const { startMock } = await import('./mock-center.mjs');
    mock = await startMock();
    Object.assign(cfg, { url: mock.url, token: mock.token, runA: mock.runA, runB: mock.runB, runLive: mock.runLive });
    log(`mock center on ${mock.url}`);
  }
  const missing = ['url', 'token', 'runA', 'runB'].filter((k) => !cfg[k]);
  if (missing.length) {
    console.error(`ui-test: missing ${missing.join(', ')}: give --url --token --run-a --run-b `
      + '(or KPRESS_CENTER_URL, KPRESS_CENTER_TOKEN, RUN_A, RUN_B), or --mock');
    return 2;
  }

  const problems = [];
  const step = { name: 'start' };
  let browser = null;
  try {
    step.name = `launching ${cfg.chromium}`;
    browser = await chromium.launch({ executablePath: cfg.chromium, args: ['--no-sandbox'], timeout: 30_000 });
    const context = await browser.newContext({ locale: 'en-US', timezoneId: 'UTC' });
    context.setDefaultTimeout(STEP_TIMEOUT_MS);
    context.setDefaultNavigationTimeout(STEP_TIMEOUT_MS);
    const page = await context.newPage();
    watch(page, problems, step);

    await login(page, cfg, step);
    await runsList(page, cfg, step);
    await runPage(page, cfg, step);
    await comparePage(page, cfg, step);
    if (cfg.runLive) await livePage(page, cfg, step);
    if (cfg.runDeployment) await deploymentPage(page, cfg, step);
    // Late errors (a refresh after the last check) count too.
    await page.waitForTimeout(300);
  } catch (err) {
    const message = err instanceof CheckFailed ? err.message : `${err.name}: ${err.message}`;
    console.error(`ui-test: FAILED at ${step.name}: ${message}`);
    for (const p of problems) console.error(`ui-test:   ${p}`);
    return 1;
  } finally {
    await browser?.close();
    await mock?.close();
  }
  if (problems.length) {
    console.error(`ui-test: FAILED: the browser reported ${problems.length} problem(s):`);
    for (const p of problems) console.error(`ui-test:   ${p}`);
    return 1;
  }
  log('all checks passed');
  return 0;
}

const timer = setTimeout(() => {
  console.error(`ui-test: FAILED: no result within ${TOTAL_TIMEOUT_MS / 1000} s`);
  process.exit(1);
}, TOTAL_TIMEOUT_MS);
timer.unref();
main().then((code) => {
  process.exitCode = code;
}, (err) => {
  console.error(`ui-test: FAILED: ${err.stack ?? err}`);
  process.exitCode = 1;
});
