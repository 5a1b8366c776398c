/**
 * Stats from rollups on both stores: percentiles match a known distribution,
 * outcomes and errors are counted by type and fingerprint, the window bounds
 * what is read, and the CLI prints the same numbers.
 */
import { afterEach, describe, expect, it } from 'vitest';
import { createRebound, defineJob, PermanentError, ValidationError, type Rebound } from '../../src/index.ts';
import { latencyBucket, bucketValue, percentiles, parseWindow } from '../../src/observability/stats.ts';
import { runCli } from '../helpers/cli.ts';
import { dropStore, freshStoreUrl, storeKinds } from '../helpers/stores.ts';

const T0 = Date.UTC(2026, 10, 23, 12, 0, 0);

describe('latency buckets', () => {
  it('stand for their values within 4.5%', () => {
    for (const ms of [2, 3, 10, 47, 100, 999, 12_345, 3_600_000]) {
      const v = bucketValue(latencyBucket(ms));
      expect(Math.abs(v - ms) / ms).toBeLessThan(0.045);
    }
  });

  it('refuses a malformed window', () => {
    expect(parseWindow('5m')).toBe(5);
    expect(parseWindow('24h')).toBe(1440);
    expect(() => parseWindow('5 minutes')).toThrow(ValidationError);
    expect(() => parseWindow('0m')).toThrow(/window/);
  });

  it('gives no percentile for an empty histogram', () => {
    expect(percentiles([])).toEqual({ count: 0, p50: null, p95: null, p99: null });
  });
});

describe.each(storeKinds)('stats on %s', (kind) => {
  let url: string;
  let rebound: Rebound | undefined;
  let clock = T0;
  afterEach(async () => {
    await rebound?.close();
    rebound = undefined;
    await dropStore(url);
  });

  it('percentiles of a known distribution (1..1000 ms, spread over minutes) match within 5%', async () => {
    url = freshStoreUrl(kind);
    clock = T0;
    const r = (rebound = await createRebound({ store: url, jobs: [], now: () => clock }));
    const rec = r.visibility.stats!;
    // 1000 run latencies 1..1000 ms and 1000 pickup latencies 10..10000 ms, recorded across 10 minutes and 2 flushes.
    for (let i = 1; i <= 1000; i++) {
      clock = T0 + Math.floor((i - 1) / 100) * 60_000;
      rec.latency('report', 'run', i);
      rec.latency('report', 'pickup', i * 10);
      if (i === 500) await rec.flush();
    }
    clock = T0 + 10 * 60_000;
    const s = await r.stats({ window: '1h' });
    const near = (actual: number | null, expected: number) => {
      expect(actual).not.toBeNull();
      expect(Math.abs(actual! - expected) / expected).toBeLessThan(0.05);
    };
    const run = s.by_type.find((t) => t.type === 'report')!.run_ms;
    expect(run.count).toBe(1000);
    near(run.p50, 500);
    near(run.p95, 950);
    near(run.p99, 990);
    near(s.totals.pickup_ms.p50, 5000);
    near(s.totals.pickup_ms.p99, 9900);
    // A window that ends before the last minutes sees fewer observations: only the rollups of its minutes are read.
    clock = T0 + 4 * 60_000;
    const early = await r.stats({ window: '5m' });
    expect(early.totals.run_ms.count).toBe(500);
    near(early.totals.run_ms.p50, 250);
  });

  it('counts outcomes and errors by type and fingerprint from a real workload; the CLI prints them', async () => {
    url = freshStoreUrl(kind);
    let calls = 0;
    const r = (rebound = await createRebound({
      store: url,
      jobs: [
        defineJob('ok', { handler: async () => 1 }),
        defineJob('flaky', {
          retry: { maxAttempts: 3, baseMs: 1, jitter: 'none' },
          handler: async () => {
            if (++calls <= 2) throw new Error(`upstream returned 503 for request ${calls}`);
          },
        }),
        defineJob('bad', { handler: async () => { throw new PermanentError('invalid account 42'); } }),
      ],
    }));
    for (let i = 0; i < 5; i++) await r.enqueue('ok', { i });
    await r.enqueue('flaky', {});
    await r.enqueue('bad', {});
    await r.enqueue('bad', { again: true });
    await r.work({ pollIntervalMs: 10, drain: true }).done;
    const s = await r.stats({ window: '5m' });
    expect(s.totals).toMatchObject({ enqueued: 8, completed: 6, retried: 2, dead: 2, success_rate: 0.75 });
    expect(s.by_type.map((t) => [t.type, t.completed, t.retried, t.dead])).toEqual([
      ['bad', 0, 0, 2],
      ['flaky', 1, 2, 0],
      ['ok', 5, 0, 0],
    ]);
    expect(s.totals.run_ms.count).toBe(10);
    expect(s.throughput.reduce((n, p) => n + p.completed, 0)).toBe(6);
    // Same failure, different numbers: one fingerprint each.
    expect(s.errors.map((e) => [e.type, e.kind, e.count])).toEqual(
      expect.arrayContaining([
        ['flaky', 'transient', 2],
        ['bad', 'permanent', 2],
      ]),
    );
    expect(s.errors).toHaveLength(2);
    await r.close();
    rebound = undefined;

    const human = await runCli(['stats', '--window', '5m', '--store', url]);
    expect(human.code).toBe(0);
    expect(human.stdout).toContain('completed 6, retried 2, dead 2, success rate 75.0%');
    const bad = await runCli(['stats', '--window', 'forever', '--store', url]);
    expect(bad.code).toBe(2);
    expect(bad.stderr).toContain('window');
  });
});
