/** A NewJob factory for store conformance tests: valid defaults, a fixed clock, overridable fields. */
import type { NewJob } from '../../src/job.ts';

export const T0 = 1_700_000_000_000;

export function jobFactory(type: string): (over?: Partial<NewJob>) => NewJob {
  return (over = {}) => ({
    type,
    queue: 'default',
    payload: {},
    payloadHash: 'h',
    priority: 0,
    runAt: T0,
    maxAttempts: 3,
    idempotencyKey: null,
    keyTtlMs: 60_000,
    parentId: null,
    ...over,
  });
}
