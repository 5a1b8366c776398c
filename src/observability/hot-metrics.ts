/**
 * The per-job metrics (attempts started, attempts ended, run time, pickup
 * latency), counted in plain maps and read by prom-client's registry like any
 * other metric. prom-client's own Counter and Histogram validate and hash the
 * label set on every inc() and observe(): four calls per job, about a tenth of
 * a worker's CPU in a drain of no-op jobs. Here a series is found by one
 * string key and its labels object is built once, when the series first
 * appears. The exposition (names, labels, buckets, `_sum`, `_count`) is
 * prom-client's: the registry formats what `get()` returns.
 */
import type { Registry } from 'prom-client';

type Labels = Record<string, string>;
type Value = { value: number; labels: Labels; metricName?: string; sharedLabels?: Labels };

/** A label set of one or two values, found by one string key. */
abstract class HotMetric<S> {
  readonly aggregator = 'sum';
  protected readonly series = new Map<string, S>();

  constructor(
    public name: string,
    readonly help: string,
    readonly labelNames: readonly [string] | readonly [string, string],
  ) {}

  protected at(a: string, b?: string): S {
    const key = b === undefined ? a : `${a}\u0000${b}`;
    let s = this.series.get(key);
    if (s === undefined) {
      const labels: Labels = { [this.labelNames[0]]: a };
      if (b !== undefined && this.labelNames[1]) labels[this.labelNames[1]] = b;
      s = this.create(labels);
      this.series.set(key, s);
    }
    return s;
  }

  protected abstract create(labels: Labels): S;

  reset(): void {
    this.series.clear();
  }
}

export class HotCounter extends HotMetric<{ labels: Labels; value: number }> {
  readonly type = 'counter';

  inc(a: string, b?: string): void {
    this.at(a, b).value++;
  }

  protected create(labels: Labels) {
    return { labels, value: 0 };
  }

  get() {
    const values: Value[] = [...this.series.values()].map((s) => ({ value: s.value, labels: s.labels }));
    return { name: this.name, help: this.help, type: this.type, values, aggregator: this.aggregator };
  }
}

export class HotHistogram extends HotMetric<{ labels: Labels; counts: number[]; sum: number; count: number }> {
  readonly type = 'histogram';

  constructor(
    name: string,
    help: string,
    labelNames: readonly [string] | readonly [string, string],
    readonly buckets: readonly number[],
  ) {
    super(name, help, labelNames);
  }

  observe(value: number, a: string, b?: string): void {
    const s = this.at(a, b);
    const { buckets } = this;
    for (let i = 0; i < buckets.length; i++) {
      if (value <= buckets[i]) {
        s.counts[i]++;
        break;
      }
    }
    s.sum += value;
    s.count++;
  }

  protected create(labels: Labels) {
    return { labels, counts: this.buckets.map(() => 0), sum: 0, count: 0 };
  }

  /** Cumulative buckets, then +Inf, `_sum` and `_count` per series, `le` first: prom-client's order. */
  get() {
    const values: Value[] = [];
    const bucket = `${this.name}_bucket`;
    for (const s of this.series.values()) {
      let cumulative = 0;
      this.buckets.forEach((le, i) => {
        cumulative += s.counts[i];
        values.push({ value: cumulative, labels: { le: String(le) }, sharedLabels: s.labels, metricName: bucket });
      });
      values.push({ value: s.count, labels: { le: '+Inf' }, sharedLabels: s.labels, metricName: bucket });
      values.push({ value: s.sum, labels: {}, sharedLabels: s.labels, metricName: `${this.name}_sum` });
      values.push({ value: s.count, labels: {}, sharedLabels: s.labels, metricName: `${this.name}_count` });
    }
    return { name: this.name, help: this.help, type: this.type, values, aggregator: this.aggregator };
  }
}

/** Registers `m`, or returns the metric of that name another client registered in the same registry. */
export function registerHot<M extends HotCounter | HotHistogram>(registry: Registry, m: M): M {
  const found = registry.getSingleMetric(m.name) as unknown;
  if (found instanceof m.constructor) return found as M;
  registry.registerMetric(m as never);
  return m;
}
