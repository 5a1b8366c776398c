/**
 * The per-job metrics counted outside prom-client (hot-metrics.ts) expose
 * exactly what prom-client's own Counter and Histogram expose for the same
 * observations; two clients sharing a registry count into one series.
 */
import { Counter, Histogram, Registry } from 'prom-client';
import { describe, expect, it } from 'vitest';
import { HotCounter, HotHistogram, registerHot } from '../../src/observability/hot-metrics.ts';

const BUCKETS = [0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30, 60, 300];
// On a bucket bound, between bounds, zero, and above the largest bound.
const OBSERVATIONS: [number, string, string][] = [
  [0.005, 'email', 'completed'],
  [0.0049, 'email', 'completed'],
  [0, 'email', 'retried'],
  [0.3, 'report', 'completed'],
  [301, 'report', 'dead'],
  [2.5, 'email', 'completed'],
];

function promClient() {
  const registry = new Registry();
  const counter = new Counter({ name: 'x_total', help: 'Ended.', labelNames: ['type', 'outcome'], registers: [registry] });
  const single = new Counter({ name: 'x_started_total', help: 'Started.', labelNames: ['type'], registers: [registry] });
  const histogram = new Histogram({ name: 'x_seconds', help: 'Run time.', labelNames: ['type', 'outcome'], buckets: BUCKETS, registers: [registry] });
  for (const [v, type, outcome] of OBSERVATIONS) {
    counter.inc({ type, outcome });
    single.inc({ type });
    histogram.observe({ type, outcome }, v);
  }
  return registry;
}

function hot(registry = new Registry()) {
  const counter = registerHot(registry, new HotCounter('x_total', 'Ended.', ['type', 'outcome']));
  const single = registerHot(registry, new HotCounter('x_started_total', 'Started.', ['type']));
  const histogram = registerHot(registry, new HotHistogram('x_seconds', 'Run time.', ['type', 'outcome'], BUCKETS));
  return { registry, counter, single, histogram };
}

describe('hot metrics', () => {
  it('expose the same text as prom-client for the same observations', async () => {
    const h = hot();
    for (const [v, type, outcome] of OBSERVATIONS) {
      h.counter.inc(type, outcome);
      h.single.inc(type);
      h.histogram.observe(v, type, outcome);
    }
    const expected = await promClient().metrics();
    expect(expected).toContain('x_seconds_bucket{le="0.005",type="email",outcome="completed"} 2');
    expect(await h.registry.metrics()).toBe(expected);
  });

  it('are shared by two clients of one registry, and reset with it', async () => {
    const registry = new Registry();
    const a = hot(registry);
    const b = hot(registry);
    expect(b.counter).toBe(a.counter);
    a.counter.inc('email', 'completed');
    b.counter.inc('email', 'completed');
    expect(await registry.metrics()).toContain('x_total{type="email",outcome="completed"} 2');
    registry.resetMetrics();
    expect(await registry.metrics()).not.toContain('x_total{');
  });
});
