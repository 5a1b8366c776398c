/** Group commit: calls made while a flush is in flight travel together in the next; keys do not wait for each other. */
import { describe, expect, it } from 'vitest';
import { Batcher, KeyedBatcher } from '../src/engine/batcher.ts';

const tick = () => new Promise((r) => setImmediate(r));

describe('Batcher', () => {
  it('calls made while a flush is in flight go together in the next, each with its own result', async () => {
    const flushes: number[][] = [];
    let release = () => {};
    const b = new Batcher<number, number>(
      async (items) => {
        flushes.push(items);
        if (flushes.length === 1) await new Promise<void>((r) => (release = r));
        return items.map((i) => i * 10);
      },
      { maxBatch: 100, maxInFlight: 1 },
    );
    const first = b.add(1);
    await tick();
    const rest = [2, 3, 4].map((i) => b.add(i));
    await tick();
    expect(flushes).toEqual([[1]]);
    release();
    expect(await Promise.all([first, ...rest])).toEqual([10, 20, 30, 40]);
    expect(flushes).toEqual([[1], [2, 3, 4]]);
  });

  it('a failed flush rejects every call in it, and the next flush goes on', async () => {
    let n = 0;
    const b = new Batcher<number, number>(
      async (items) => {
        if (n++ === 0) throw new Error('store down');
        return items;
      },
      { maxBatch: 100, maxInFlight: 1 },
    );
    const failed = [b.add(1), b.add(2)];
    await expect(Promise.all(failed)).rejects.toThrow('store down');
    await expect(failed[1]).rejects.toThrow('store down');
    expect(await b.add(3)).toBe(3);
  });
});

describe('KeyedBatcher', () => {
  it('batches per key, does not hold one key behind another, and forgets idle keys', async () => {
    const flushes: [string, string[]][] = [];
    let releaseA = () => {};
    const kb = new KeyedBatcher<string, string>(
      async (key, items) => {
        flushes.push([key, items]);
        if (key === 'a' && flushes.length === 1) await new Promise<void>((r) => (releaseA = r));
        return items.map((i) => `${key}:${i}`);
      },
      { maxBatch: 100, maxInFlight: 1 },
    );
    const a1 = kb.add('a', '1');
    await tick();
    const a23 = [kb.add('a', '2'), kb.add('a', '3')];
    // Key b flushes while a's first write is still in flight.
    expect(await kb.add('b', '1')).toBe('b:1');
    expect(kb.size).toBe(1);
    releaseA();
    expect(await Promise.all([a1, ...a23])).toEqual(['a:1', 'a:2', 'a:3']);
    expect(flushes).toEqual([
      ['a', ['1']],
      ['b', ['1']],
      ['a', ['2', '3']],
    ]);
    expect(kb.size).toBe(0);
  });
});
