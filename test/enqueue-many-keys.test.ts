/**
 * One idempotency key in one `enqueueMany` call names one job: two items under
 * one key with different payloads refuse the whole batch before anything is stored.
 */
import { afterEach, describe, expect, it } from 'vitest';
import { createRebound, defineJob, ValidationError, type Rebound } from '../src/index.ts';
import { dropStore, freshStoreUrl, storeKinds } from './helpers/stores.ts';

const silent = { debug() {}, info() {}, warn() {}, error() {}, child: () => silent };

describe.each(storeKinds)('enqueueMany keys on %s', (kind) => {
  let url: string;
  let rebound: Rebound;
  const open = async () => {
    url = freshStoreUrl(kind);
    rebound = await createRebound({ store: url, jobs: [defineJob('t', { handler: async () => {} })], logger: silent });
  };
  afterEach(async () => {
    await rebound?.close();
    await dropStore(url);
  });

  it('two items with one key and different payloads store nothing, and the error names the second', async () => {
    await open();
    const batch = [
      { type: 't', payload: { n: 1 }, opts: { idempotencyKey: 'k' } },
      { type: 't', payload: { n: 2 } },
      { type: 't', payload: { n: 3 }, opts: { idempotencyKey: 'k' } },
    ];
    const err = await rebound.enqueueMany(batch).catch((e: unknown) => e);
    expect(err).toBeInstanceOf(ValidationError);
    expect((err as ValidationError).field).toBe('items[2].opts.idempotencyKey');
    expect((err as Error).message).toMatch(/also the key of items\[0\]/);
    expect(await rebound.countJobs()).toBe(0);
  });

  it('two items with one key and the same payload are one job', async () => {
    await open();
    const same = { type: 't', payload: { n: 1 }, opts: { idempotencyKey: 'k' } };
    const [a, b] = await rebound.enqueueMany([same, { ...same, payload: { n: 1 } }]);
    expect(b).toMatchObject({ id: a.id, deduplicated: true });
    expect(await rebound.countJobs()).toBe(1);
  });
});
