/** The worker's prefetch sizing (runtime/pace.ts), on a hand-moved clock. */
import { describe, expect, it } from 'vitest';
import { Pace } from '../src/runtime/pace.ts';

function clock() {
  let t = 0;
  return { now: () => t, advance: (ms: number) => (t += ms) };
}

const start = (pace: Pace, n: number) => {
  for (let i = 0; i < n; i++) pace.jobStarted();
};

describe('Pace', () => {
  it('keeps the initial prefetch until jobs have started between two claims', () => {
    const c = clock();
    const pace = new Pace(c.now, 1000, 200);
    c.advance(15);
    pace.claimed(15, true); // the first claim returns before any job could start
    expect(pace.prefetch()).toBe(200);
  });

  it('sizes the prefetch by the pace: two claim round trips, at least 20 ms of work', () => {
    const c = clock();
    const pace = new Pace(c.now, 1000, 200);
    c.advance(10);
    start(pace, 100); // 10 jobs per ms, never starved
    pace.claimed(5, true);
    expect(pace.prefetch()).toBe(200); // 10/ms x max(20 ms, 2 x 5 ms)
    c.advance(10);
    start(pace, 100);
    pace.claimed(45, true);
    expect(pace.prefetch()).toBe(340); // latency smoothed to 5 + 0.3 x 40 = 17 ms: 10/ms x 34 ms
  });

  it('averages the rate when the worker was not starved, so one slow stretch does not empty the queue', () => {
    const c = clock();
    const pace = new Pace(c.now, 1000, 200);
    c.advance(10);
    start(pace, 100);
    pace.claimed(5, true); // 10/ms
    c.advance(10);
    start(pace, 20); // 2/ms
    pace.claimed(5, true);
    expect(pace.prefetch()).toBe(Math.ceil((10 + 0.3 * (2 - 10)) * 20)); // 7.6/ms x 20 ms
  });

  it('at least doubles the estimate per full claim while slots stand empty (slow start)', () => {
    const c = clock();
    const pace = new Pace(c.now, 1000, 200);
    c.advance(10);
    start(pace, 20);
    pace.ranDry();
    pace.claimed(5, true); // 2/ms seen, but only because no more jobs were here
    expect(pace.prefetch()).toBe(80); // 4/ms x 20 ms
    c.advance(10);
    start(pace, 20);
    pace.ranDry();
    pace.claimed(5, true);
    expect(pace.prefetch()).toBe(160); // 8/ms
    c.advance(10);
    start(pace, 20);
    pace.ranDry();
    pace.claimed(5, false); // a short claim: the queue itself ran dry, so the sample is averaged in
    expect(pace.prefetch()).toBe(Math.ceil((8 + 0.3 * (2 - 8)) * 20));
  });

  it('never prefetches more than one batch', () => {
    const c = clock();
    const pace = new Pace(c.now, 300, 200);
    c.advance(1);
    start(pace, 1000);
    pace.claimed(50, true);
    expect(pace.prefetch()).toBe(300);
  });
});
