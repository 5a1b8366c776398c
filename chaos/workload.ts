/**
 * The chaos workload: a seeded mix of job kinds, each with the final state it
 * must reach whatever the faults, and whether it pays (one ledger row).
 */
import type { EnqueueItem } from '../src/index.ts';

export interface Expectation {
  state: 'completed' | 'dead';
  deadReason?: 'permanent' | 'exhausted' | 'poison';
  /** Exactly one ledger row when completed. */
  pays: boolean;
}

export const EXPECTED: Record<string, Expectation> = {
  'chaos.pay': { state: 'completed', pays: true },
  'chaos.slow': { state: 'completed', pays: true },
  'chaos.flaky': { state: 'completed', pays: true },
  'chaos.hang': { state: 'completed', pays: true },
  'chaos.block': { state: 'completed', pays: true },
  'chaos.permanent': { state: 'dead', deadReason: 'permanent', pays: false },
  'chaos.exhausted': { state: 'dead', deadReason: 'exhausted', pays: false },
  'chaos.poison': { state: 'dead', deadReason: 'poison', pays: false },
};

export interface WorkloadMix {
  jobs: number;
  /** Counts of the rare kinds; the rest are `chaos.pay`. */
  slow: number;
  flaky: number;
  hang: number;
  block: number;
  permanent: number;
  exhausted: number;
  poison: number;
}

export interface PlannedJob extends EnqueueItem {
  /** Enqueue-time idempotency key: an enqueue retried after a dropped connection cannot double the job. */
  key: string;
}

/** Mulberry32: a small seeded generator, so a run's workload and fault times can be replayed. */
export function rng(seed: number): () => number {
  let a = seed >>> 0;
  return () => {
    a = (a + 0x6d2b79f5) >>> 0;
    let t = a;
    t = Math.imul(t ^ (t >>> 15), t | 1);
    t ^= t + Math.imul(t ^ (t >>> 7), t | 61);
    return ((t ^ (t >>> 14)) >>> 0) / 4294967296;
  };
}

/** The jobs in enqueue order; rare kinds are spread through the run, poison ones delayed so they strike mid-run. */
export function planWorkload(mix: WorkloadMix, seed: number, spreadMs: number, runId: string): PlannedJob[] {
  const random = rng(seed);
  const kinds: string[] = [];
  const add = (type: string, n: number) => kinds.push(...Array.from({ length: n }, () => type));
  add('chaos.slow', mix.slow);
  add('chaos.flaky', mix.flaky);
  add('chaos.hang', mix.hang);
  add('chaos.block', mix.block);
  add('chaos.permanent', mix.permanent);
  add('chaos.exhausted', mix.exhausted);
  add('chaos.poison', mix.poison);
  add('chaos.pay', Math.max(0, mix.jobs - kinds.length));
  // Fisher-Yates with the seeded generator.
  for (let i = kinds.length - 1; i > 0; i--) {
    const j = Math.floor(random() * (i + 1));
    [kinds[i], kinds[j]] = [kinds[j], kinds[i]];
  }
  return kinds.map((type, i) => {
    const amount = 1 + Math.floor(random() * 10_000);
    const payload =
      type === 'chaos.pay'
        ? { amount, ms: Math.floor(random() * 20) }
        : type === 'chaos.slow'
          ? { amount, ms: 1000 + Math.floor(random() * 2500) }
          : type === 'chaos.flaky'
            ? { amount, failTimes: 1 + Math.floor(random() * 3) }
            : { amount };
    const opts = type === 'chaos.poison' ? { delayMs: Math.floor(spreadMs * (0.2 + 0.6 * random())) } : {};
    const key = `${runId}:${i}`;
    return { type, payload, key, opts: { ...opts, idempotencyKey: key } };
  });
}
