/**
 * Conformance of the visibility store (audit trail, stats rollups, trace
 * context on jobs): the same guarantees on every store.
 */
import { afterEach, describe, expect, it } from 'vitest';
import { chainLinks, verifyAudit } from '../../src/observability/audit.ts';
import { openStore } from '../../src/store/open.ts';
import type { Store } from '../../src/store/store.ts';
import type { AuditRecord } from '../../src/store/visibility.ts';
import { dropStore, freshStoreUrl, storeKinds } from '../helpers/stores.ts';

const T0 = 1_700_000_040_000 - (1_700_000_040_000 % 60_000);

describe.each(storeKinds)('visibility store conformance: %s', (kind) => {
  let url: string;
  let store: Store;
  const open = async () => {
    url = freshStoreUrl(kind);
    store = await openStore(url);
    await store.migrate();
    return store;
  };
  afterEach(async () => {
    await store?.close();
    await dropStore(url);
  });

  const record = (i: number) => ({ at: T0 + i, actor: `a${i}`, action: 'job.submit', target: `job:${i}`, details: { n: i, nested: { b: 1, a: [i] } } });

  it('stores a job\'s trace context and reads it back', async () => {
    const s = await open();
    const tp = '00-0af7651916cd43dd8448eb211c80319c-b7ad6b7169203331-01';
    const [a, b] = await s.insertJobs(
      [
        { type: 't', queue: 'default', payload: {}, payloadHash: 'h', priority: 0, runAt: T0, maxAttempts: 1, idempotencyKey: null, keyTtlMs: 0, parentId: null, traceContext: tp },
        { type: 't', queue: 'default', payload: {}, payloadHash: 'h', priority: 0, runAt: T0, maxAttempts: 1, idempotencyKey: null, keyTtlMs: 0, parentId: null },
      ],
      T0,
    );
    expect(a.job.traceContext).toBe(tp);
    expect(b.job.traceContext).toBeNull();
    expect((await s.getJob(a.job.id))!.traceContext).toBe(tp);
    expect(await s.visibility.oldestDueRunAt(T0)).toBe(T0);
    expect(await s.visibility.oldestDueRunAt(T0 - 1)).toBeNull();
  });

  it('reads the oldest due and unclaimed run-at, counting a scheduled job once it is due', async () => {
    const s = await open();
    const job = { type: 't', queue: 'default', payload: {}, payloadHash: 'h', priority: 0, maxAttempts: 1, idempotencyKey: null, keyTtlMs: 0, parentId: null };
    const [delayed] = await s.insertJobs([{ ...job, runAt: T0 + 100 }], T0);
    expect(delayed.job.state).toBe('scheduled');
    expect(await s.visibility.oldestDueRunAt(T0 + 99)).toBeNull();
    expect(await s.visibility.oldestDueRunAt(T0 + 100)).toBe(T0 + 100);
    await s.insertJobs([{ ...job, runAt: T0 + 50 }], T0 + 50);
    expect(await s.visibility.oldestDueRunAt(T0 + 200)).toBe(T0 + 50);
  });

  it('seals appended entries into gapless, hash-linked segments, one sealer at a time', async () => {
    const s = await open();
    expect(await s.visibility.sealAudit({ limit: 10, now: T0, chain: chainLinks })).toBeNull();
    await s.visibility.appendAudit([record(1), record(2), record(3)]);
    expect(await s.visibility.countUnsealedAudit()).toBe(3);
    const first = await s.visibility.sealAudit({ limit: 2, now: T0, chain: chainLinks });
    expect(first).toMatchObject({ firstSeq: 1, lastSeq: 2, count: 2, prevHeadHash: '0'.repeat(64) });
    await s.visibility.appendAudit([record(4), record(5), record(6)]);
    // Concurrent sealers never give two entries the same position or leave a gap.
    const segs = await Promise.all([1, 2, 3].map(() => s.visibility.sealAudit({ limit: 1, now: T0, chain: chainLinks })));
    expect(segs.filter(Boolean)).toHaveLength(3);
    while (await s.visibility.sealAudit({ limit: 100, now: T0, chain: chainLinks }));
    const entries = await s.visibility.readAudit({ afterSeq: 0, limit: 100 });
    expect(entries.map((e) => e.seq)).toEqual([1, 2, 3, 4, 5, 6]);
    expect(entries[0].details).toEqual({ n: 1, nested: { b: 1, a: [1] } });
    for (let i = 1; i < entries.length; i++) expect(entries[i].prevHash).toBe(entries[i - 1].hash);
    const segments = await s.visibility.listAuditSegments();
    expect(segments[1].prevHeadHash).toBe(first!.headHash);
    expect(segments.at(-1)!.headHash).toBe(entries.at(-1)!.hash);
    expect(await s.visibility.countUnsealedAudit()).toBe(0);
    expect(await verifyAudit(s, { pageSize: 2 })).toMatchObject({ ok: true, count: 6 });
    expect((await s.visibility.readAudit({ afterSeq: 4, limit: 100 })).map((e) => e.seq)).toEqual([5, 6]);
    expect((await s.visibility.readAudit({ afterSeq: 1, limit: 100, throughSeq: 3 })).map((e) => e.seq)).toEqual([2, 3]);
  });

  it('appends a few entries and many entries in order, each with its details as given', async () => {
    const s = await open();
    // Stores may write a few entries differently from many (PostgreSQL: parameters, or one JSON array).
    const few = [record(1), { at: T0, actor: 'ops', action: 'dlq.purge', target: 'dlq:all', details: null }];
    const many: AuditRecord[] = Array.from({ length: 60 }, (_, i) => record(i + 10));
    many[7] = { ...many[7], details: { text: 'quote " backslash \\ newline \n ü 🎉', n: 0.1 + 0.2, big: 1e21 } };
    await s.visibility.appendAudit(few);
    await s.visibility.appendAudit(many);
    while (await s.visibility.sealAudit({ limit: 100, now: T0, chain: chainLinks }));
    const entries = await s.visibility.readAudit({ afterSeq: 0, limit: 100 });
    expect(entries.map(({ at, actor, action, target, details }) => ({ at, actor, action, target, details }))).toEqual([...few, ...many]);
    expect(await verifyAudit(s, { pageSize: 25 })).toMatchObject({ ok: true, count: 62 });
  });

  it('totals submissions and the counts of removal actions', async () => {
    const s = await open();
    await s.visibility.appendAudit([
      record(1),
      record(2),
      { at: T0, actor: 'ops', action: 'dlq.purge', target: 'dlq:all', details: { count: 3 } },
      { at: T0, actor: 'ops', action: 'dlq.purge', target: 'dlq:all', details: { count: 2 } },
      { at: T0, actor: 'x', action: 'job.submit.deduplicated', target: 'job:1', details: null },
    ]);
    expect(await s.visibility.auditTotals(['dlq.purge', 'retention.prune'])).toEqual({ submitted: 2, counted: { 'dlq.purge': 5, 'retention.prune': 0 } });
  });

  it('adds rollups to what is stored and reads only the minutes asked for', async () => {
    const s = await open();
    const bucket = (minute: number) => ({
      minute,
      type: 'email',
      outcomes: { completed: 2, dead: 1 },
      latency: [{ kind: 'run', bucket: 10, count: 2 }],
      errors: [{ fingerprint: 'fp', kind: 'permanent', name: 'Error', message: 'no <n>', count: 1 }],
    });
    await s.visibility.addStats([bucket(T0), bucket(T0 + 60_000)]);
    await s.visibility.addStats([bucket(T0)]);
    const all = await s.visibility.readStats({ fromMinute: T0, toMinute: T0 + 60_000 });
    expect(all.outcomes.filter((o) => o.minute === T0).sort((a, b) => a.outcome.localeCompare(b.outcome))).toEqual([
      { minute: T0, type: 'email', outcome: 'completed', count: 4 },
      { minute: T0, type: 'email', outcome: 'dead', count: 2 },
    ]);
    expect(all.latency).toEqual([{ type: 'email', kind: 'run', bucket: 10, count: 6 }]);
    expect(all.errors).toEqual([{ type: 'email', fingerprint: 'fp', kind: 'permanent', name: 'Error', message: 'no <n>', count: 3 }]);
    const second = await s.visibility.readStats({ fromMinute: T0 + 60_000, toMinute: T0 + 60_000, type: 'email' });
    expect(second.latency).toEqual([{ type: 'email', kind: 'run', bucket: 10, count: 2 }]);
    expect((await s.visibility.readStats({ fromMinute: T0, toMinute: T0, type: 'other' })).outcomes).toEqual([]);
    // Pruning removes whole minutes before the cut, and nothing after it.
    expect(await s.visibility.pruneStats(T0 + 60_000)).toBe(4);
    const left = await s.visibility.readStats({ fromMinute: 0, toMinute: T0 + 60_000 });
    expect(left.outcomes.map((o) => o.minute)).toEqual([T0 + 60_000, T0 + 60_000]);
    expect(left.latency).toEqual([{ type: 'email', kind: 'run', bucket: 10, count: 2 }]);
  });
});
