// A small SVG line chart for the center's timelines: x is time in seconds, any
// number of series, axes with "nice" ticks, a legend and a hover tooltip.
//
// Data never reaches innerHTML: every label is set with textContent. Colours come
// from the `series-N` classes in style.css, so nothing here needs inline styles
// (which a strict Content-Security-Policy would refuse).

const SVG_NS = 'http://www.w3.org/2000/svg';
const WIDTH = 640;
const HEIGHT = 240;
const MARGIN = { top: 12, right: 16, bottom: 36, left: 60 };
const PLOT_W = WIDTH - MARGIN.left - MARGIN.right;
const PLOT_H = HEIGHT - MARGIN.top - MARGIN.bottom;
const SERIES_CLASSES = 6;

function svg(tag, attrs = {}, text) {
  const node = document.createElementNS(SVG_NS, tag);
  for (const [k, v] of Object.entries(attrs)) node.setAttribute(k, String(v));
  if (text != null) node.textContent = text;
  return node;
}

function html(tag, className, text) {
  const node = document.createElement(tag);
  if (className) node.className = className;
  if (text != null) node.textContent = text;
  return node;
}

// A step of 1, 2 or 5 times a power of ten, close to `raw`.
function niceStep(raw) {
  const power = 10 ** Math.floor(Math.log10(raw));
  const f = raw / power;
  return (f <= 1 ? 1 : f <= 2 ? 2 : f <= 5 ? 5 : 10) * power;
}

// Ticks covering [lo, hi] (lo < hi) with about `count` intervals.
export function niceTicks(lo, hi, count, minStep = 0) {
  const step = Math.max(niceStep((hi - lo) / count), minStep);
  const decimals = Math.max(0, -Math.floor(Math.log10(step)));
  const first = Math.floor(lo / step);
  const last = Math.ceil(hi / step);
  const ticks = [];
  for (let i = first; i <= last; i++) ticks.push(Number((i * step).toFixed(decimals)));
  return ticks;
}

function formatTick(v) {
  const abs = Math.abs(v);
  if (abs >= 1e9) return `${+(v / 1e9).toFixed(1)}G`;
  if (abs >= 1e6) return `${+(v / 1e6).toFixed(1)}M`;
  if (abs >= 1e4) return `${+(v / 1e3).toFixed(1)}k`;
  return String(+v.toFixed(3));
}

export function formatValue(v) {
  if (v == null || !Number.isFinite(v)) return '—';
  const abs = Math.abs(v);
  const digits = abs >= 100 ? 0 : abs >= 10 ? 1 : abs >= 1 ? 2 : 3;
  return v.toLocaleString(undefined, { maximumFractionDigits: digits });
}

function usable(p) {
  return p != null && Number.isFinite(p.x);
}

function hasValue(p) {
  return usable(p) && p.y != null && Number.isFinite(p.y);
}

// Splits a series into runs of consecutive points: a missing value, or a step in x
// larger than `maxGap`, starts a new run, so gaps show as breaks in the line.
function segments(points, maxGap) {
  const out = [];
  let current = [];
  let prevX = null;
  for (const p of points) {
    if (!hasValue(p)) {
      if (current.length) out.push(current);
      current = [];
      prevX = null;
      continue;
    }
    if (prevX != null && p.x - prevX > maxGap) {
      out.push(current);
      current = [];
    }
    current.push(p);
    prevX = p.x;
  }
  if (current.length) out.push(current);
  return out;
}

function domain(values, floor) {
  let lo = Math.min(...values, ...(floor == null ? [] : [floor]));
  let hi = Math.max(...values);
  if (!(hi > lo)) hi = lo + 1;
  return [lo, hi];
}

/**
 * Builds a chart. Returns a <figure> to insert in the page.
 *
 * options:
 *   title    – accessible name and caption
 *   unit     – unit of the y values, shown on the axis and in the tooltip
 *   series   – [{ name, points: [{ x, y }] }]; y null/NaN is a gap
 *   maxGap   – largest x step drawn as a continuous line (default: no limit)
 *   yFloor   – lowest value the y axis always shows (default 0; null for none)
 */
export function lineChart({ title, unit = '', series = [], maxGap = Infinity, yFloor = 0 }) {
  const figure = html('figure', 'chart');
  const caption = html('figcaption', 'chart-title', unit ? `${title} (${unit})` : title);
  const root = svg('svg', {
    viewBox: `0 0 ${WIDTH} ${HEIGHT}`,
    role: 'img',
    'aria-label': caption.textContent,
    class: 'chart-svg',
  });
  root.append(svg('title', {}, caption.textContent));
  figure.append(caption, root);

  const cleaned = series.map((s) => ({
    name: String(s.name),
    points: (s.points ?? []).filter(usable).sort((a, b) => a.x - b.x),
  }));
  const xs = [...new Set(cleaned.flatMap((s) => s.points.map((p) => p.x)))].sort((a, b) => a - b);
  const ys = cleaned.flatMap((s) => s.points.filter(hasValue).map((p) => p.y));

  root.append(svg('rect', { class: 'plot-bg', x: MARGIN.left, y: MARGIN.top, width: PLOT_W, height: PLOT_H }));

  if (!xs.length || !ys.length) {
    root.append(svg('text', {
      class: 'chart-empty', x: MARGIN.left + PLOT_W / 2, y: MARGIN.top + PLOT_H / 2, 'text-anchor': 'middle',
    }, 'No data yet'));
    return figure;
  }

  const xTicks = niceTicks(...domain(xs, null), 6, 1);
  const yTicks = niceTicks(...domain(ys, yFloor), 4);
  const [x0, x1] = [xTicks[0], xTicks[xTicks.length - 1]];
  const [y0, y1] = [yTicks[0], yTicks[yTicks.length - 1]];
  const sx = (x) => MARGIN.left + ((x - x0) / (x1 - x0)) * PLOT_W;
  const sy = (y) => MARGIN.top + PLOT_H - ((y - y0) / (y1 - y0)) * PLOT_H;

  const axes = svg('g', { class: 'axes' });
  for (const t of yTicks) {
    const y = sy(t).toFixed(1);
    axes.append(
      svg('line', { class: 'grid', x1: MARGIN.left, x2: MARGIN.left + PLOT_W, y1: y, y2: y }),
      svg('text', { class: 'tick', x: MARGIN.left - 6, y, 'text-anchor': 'end', 'dominant-baseline': 'middle' }, formatTick(t)),
    );
  }
  for (const t of xTicks) {
    const x = sx(t).toFixed(1);
    axes.append(
      svg('line', { class: 'tick-mark', x1: x, x2: x, y1: MARGIN.top + PLOT_H, y2: MARGIN.top + PLOT_H + 4 }),
      svg('text', { class: 'tick', x, y: MARGIN.top + PLOT_H + 16, 'text-anchor': 'middle' }, formatTick(t)),
    );
  }
  axes.append(
    svg('line', { class: 'axis', x1: MARGIN.left, x2: MARGIN.left + PLOT_W, y1: MARGIN.top + PLOT_H, y2: MARGIN.top + PLOT_H }),
    svg('line', { class: 'axis', x1: MARGIN.left, x2: MARGIN.left, y1: MARGIN.top, y2: MARGIN.top + PLOT_H }),
    svg('text', { class: 'axis-label', x: MARGIN.left + PLOT_W / 2, y: HEIGHT - 4, 'text-anchor': 'middle' }, 'time (s)'),
    svg('text', {
      class: 'axis-label', x: 12, y: MARGIN.top + PLOT_H / 2, 'text-anchor': 'middle',
      transform: `rotate(-90 12 ${MARGIN.top + PLOT_H / 2})`,
    }, unit),
  );
  root.append(axes);

  const legend = html('ul', 'chart-legend');
  cleaned.forEach((s, i) => {
    const cls = `series-${i % SERIES_CLASSES}`;
    const g = svg('g', { class: `series ${cls}`, 'data-series': s.name });
    const runs = segments(s.points, maxGap);
    const d = runs
      .map((run) => run.map((p, j) => `${j ? 'L' : 'M'}${sx(p.x).toFixed(1)} ${sy(p.y).toFixed(1)}`).join(''))
      .join('');
    g.append(svg('path', { class: 'series-line', d, 'data-points': runs.reduce((n, r) => n + r.length, 0) }));
    // A lone point has no line to show it: mark it with a dot.
    for (const run of runs.filter((r) => r.length === 1)) {
      g.append(svg('circle', { class: 'series-dot', cx: sx(run[0].x).toFixed(1), cy: sy(run[0].y).toFixed(1), r: 3 }));
    }
    root.append(g);
    const item = html('li', cls);
    item.append(html('span', 'swatch'), html('span', null, s.name));
    legend.append(item);
  });
  figure.append(legend);

  addTooltip(figure, root, cleaned, xs, sx, unit);
  return figure;
}

// Hovering shows a guide line at the nearest second and every series' value there.
function addTooltip(figure, root, series, xs, sx, unit) {
  const guide = svg('line', { class: 'guide', y1: MARGIN.top, y2: MARGIN.top + PLOT_H, visibility: 'hidden' });
  const hit = svg('rect', { class: 'hit', x: MARGIN.left, y: MARGIN.top, width: PLOT_W, height: PLOT_H });
  root.append(guide, hit);
  const tip = html('div', 'chart-tip');
  tip.hidden = true;
  figure.append(tip);
  const byX = series.map((s) => new Map(s.points.map((p) => [p.x, p.y])));

  hit.addEventListener('pointermove', (ev) => {
    const box = root.getBoundingClientRect();
    if (!box.width) return;
    const vx = ((ev.clientX - box.left) / box.width) * WIDTH;
    let nearest = xs[0];
    for (const x of xs) if (Math.abs(sx(x) - vx) < Math.abs(sx(nearest) - vx)) nearest = x;
    const gx = sx(nearest);
    guide.setAttribute('x1', gx.toFixed(1));
    guide.setAttribute('x2', gx.toFixed(1));
    guide.setAttribute('visibility', 'visible');

    tip.replaceChildren(html('div', 'chart-tip-head', `t = ${nearest} s`));
    series.forEach((s, i) => {
      const row = html('div', `series-${i % SERIES_CLASSES}`);
      const y = byX[i].get(nearest);
      row.append(html('span', 'swatch'), html('span', null, `${s.name}: ${formatValue(y)}${y == null ? '' : ` ${unit}`}`));
      tip.append(row);
    });
    tip.hidden = false;
    const fbox = figure.getBoundingClientRect();
    const left = box.left - fbox.left + (gx / WIDTH) * box.width;
    // Keep the tooltip inside the figure: flip it to the left of the guide on the right half.
    const flip = left > fbox.width / 2;
    tip.classList.toggle('flip', flip);
    tip.style.left = `${left}px`;
    tip.style.top = `${box.top - fbox.top + (MARGIN.top / HEIGHT) * box.height}px`;
  });
  hit.addEventListener('pointerleave', () => {
    guide.setAttribute('visibility', 'hidden');
    tip.hidden = true;
  });
}
