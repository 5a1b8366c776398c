// Overview: what is failing, how fast work flows, and what the system is doing about it.
import { barList, fmt, lineChart } from './charts.js';
import { duration, esc, state } from './util.js';

export function mountOverview(root, ctx) {
  root.innerHTML = `<h1>Overview</h1><div id="ov-cards" class="cards"></div><div id="ov-charts" class="grid"></div><div id="ov-side" class="grid wide"></div>`;
  return ctx.poll(async () => {
    const [stats, queues, workers, breakers] = await Promise.all([
      ctx.api('GET', '/api/stats?minutes=5'),
      ctx.api('GET', '/api/queues'),
      ctx.api('GET', '/api/workers'),
      ctx.has('breakers') ? ctx.api('GET', '/api/breakers').catch(() => null) : Promise.resolve(null),
    ]);
    const s = stats.series;
    const times = s.map((p) => p.at);
    const last = s.slice(-12);
    const done = last.reduce((n, p) => n + p.completed, 0);
    const outcomes = last.reduce((n, p) => n + p.completed + p.failed + p.dead, 0);
    const c = stats.counts;
    const cards = [
      ['Throughput', `${fmt(done / 60)}/s`, 'completed per second, last minute'],
      ['Success rate', outcomes ? `${Math.round((done / outcomes) * 100)}%` : '–', 'completed / all outcomes, last minute'],
      ['Waiting', (c.available ?? 0) + (c.scheduled ?? 0), 'available + scheduled'],
      ['Running', c.running ?? 0, ''],
      ['Completed', c.completed ?? 0, ''],
      ['Dead letters', c.dead ?? 0, 'jobs in the dead letter queue'],
    ];
    document.getElementById('ov-cards').innerHTML = cards
      .map(([k, v, title]) => `<div class="card" title="${esc(title)}" data-card="${esc(k)}"><div class="k">${esc(k)}</div><div class="v">${esc(v)}</div></div>`)
      .join('');
    document.getElementById('ov-charts').innerHTML = [
      lineChart({ title: 'Throughput', times, unit: '/s', series: [{ name: 'completed', values: s.map((p) => p.throughput) }] }),
      lineChart({ title: 'Success rate', times, unit: '%', max: 100, series: [{ name: 'success', values: s.map((p) => (p.successRate == null ? null : p.successRate * 100)) }] }),
      lineChart({
        title: 'Run latency',
        times,
        unit: ' ms',
        series: ['p50', 'p95', 'p99'].map((q) => ({ name: q, values: s.map((p) => p.run?.[q] ?? null) })),
      }),
      lineChart({
        title: 'Pickup latency',
        times,
        unit: ' ms',
        series: ['p50', 'p95', 'p99'].map((q) => ({ name: q, values: s.map((p) => p.pickup?.[q] ?? null) })),
      }),
      lineChart({ title: 'Queue depth', times, series: [{ name: 'waiting', values: s.map((p) => p.depth) }] }),
      lineChart({ title: 'Dead letter queue', times, series: [{ name: 'size', values: s.map((p) => p.dlqSize) }, { name: 'new dead', values: s.map((p) => p.dead) }] }),
    ].join('');
    const errors = Object.entries(stats.errorsByType)
      .map(([label, value]) => ({ label, value }))
      .sort((a, b) => b.value - a.value);
    const queueRows = queues.queues
      .map((q) => `<tr><td>${esc(q.queue)}</td><td class="mono">${esc(q.depth)}</td><td class="mono">${esc(q.scheduled ?? '–')}</td><td class="mono">${esc(q.running ?? '–')}</td><td class="mono">${esc(duration(q.lagMs))}</td><td class="mono">${esc(q.drainTimeMs == null ? '∞ (not draining)' : duration(q.drainTimeMs))}</td></tr>${q.warning ? `<tr><td colspan="6" class="error">${esc(q.warning)}</td></tr>` : ''}`)
      .join('');
    const procs = workers.processes ?? [];
    const procRows = procs
      .map((p) => `<tr><td class="mono">${esc(p.pid ?? p.id ?? '–')}</td><td>${p.state === 'running' || !p.state ? '<span class="state up">running</span>' : state(p.state)}</td><td class="mono">${esc(p.restarts ?? 0)}</td><td class="mono">${esc(p.inFlight ?? '–')}</td><td class="mono">${esc(duration(p.uptimeMs))}</td></tr>`)
      .join('');
    const breakerPanel = breakers
      ? `<div class="panel" data-panel="breakers"><h2>Breakers</h2>${
          breakers.breakers.length
            ? `<table>${breakers.breakers.map((b) => `<tr><td>${esc(b.name)}</td><td>${state(b.state)}</td></tr>`).join('')}</table>`
            : '<p class="muted">no breakers</p>'
        }</div>`
      : `<div class="panel" data-panel="breakers"><h2>Breakers</h2><p class="muted">Circuit breakers are not available in this build.</p></div>`;
    document.getElementById('ov-side').innerHTML = [
      barList('Errors by job type (5 min)', errors, 'no errors in the last 5 minutes'),
      `<div class="panel" data-panel="queues"><h2>Queues</h2><table><tr><th>Queue</th><th>Depth</th><th>Scheduled</th><th>Running</th><th>Lag</th><th>Drain time</th></tr>${queueRows}</table></div>`,
      breakerPanel,
      `<div class="panel" data-panel="workers"><h2>Worker processes ${workers.supervised ? '' : '<span class="muted">(in the server process)</span>'}</h2><table><tr><th>PID</th><th>State</th><th>Restarts</th><th>In flight</th><th>Uptime</th></tr>${procRows}</table></div>`,
    ].join('');
  }, 2000);
}
