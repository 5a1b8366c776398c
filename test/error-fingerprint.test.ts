/** An error's fingerprint groups the dead letter queue: one failure, one fingerprint, however it was reached. */
import { describe, expect, it } from 'vitest';
import { fingerprint } from '../src/engine/error-info.ts';

/** One line of code that fails; what it awaited first changes only the frames below it. */
async function charge(how: 'timer' | 'microtask' | 'sync'): Promise<never> {
  if (how === 'timer') await new Promise((r) => setTimeout(r, 1));
  if (how === 'microtask') await Promise.resolve();
  throw new Error('payment service unavailable (503)');
}
const failure = (how: 'timer' | 'microtask' | 'sync') => charge(how).catch((e: Error) => e);
const of = (e: Error, type = 'payment.capture') => fingerprint(type, e.name, e.message, e.stack);

describe('error fingerprints', () => {
  it('are the throw site\'s: one throw reached or resumed in different ways is one failure', async () => {
    const errors = [await failure('timer'), await failure('microtask'), await failure('sync')];
    // The stacks below the throw differ (Node's frames, an `at async` caller, the synchronous callers)...
    expect(new Set(errors.map((e) => e.stack)).size).toBeGreaterThan(1);
    // ...and the fingerprint does not.
    expect(new Set(errors.map((e) => of(e))).size).toBe(1);
    // Node's own frames never count: a stack whose top frames are Node's is fingerprinted by the first of ours.
    const internal = new Error('payment service unavailable (503)');
    internal.stack = `Error: payment service unavailable (503)\n    at listOnTimeout (node:internal/timers:581:17)\n${errors[0].stack!.split('\n').slice(1).join('\n')}`;
    expect(of(internal)).toBe(of(errors[0]));
  });

  it('still tell failures apart by message shape, throw site and job type', async () => {
    const first = await failure('sync');
    expect(of(new Error('card declined'))).not.toBe(of(first));
    const elsewhere = (() => {
      try {
        throw new Error('payment service unavailable (503)');
      } catch (e) {
        return e as Error;
      }
    })();
    expect(of(elsewhere)).not.toBe(of(first));
    expect(of(first, 'refund')).not.toBe(of(first));
    // Numbers, ids and quoted strings vary within one failure.
    expect(of(new Error('payment service unavailable (502)'))).toBe(of(new Error('payment service unavailable (503)')));
  });
});
