/**
 * The audit trail on both stores, against the real database: submissions and
 * operator actions are recorded with their policy; altering, deleting or
 * swapping one row makes `rebound audit verify` fail (exit 1) and name it,
 * while an untouched trail verifies; reconcile accounts for every job.
 */
import Database from 'better-sqlite3';
import { mkdtempSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterEach, describe, expect, it } from 'vitest';
import { createRebound, defineJob, IdempotencyConflictError, PermanentError, type Rebound } from '../../src/index.ts';
import { batchDigest, batchLine, verifyAudit, exportCheckpoint, reconcileAudit, signCheckpoint, MAX_BUFFERED_ENTRIES } from '../../src/observability/audit.ts';
import { payloadHash } from '../../src/engine/enqueue-input.ts';
import type { PostgresStore } from '../../src/store/postgres/postgres-store.ts';
import type { SqliteStore } from '../../src/store/sqlite/sqlite-store.ts';
import { setWriteWaitMs, WRITE_WAIT_MS } from '../../src/store/sqlite/write-lock.ts';
import { runCli } from '../helpers/cli.ts';
import { dropStore, freshStoreUrl, storeKinds, waitFor } from '../helpers/stores.ts';

describe.each(storeKinds)('audit trail on %s', (kind) => {
  let url: string;
  let rebound: Rebound | undefined;
  afterEach(async () => {
    await rebound?.close();
    rebound = undefined;
    await dropStore(url);
  });

  const jobs = [
    defineJob('pay', { retry: { maxAttempts: 2, baseMs: 1, jitter: 'none' }, timeoutMs: 5000, handler: async () => 'paid' }),
    defineJob('fail', { handler: async () => { throw new PermanentError('no'); } }),
  ];

  /** Six sealed entries: five submissions and one operator action. */
  async function auditedStore() {
    url = freshStoreUrl(kind);
    const r = (rebound = await createRebound({ store: url, jobs, audit: { sealIntervalMs: 60_000 } }));
    for (let i = 0; i < 4; i++) await r.enqueue('pay', { n: i }, { idempotencyKey: `k${i}`, actor: 'alice' });
    const { id } = await r.enqueue('pay', { n: 9 }, { delayMs: 60_000 });
    await r.cancel(id, { actor: 'bob' });
    await r.visibility.audit!.flush();
    await r.visibility.audit!.seal();
    return r;
  }

  /** Runs SQL against the real database, as an attacker with write access would. */
  async function tamper(r: Rebound, sql: string[]) {
    if (kind === 'sqlite') for (const s of sql) (r.store as SqliteStore).database.exec(s);
    else for (const s of sql) await (r.store as PostgresStore).pool.query(s);
  }

  /**
   * Makes the store refuse audit writes until the returned function is called. SQLite: another connection holds
   * the write lock (the store's wait for it shortened from 10 s); PostgreSQL: a trigger refuses the inserts.
   */
  async function refuseAuditWrites(r: Rebound): Promise<() => Promise<void>> {
    if (kind === 'sqlite') {
      const own = (r.store as SqliteStore).database;
      const holder = new Database(url.replace(/^sqlite:/, ''));
      holder.exec('BEGIN IMMEDIATE');
      // A refused flush then fails after 50 ms, not after the 10 s a write waits for the lock by default.
      setWriteWaitMs(own, 50);
      return async () => {
        holder.exec('COMMIT');
        holder.close();
        setWriteWaitMs(own, WRITE_WAIT_MS);
      };
    }
    const pool = (r.store as PostgresStore).pool;
    await pool.query(`CREATE OR REPLACE FUNCTION refuse_audit() RETURNS trigger LANGUAGE plpgsql AS $$ BEGIN RAISE EXCEPTION 'injected: audit write refused'; END $$`);
    await pool.query('CREATE TRIGGER refuse_audit BEFORE INSERT ON audit_log FOR EACH ROW EXECUTE FUNCTION refuse_audit()');
    return async () => {
      await pool.query('DROP TRIGGER refuse_audit ON audit_log');
    };
  }

  it('records submissions with actor, digest and policy, and operator actions; an untouched trail verifies', async () => {
    const r = await auditedStore();
    const entries = await r.store.visibility.readAudit({ afterSeq: 0, limit: 100 });
    expect(entries.map((e) => [e.seq, e.action, e.actor])).toEqual([
      [1, 'job.submit', 'alice'],
      [2, 'job.submit', 'alice'],
      [3, 'job.submit', 'alice'],
      [4, 'job.submit', 'alice'],
      [5, 'job.submit', 'library'],
      [6, 'job.cancel', 'bob'],
    ]);
    expect(entries[0].details).toMatchObject({
      type: 'pay',
      idempotency_key: 'k0',
      payload_digest: expect.stringMatching(/^[0-9a-f]{64}$/),
      policy: { retry: { maxAttempts: 2, baseMs: 1 }, timeout_ms: 5000, retention: { key_ttl_ms: 86_400_000 } },
    });
    expect(JSON.stringify(entries)).not.toContain('"n":'); // the payload itself is not in the trail
    expect(await verifyAudit(r.store)).toMatchObject({ ok: true, count: 6, unsealed: 0 });
    const cli = await runCli(['audit', 'verify', '--store', url]);
    expect(cli.stderr).toBe('');
    expect(cli.code).toBe(0);
    expect(cli.stdout).toContain('audit trail verifies: 6 entries');
  });

  it('names an altered entry', async () => {
    const r = await auditedStore();
    await tamper(r, ["UPDATE audit_log SET actor = 'mallory' WHERE seq = 3"]);
    const cli = await runCli(['audit', 'verify', '--store', url]);
    expect(cli.code).toBe(1);
    expect(cli.stderr).toMatch(/entry seq 3 \(id \d+, job\.submit\) was altered/);
  });

  it('names a deleted entry', async () => {
    const r = await auditedStore();
    await tamper(r, ['DELETE FROM audit_log WHERE seq = 4']);
    const cli = await runCli(['audit', 'verify', '--store', url]);
    expect(cli.code).toBe(1);
    expect(cli.stderr).toContain('entry seq 4 is missing');
  });

  it('names a reordered entry when two rows swap places', async () => {
    const r = await auditedStore();
    await tamper(r, [
      'UPDATE audit_log SET seq = -1 WHERE seq = 2',
      'UPDATE audit_log SET seq = 2 WHERE seq = 3',
      'UPDATE audit_log SET seq = 3 WHERE seq = -1',
    ]);
    const cli = await runCli(['audit', 'verify', '--store', url]);
    expect(cli.code).toBe(1);
    expect(cli.stderr).toMatch(/entry seq 2 \(id \d+\) does not follow entry seq 1/);
  });

  it('catches a cut tail through the segments and through an exported checkpoint', async () => {
    const r = await auditedStore();
    const cp = await exportCheckpoint(r.store, r.now());
    expect(cp).toMatchObject({ head_seq: 6, count: 6, head_hash: expect.stringMatching(/^[0-9a-f]{64}$/) });
    // Signed with a key, a checkpoint whose head was edited no longer verifies.
    const signed = signCheckpoint(cp, 'k3y');
    expect(await verifyAudit(r.store, { checkpoint: signed, key: 'k3y' })).toMatchObject({ ok: true });
    expect((await verifyAudit(r.store, { checkpoint: { ...signed, head_seq: 5 }, key: 'k3y' })).problem?.reason).toContain('not signed');
    const file = join(mkdtempSync(join(tmpdir(), 'rebound-cp-')), 'checkpoint.json');
    writeFileSync(file, JSON.stringify(cp));
    await tamper(r, ['DELETE FROM audit_log WHERE seq = 6']);
    expect((await verifyAudit(r.store)).problem?.reason).toContain('entry seq 6 is missing');
    // An attacker who also rewrites the segment to end at seq 5 hides the cut from the chain, not from the checkpoint kept elsewhere.
    await tamper(r, ['UPDATE audit_segments SET last_seq = 5, count = 5, head_hash = (SELECT hash FROM audit_log WHERE seq = 5)']);
    expect(await verifyAudit(r.store)).toMatchObject({ ok: true, count: 5 });
    const cli = await runCli(['audit', 'verify', '--store', url, '--checkpoint', file]);
    expect(cli.code).toBe(1);
    expect(cli.stderr).toContain('the checkpoint names seq 6 but the chain ends at seq 5');
  });

  it('a checkpoint exported from an empty trail verifies, before and after entries are added', async () => {
    url = freshStoreUrl(kind);
    const r = (rebound = await createRebound({ store: url, jobs, audit: { sealIntervalMs: 60_000 } }));
    const cp = await exportCheckpoint(r.store, r.now());
    expect(cp).toMatchObject({ head_seq: 0, count: 0, head_hash: '0'.repeat(64) });
    expect(await verifyAudit(r.store, { checkpoint: cp })).toMatchObject({ ok: true, count: 0 });
    await r.enqueue('pay', { n: 1 });
    await r.visibility.audit!.flush();
    await r.visibility.audit!.seal();
    expect(await verifyAudit(r.store, { checkpoint: cp })).toMatchObject({ ok: true, count: 1 });
    expect((await verifyAudit(r.store, { checkpoint: { ...cp, head_hash: 'f'.repeat(64) } })).problem?.reason).toContain('does not match the checkpoint');
  });

  it('an untouched trail verifies while another process seals; an entry no segment covers still fails', async () => {
    const r = await auditedStore();
    // Another process of the deployment: a second client on the same store, with its own sealer.
    const other = await createRebound({ store: url, jobs, audit: { sealIntervalMs: 60_000 } });
    try {
      // The other client seals right after this verify has listed the segments, before it reads the entries.
      const real = r.store.visibility;
      let sealed = false;
      const visibility = Object.create(real, {
        listAuditSegments: {
          value: async () => {
            const list = await real.listAuditSegments();
            if (!sealed) {
              sealed = true;
              await other.enqueue('pay', { n: 20 }, { actor: 'carol' });
              await other.visibility.audit!.flush();
              await other.visibility.audit!.seal();
            }
            return list;
          },
        },
      });
      const store = Object.create(r.store, { visibility: { value: visibility } });
      // The entry sealed meanwhile is left to the next verify, like one not sealed yet.
      expect(await verifyAudit(store)).toMatchObject({ ok: true, count: 6, unsealed: 1 });
      expect(await verifyAudit(r.store)).toMatchObject({ ok: true, count: 7, unsealed: 0 });
      await tamper(r, ['DELETE FROM audit_segments WHERE last_seq = 7']);
      expect(await verifyAudit(r.store)).toMatchObject({ ok: false, problem: { seq: 7, reason: 'entries from seq 7 on are not covered by any segment' } });
    } finally {
      await other.close();
    }
  });

  it('audits a schedule\'s fired job as a submission by the schedule', async () => {
    url = freshStoreUrl(kind);
    const r = (rebound = await createRebound({ store: url, jobs, audit: { sealIntervalMs: 60_000 } }));
    r.events.emit('schedule:fired', { schedule: 'nightly', fireAt: 1_700_000_000_000, jobId: '7', term: 3 });
    await r.visibility.audit!.flush();
    await r.visibility.audit!.seal();
    const [entry] = await r.store.visibility.readAudit({ afterSeq: 0, limit: 10 });
    expect(entry).toMatchObject({ actor: 'schedule:nightly', action: 'job.submit', target: 'job:7', details: { schedule: 'nightly', fire_at: 1_700_000_000_000, term: 3 } });
  });

  it('records an enqueueMany call as one entry per actor, which verifies and reconciles', async () => {
    url = freshStoreUrl(kind);
    const r = (rebound = await createRebound({ store: url, jobs, audit: { sealIntervalMs: 60_000 } }));
    const first = await r.enqueue('pay', { n: 0 }, { idempotencyKey: 'k0' });
    const results = await r.enqueueMany([
      { type: 'pay', payload: { n: 1 } },
      { type: 'fail', payload: { n: 2 }, opts: { actor: 'carol' } },
      { type: 'pay', payload: { n: 0 }, opts: { idempotencyKey: 'k0' } },
      { type: 'pay', payload: { n: 3 } },
    ]);
    await r.visibility.audit!.flush();
    await r.visibility.audit!.seal();
    const entries = await r.store.visibility.readAudit({ afterSeq: 0, limit: 100 });
    expect(entries.map((e) => [e.action, e.actor])).toEqual([
      ['job.submit', 'library'],
      ['job.submit.batch', 'library'],
      ['job.submit.batch', 'carol'],
    ]);
    const [, mine, carols] = entries;
    const ids = results.map((x) => x.id);
    expect(mine.target).toBe(`jobs:${ids[0]}..${ids[3]}`);
    expect(mine.details).toEqual({
      count: 2,
      deduplicated: 1,
      deduplicated_ids: [first.id],
      idempotency_keys: [[first.id, 'k0']],
      ids: [ids[0], first.id, ids[3]],
      jobs_digest: expect.stringMatching(/^[0-9a-f]{64}$/),
      policies: { pay: expect.objectContaining({ retry: expect.objectContaining({ maxAttempts: 2, baseMs: 1 }), timeout_ms: 5000 }) },
    });
    expect(carols.details).toMatchObject({ count: 1, deduplicated: 0, ids: [ids[1]], policies: { fail: expect.any(Object) } });
    // The digest commits the entry to each job as stored: type, queue, payload digest and parent.
    const byId = new Map((await r.listJobs({ limit: 10 })).map((j) => [j.id, j]));
    const line = (id: string) => batchLine(byId.get(id)!, payloadHash(byId.get(id)!.type, byId.get(id)!.payload));
    expect((mine.details as { jobs_digest: string }).jobs_digest).toBe(batchDigest([ids[0], first.id, ids[3]].map(line)));
    expect(JSON.stringify(entries)).not.toContain('"n":'); // payloads stay out of the trail
    expect(await verifyAudit(r.store)).toMatchObject({ ok: true, count: 3 });
    expect(await verifyAudit(r.store, { jobs: true })).toMatchObject({ ok: true, count: 3, batches: { checked: 2, skipped: 0 } });
    expect(await reconcileAudit(r.store)).toMatchObject({ ok: true, submitted: 4, difference: 0 });
    // A job's payload changed in the jobs table: the chain still verifies, the check against the jobs names the entry.
    await tamper(r, [`UPDATE jobs SET payload = '{"n":30}' WHERE id = ${ids[3]}`]);
    expect(await verifyAudit(r.store)).toMatchObject({ ok: true });
    expect(await verifyAudit(r.store, { jobs: true })).toMatchObject({ ok: false, problem: { seq: 2, id: mine.id } });
    const cli = await runCli(['audit', 'verify', '--jobs', '--store', url]);
    expect(cli.code).toBe(1);
    expect(cli.stderr).toMatch(/entry seq 2 \(id \d+, job\.submit\.batch\) does not match the jobs it names/);
    // Altering the batch entry itself breaks the chain at that entry.
    await tamper(r, [`UPDATE audit_log SET details = replace(details, '"count":1', '"count":2') WHERE seq = 3`]);
    expect(await verifyAudit(r.store)).toMatchObject({ ok: false, problem: { seq: 3 } });
  });

  it('verify --jobs skips a batch whose job retention pruned, and names a job deleted without a recorded removal', async () => {
    url = freshStoreUrl(kind);
    const DAY = 86_400_000;
    let clock = Date.UTC(2026, 0, 10);
    const r = (rebound = await createRebound({ store: url, jobs, now: () => clock, audit: { sealIntervalMs: 60_000 } }));
    const ids = (await r.enqueueMany([1, 2, 3].map((n) => ({ type: 'pay', payload: { n }, opts: { delayMs: 60_000 } })))).map((x) => x.id);
    await r.cancel(ids[0]);
    // Eight days later retention prunes the cancelled job (kept seven days) and records it.
    clock += 8 * DAY;
    const c = r.coordination.coordinator({ leaseMs: 10_000 });
    await c.elector.runOnce();
    expect((await c.runOnce()).pruned?.jobs).toEqual({ cancelled: { pay: 1 } });
    await r.visibility.audit!.flush();
    await r.visibility.audit!.seal();
    expect(await verifyAudit(r.store, { jobs: true })).toMatchObject({ ok: true, batches: { checked: 0, skipped: 1 } });
    // A second job of the batch deleted behind the library's back, with a third's payload changed: no removal
    // accounts for it, so the entry is not skipped.
    await tamper(r, [`DELETE FROM jobs WHERE id = ${ids[1]}`, `UPDATE jobs SET payload = '{"n":30}' WHERE id = ${ids[2]}`]);
    const v = await verifyAudit(r.store, { jobs: true });
    expect(v).toMatchObject({ ok: false, problem: { seq: 1 } });
    expect(v.problem?.reason).toContain(`names job ${ids[1]}, which is not in the store and whose removal is not recorded`);
    const cli = await runCli(['audit', 'verify', '--jobs', '--store', url]);
    expect(cli.code).toBe(1);
    expect(cli.stderr).toContain(`entry seq 1 (id ${v.problem!.id}, job.submit.batch) names job ${ids[1]}`);
  });

  it('verify --jobs compares each single submission with its job: a changed payload or queue, or a deleted job, names its entry', async () => {
    url = freshStoreUrl(kind);
    const r = (rebound = await createRebound({ store: url, jobs, audit: { sealIntervalMs: 60_000 } }));
    const a = await r.enqueue('pay', { n: 1 }, { delayMs: 60_000 });
    const b = await r.enqueue('pay', { n: 2 }, { delayMs: 60_000 });
    const c = await r.enqueue('fail', { n: 3 }, { delayMs: 60_000, queue: 'slow' });
    await r.visibility.audit!.flush();
    await r.visibility.audit!.seal();
    const entries = await r.store.visibility.readAudit({ afterSeq: 0, limit: 10 });
    expect(entries.map((e) => [e.action, e.target])).toEqual([a, b, c].map((j) => ['job.submit', `job:${j.id}`]));
    expect(await verifyAudit(r.store, { jobs: true })).toMatchObject({ ok: true, count: 3, submissions: { checked: 3, skipped: 0 }, batches: { checked: 0 } });
    expect((await runCli(['audit', 'verify', '--jobs', '--store', url])).stdout).toMatch(/; 3 single submissions match their jobs, 0 bulk entries match their jobs\n$/);

    // The chain is intact; only the check against the jobs sees the change.
    await tamper(r, [`UPDATE jobs SET payload = '{"n":20}' WHERE id = ${b.id}`]);
    expect(await verifyAudit(r.store)).toMatchObject({ ok: true });
    const changed = await verifyAudit(r.store, { jobs: true });
    expect(changed).toMatchObject({ ok: false, count: 1, problem: { seq: 2, id: entries[1].id } });
    expect(changed.problem?.reason).toBe(`entry seq 2 (id ${entries[1].id}, job.submit) does not match job ${b.id}: its payload, type, queue or parent was changed`);
    const cli = await runCli(['audit', 'verify', '--jobs', '--store', url]);
    expect(cli.code).toBe(1);
    expect(cli.stderr).toContain(`entry seq 2 (id ${entries[1].id}, job.submit) does not match job ${b.id}`);

    await tamper(r, [`UPDATE jobs SET queue = 'default' WHERE id = ${c.id}`, `UPDATE jobs SET payload = '{"n":2}' WHERE id = ${b.id}`]);
    expect(await verifyAudit(r.store, { jobs: true })).toMatchObject({ ok: false, problem: { seq: 3 } });
    await tamper(r, [`UPDATE jobs SET queue = 'slow' WHERE id = ${c.id}`, `DELETE FROM jobs WHERE id = ${a.id}`]);
    const deleted = await verifyAudit(r.store, { jobs: true });
    expect(deleted).toMatchObject({ ok: false, problem: { seq: 1 } });
    expect(deleted.problem?.reason).toContain(`names job ${a.id}, which is not in the store and whose removal is not recorded`);
  });

  it('a batch entry keeps its place and is written whole when flushed at once, though its details are built after the call', async () => {
    url = freshStoreUrl(kind);
    const r = (rebound = await createRebound({ store: url, jobs, audit: { sealIntervalMs: 60_000, flushIntervalMs: 60_000 } }));
    const results = await r.enqueueMany(Array.from({ length: 1500 }, (_, n) => ({ type: 'pay', payload: { n } })));
    // Same turn of the event loop as the call's return: the details are not built yet, the flush must build them.
    r.visibility.audit!.record({ actor: 'erin', action: 'operator.note', target: 'jobs', details: null });
    await r.visibility.audit!.flush();
    await r.visibility.audit!.seal();
    const entries = await r.store.visibility.readAudit({ afterSeq: 0, limit: 10 });
    expect(entries.map((e) => e.action)).toEqual(['job.submit.batch', 'job.submit.batch', 'operator.note']);
    const ids = results.map((x) => x.id);
    expect(entries[0]).toMatchObject({ target: `jobs:${ids[0]}..${ids[999]}`, details: { count: 1000, ids: ids.slice(0, 1000) } });
    expect(entries[1]).toMatchObject({ target: `jobs:${ids[1000]}..${ids[1499]}`, details: { count: 500, ids: ids.slice(1000) } });
    expect(await verifyAudit(r.store, { jobs: true })).toMatchObject({ ok: true, count: 3, batches: { checked: 2, skipped: 0 } });
    expect(await reconcileAudit(r.store)).toMatchObject({ ok: true, submitted: 1500, difference: 0 });
  });

  it('an enqueueMany call refused for a key held with another payload stores nothing and audits nothing', async () => {
    url = freshStoreUrl(kind);
    const r = (rebound = await createRebound({ store: url, jobs, audit: { sealIntervalMs: 60_000 } }));
    await r.enqueue('pay', { n: 0 }, { idempotencyKey: 'k0' });
    const call = r.enqueueMany([
      { type: 'pay', payload: { n: 1 } },
      { type: 'pay', payload: { n: 9 }, opts: { idempotencyKey: 'k0' } },
    ]);
    await expect(call).rejects.toBeInstanceOf(IdempotencyConflictError);
    expect(await r.countJobs()).toBe(1);
    await r.visibility.audit!.flush();
    await r.visibility.audit!.seal();
    const entries = await r.store.visibility.readAudit({ afterSeq: 0, limit: 100 });
    expect(entries.map((e) => e.action)).toEqual(['job.submit']);
    expect(await reconcileAudit(r.store)).toMatchObject({ ok: true, submitted: 1, difference: 0 });
  });

  it('records single enqueues that share a group commit as one entry per actor, like an enqueueMany call', async () => {
    url = freshStoreUrl(kind);
    const r = (rebound = await createRebound({ store: url, jobs, audit: { sealIntervalMs: 60_000 } }));
    const alone = await r.enqueue('pay', { n: 0 }, { idempotencyKey: 'k0' });
    // Made in one turn of the event loop, these calls travel in one insert statement.
    const calls = [
      r.enqueue('pay', { n: 1 }),
      r.enqueue('fail', { n: 2 }, { actor: 'dave' }),
      r.enqueue('pay', { n: 0 }, { idempotencyKey: 'k0' }), // answered by the first job
      r.enqueue('pay', { n: 9 }, { idempotencyKey: 'k0' }), // a conflicting key stores nothing
      r.enqueue('pay', { n: 3 }, { actor: 'dave' }),
    ];
    const settled = await Promise.allSettled(calls);
    expect(settled[3]).toMatchObject({ status: 'rejected', reason: expect.any(IdempotencyConflictError) });
    const ids = settled.map((s) => (s.status === 'fulfilled' ? s.value.id : null));
    expect(ids[2]).toBe(alone.id);
    await r.visibility.audit!.flush();
    await r.visibility.audit!.seal();
    const entries = await r.store.visibility.readAudit({ afterSeq: 0, limit: 100 });
    expect(entries.map((e) => [e.action, e.actor])).toEqual([
      ['job.submit', 'library'],
      ['job.submit.batch', 'library'],
      ['job.submit.batch', 'dave'],
    ]);
    expect(entries[1].details).toMatchObject({
      count: 1,
      deduplicated: 1,
      deduplicated_ids: [alone.id],
      idempotency_keys: [[alone.id, 'k0']],
      ids: [ids[0], alone.id],
    });
    expect(entries[2].details).toMatchObject({ count: 2, deduplicated: 0, ids: [ids[1], ids[4]] });
    expect(await verifyAudit(r.store, { jobs: true })).toMatchObject({ ok: true, count: 3, batches: { checked: 2 } });
    expect(await reconcileAudit(r.store)).toMatchObject({ ok: true, submitted: 4, difference: 0 });
  });

  it('splits a large enqueueMany call into entries of at most 1,000 jobs', async () => {
    url = freshStoreUrl(kind);
    const r = (rebound = await createRebound({ store: url, jobs, audit: { sealIntervalMs: 60_000 } }));
    const results = await r.enqueueMany(Array.from({ length: 2001 }, (_, n) => ({ type: 'pay', payload: { n } })));
    await r.visibility.audit!.flush();
    await r.visibility.audit!.seal();
    const entries = await r.store.visibility.readAudit({ afterSeq: 0, limit: 100 });
    expect(entries.map((e) => [e.action, (e.details as { count: number }).count])).toEqual([
      ['job.submit.batch', 1000],
      ['job.submit.batch', 1000],
      ['job.submit.batch', 1],
    ]);
    const listed = entries.flatMap((e) => (e.details as { ids: string[] }).ids);
    expect(listed).toEqual(results.map((x) => x.id));
    expect(await reconcileAudit(r.store)).toMatchObject({ ok: true, submitted: 2001, difference: 0 });
  });

  it('entries the store refused are written, in order, when it takes writes again; while it refuses, the buffer is bounded and a drop is reported', async () => {
    url = freshStoreUrl(kind);
    const r = (rebound = await createRebound({ store: url, jobs, audit: { sealIntervalMs: 60_000, flushIntervalMs: 20 } }));
    const audit = r.visibility.audit!;
    const errors: string[] = [];
    r.events.on('worker:error', (e) => void (e.during.startsWith('audit') && errors.push(`${e.during}: ${(e.error as Error).message}`)));
    const note = (n: number) => audit.record({ actor: 'erin', action: 'operator.note', target: `note:${n}`, details: null });
    const { id } = await r.enqueue('pay', { n: 1 });
    await audit.flush();
    let lift = await refuseAuditWrites(r);
    note(1);
    await audit.flush();
    expect(errors[0]).toMatch(/^audit flush: (database is locked|injected: audit write refused)/);
    // While the store refuses, the buffer holds MAX_BUFFERED_ENTRIES: one more is dropped, and said so.
    const max = MAX_BUFFERED_ENTRIES;
    for (let n = 2; n <= max + 1; n++) note(n);
    await audit.flush();
    expect(errors).toContain(`audit flush: 1 audit entries dropped: the store refused writes while ${max} entries waited; reconcile counts their jobs as never submitted`);
    await lift();
    // Tried again by itself.
    await waitFor(async () => (await r.store.visibility.countUnsealedAudit()) === 1 + max);
    // Refused again, then taken by close().
    lift = await refuseAuditWrites(r);
    note(max + 2);
    await audit.flush();
    await lift();
    await r.close();
    const reader = (rebound = await createRebound({ store: url, jobs, audit: false }));
    const entries = await reader.store.visibility.readAudit({ afterSeq: 0, limit: max + 10 });
    const notes = Array.from({ length: max }, (_, i) => `note:${i + 1}`);
    expect(entries.map((e) => e.target)).toEqual([`job:${id}`, ...notes, `note:${max + 2}`]);
    expect(await verifyAudit(reader.store)).toMatchObject({ ok: true, count: max + 2, unsealed: 0 });
    expect(await reconcileAudit(reader.store)).toMatchObject({ ok: true, submitted: 1 });
  });

  it('reconciles submitted jobs with completed, dead, purged, cancelled, compensated and in-flight ones', async () => {
    url = freshStoreUrl(kind);
    const r = (rebound = await createRebound({ store: url, jobs, audit: { sealIntervalMs: 60_000 } }));
    await r.enqueue('pay', { n: 1 });
    await r.enqueue('pay', { n: 2 });
    await r.enqueue('fail', { n: 3 });
    await r.enqueue('fail', { n: 4 });
    await r.enqueue('pay', { n: 5 }, { delayMs: 60_000 });
    const { id } = await r.enqueue('pay', { n: 6 }, { delayMs: 60_000 });
    await r.cancel(id);
    await r.work({ pollIntervalMs: 10, drain: true }).done;
    const [dead] = await r.listDead({ limit: 1 });
    await r.purge({ ids: [dead.id] }, { actor: 'ops' });
    // A workflow that failed and was undone ends compensated: a final state, not one in flight.
    const saga = await r.enqueue('pay', { n: 7 }, { queue: 'sagas' });
    const [claimed] = await r.store.claimJobs({ workerId: 'w', queues: ['sagas'], types: ['pay'], limit: 1, leaseMs: 1000, now: r.now() });
    expect(claimed.id).toBe(saga.id);
    await r.store.completeJobs([{ id: claimed.id, token: claimed.leaseToken, result: null, state: 'compensated' }], r.now());
    await r.visibility.audit!.flush();
    expect(await reconcileAudit(r.store)).toMatchObject({
      ok: true,
      submitted: 7,
      accounted: { completed: 2, dead: 1, purged: 1, cancelled: 1, compensated: 1, in_flight: 1, pruned: 0 },
      difference: 0,
    });
    // A job written behind the audit trail's back is found.
    await r.store.insertJobs([{ type: 'pay', queue: 'default', payload: {}, payloadHash: 'x', priority: 0, runAt: r.now(), maxAttempts: 1, idempotencyKey: null, keyTtlMs: 0, parentId: null }], r.now());
    const cli = await runCli(['audit', 'reconcile', '--store', url, '--json']);
    expect(cli.code).toBe(1);
    expect(JSON.parse(cli.stdout)).toMatchObject({ ok: false, submitted: 7, total: 8, difference: -1 });
    expect(cli.stderr).toContain('1 job(s) exist that were never submitted');
  });
});
