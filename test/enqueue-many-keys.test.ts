/**
 * One idempotency key in one `enqueueMany` call names one job: two items under
 * one key with different payloads refuse the whole batch before anything is stored,
 * and so does an item whose key a stored job holds with another payload.
 */
import { afterEach, describe, expect, it } from 'vitest';
import pg from 'pg';
import { createRebound, defineJob, IdempotencyConflictError, ValidationError, type Rebound } from '../src/index.ts';
import { databaseUrl, dropStore, freshStoreUrl, storeKinds } from './helpers/stores.ts';

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

  it('an item whose key a stored job holds with another payload stores nothing; the error names the key and that job', async () => {
    await open();
    const held = await rebound.enqueue('t', { n: 0 }, { idempotencyKey: 'k0' });
    const submitted: number[] = [];
    rebound.events.on('jobs:submitted', (e) => submitted.push(e.jobs.length));
    const batch = [
      { type: 't', payload: { n: 1 } },
      { type: 't', payload: { n: 2 }, opts: { idempotencyKey: 'k2' } },
      { type: 't', payload: { n: 3 }, opts: { idempotencyKey: 'k3', orderingKey: 'o' } },
      { type: 't', payload: { n: 9 }, opts: { idempotencyKey: 'k0' } },
    ];
    const err = await rebound.enqueueMany(batch).catch((e: unknown) => e);
    expect(err).toBeInstanceOf(IdempotencyConflictError);
    expect(err).toMatchObject({ key: 'k0', existingJobId: held.id });
    expect(await rebound.countJobs()).toBe(1);
    expect(submitted).toEqual([]);
    // Fixed, the same batch stores what is missing and answers the held key with its job.
    batch[3].payload = { n: 0 };
    const results = await rebound.enqueueMany(batch);
    expect(results.map((r) => r.deduplicated)).toEqual([false, false, false, true]);
    expect(results[3].id).toBe(held.id);
    expect(await rebound.countJobs()).toBe(4);
  });
});

describe('enqueueMany keys in a caller\'s PostgreSQL transaction', () => {
  let url: string;
  let rebound: Rebound;
  afterEach(async () => {
    await rebound?.close();
    await dropStore(url);
  });

  it("inside a caller's transaction, a refused batch writes nothing into it", async () => {
    url = freshStoreUrl('postgres');
    rebound = await createRebound({ store: url, jobs: [defineJob('t', { handler: async () => {} })], logger: silent });
    const held = await rebound.enqueue('t', { n: 0 }, { idempotencyKey: 'k0' });
    const client = new pg.Client({ connectionString: databaseUrl() });
    await client.connect();
    try {
      await client.query('BEGIN');
      const err = await rebound
        .enqueueMany([{ type: 't', payload: { n: 1 } }, { type: 't', payload: { n: 9 }, opts: { idempotencyKey: 'k0' } }], { tx: client })
        .catch((e: unknown) => e);
      expect(err).toMatchObject({ key: 'k0', existingJobId: held.id });
      // The caller may go on and commit its own work: the refused batch left nothing in the transaction.
      await client.query('COMMIT');
    } finally {
      await client.end();
    }
    expect(await rebound.countJobs()).toBe(1);
  });
});
