// Hand-drawn SVG charts: no library, no network. Each chart is a string of markup.
import { esc } from './util.js';

const W = 600;
const H = 150;
const PAD = 4;

/**
 * A line chart over time. `series`: [{ name, values: (number|null)[] }], one value per time in `times`.
 * Gaps (null) break the line. The y axis starts at 0 and ends at the largest value (or `max`).
 */
export function lineChart({ title, times, series, unit = '', max, format = fmt }) {
  const all = series.flatMap((s) => s.values).filter((v) => v != null && Number.isFinite(v));
  const top = max ?? Math.max(1e-9, ...all);
  const n = times.length;
  const x = (i) => (n <= 1 ? W / 2 : PAD + (i * (W - 2 * PAD)) / (n - 1));
  const y = (v) => H - PAD - (Math.min(v, top) / top) * (H - 2 * PAD);
  const grid = [0.25, 0.5, 0.75].map((f) => `<line x1="0" x2="${W}" y1="${y(top * f)}" y2="${y(top * f)}" class="grid" stroke="#2a323c" stroke-width="1" vector-effect="non-scaling-stroke"/>`).join('');
  const colors = ['#58a6ff', '#bc8cff', '#d29922', '#f85149'];
  const lines = series
    .map((s, si) => {
      const segments = [];
      let cur = [];
      s.values.forEach((v, i) => {
        if (v == null || !Number.isFinite(v)) {
          if (cur.length) segments.push(cur);
          cur = [];
        } else cur.push(`${x(i).toFixed(1)},${y(v).toFixed(1)}`);
      });
      if (cur.length) segments.push(cur);
      return segments
        .map((pts) =>
          pts.length === 1
            ? `<circle cx="${pts[0].split(',')[0]}" cy="${pts[0].split(',')[1]}" r="2" fill="${colors[si % 4]}"/>`
            : `<polyline data-series="${esc(s.name)}" points="${pts.join(' ')}" fill="none" stroke="${colors[si % 4]}" stroke-width="2" vector-effect="non-scaling-stroke"/>`,
        )
        .join('');
    })
    .join('');
  const latest = series.map((s) => [...s.values].reverse().find((v) => v != null));
  const legend = series.map((s, i) => `<span><span class="sw c${i % 4}"></span>${esc(s.name)} ${latest[i] == null ? '–' : esc(format(latest[i]) + unit)}</span>`).join('');
  const from = times.length ? new Date(times[0]).toLocaleTimeString() : '';
  const to = times.length ? new Date(times[times.length - 1]).toLocaleTimeString() : '';
  return `<div class="panel chart" data-chart="${esc(title)}" data-max="${all.length ? Math.max(...all) : 0}" data-points="${all.length}">
    <h2>${esc(title)} <span class="muted">max ${esc(format(all.length ? Math.max(...all) : 0) + unit)}</span></h2>
    <svg viewBox="0 0 ${W} ${H}" preserveAspectRatio="none" role="img" aria-label="${esc(title)}">${grid}${lines}</svg>
    <div class="legend">${legend}<span class="muted">${esc(from)} – ${esc(to)}</span></div>
  </div>`;
}

/** Horizontal bars: [{ label, value }]. */
export function barList(title, rows, empty = 'nothing yet') {
  const top = Math.max(1, ...rows.map((r) => r.value));
  const body = rows.length
    ? `<table>${rows
        .map((r) => `<tr><td>${esc(r.label)}</td><td class="mono">${esc(String(r.value))}</td><td class="barcell"><svg viewBox="0 0 100 8" preserveAspectRatio="none" width="100%" height="8"><rect x="0" y="0" height="8" rx="3" width="${((r.value / top) * 100).toFixed(1)}" fill="#f85149"/></svg></td></tr>`)
        .join('')}</table>`
    : `<p class="muted">${esc(empty)}</p>`;
  return `<div class="panel" data-chart="${esc(title)}"><h2>${esc(title)}</h2>${body}</div>`;
}

export function fmt(v) {
  if (v == null) return '–';
  if (Math.abs(v) >= 1000) return `${(v / 1000).toFixed(1)}k`;
  if (Number.isInteger(v)) return String(v);
  return v.toFixed(v < 1 ? 2 : 1);
}
