/**
 * Retention of the visibility tables on both stores, against the real database: a pruned audit trail still
 * verifies from its anchor and still catches tampering in what is kept; an anchor moved outside a prune is
 * caught; a checkpoint whose head was pruned is reported not checked; reconcile answers as before; two pruners
 * at once prune each segment once; the leader's pass and `rebound audit prune` prune; stats go in bounded batches.
 */
import { mkdtempSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterEach, describe, expect, it } from 'vitest';
import { createRebound, defineJob, PermanentError, ValidationError, type Rebound } from '../../src/index.ts';
import { chainLinks, exportCheckpoint, reconcileAudit, verifyAudit } from '../../src/observability/audit.ts';
import { nextAnchor, pruneAudit, pruneRecord, pruneStatsRollups } from '../../src/observability/audit-retention.ts';
import type { PostgresStore } from '../../src/store/postgres/postgres-store.ts';
import type { SqliteStore } from '../../src/store/sqlite/sqlite-store.ts';
import type { AuditEntry } from '../../src/store/visibility.ts';
import { DEMO_VISIBILITY_RETENTION, pruneDemoVisibility } from '../../src/demo/scenario.ts';
import { runCli } from '../helpers/cli.ts';
import { dropStore, freshStoreUrl, storeKinds } from '../helpers/stores.ts';

const DAY = 86_400_000;
const T0 = Date.UTC(2026, 0, 1);

describe.each(storeKinds)('audit and stats retention on %s', (kind) => {
  let url: string;
  const clients: Rebound[] = [];
  let clock = T0;
  afterEach(async () => {
    for (const c of clients.splice(0)) await c.close();
    await dropStore(url);
  });

  const jobs = [
    defineJob('pay', { handler: async () => 'paid' }),
    defineJob('fail', { handler: async () => { throw new PermanentError('no'); } }),
  ];

  async function open(): Promise<Rebound> {
    // No stats recorder: the rollups each test writes are the only ones (a recorder flushes on its own timer).
    const r = await createRebound({ store: url, jobs, now: () => clock, audit: { sealIntervalMs: 60_000 }, stats: false });
    clients.push(r);
    return r;
  }

  /** `segments` sealed segments of three entries each (two submissions, one operator action), a day apart, from T0. */
  async function trail(segments: number): Promise<Rebound> {
    url = freshStoreUrl(kind);
    clock = T0;
    const r = await open();
    for (let s = 0; s < segments; s++) {
      await r.enqueue('pay', { s, n: 1 });
      const { id } = await r.enqueue('pay', { s, n: 2 }, { delayMs: 60_000 });
      await r.cancel(id, { actor: 'bob' });
      await r.visibility.audit!.flush();
      await r.visibility.audit!.seal();
      clock += DAY;
    }
    return r;
  }

  async function sql(r: Rebound, statements: string[]) {
    if (kind === 'sqlite') for (const s of statements) (r.store as SqliteStore).database.exec(s);
    else for (const s of statements) await (r.store as PostgresStore).pool.query(s);
  }

  async function all(r: Rebound): Promise<AuditEntry[]> {
    return r.store.visibility.readAudit({ afterSeq: 0, limit: 10_000 });
  }

  it('a pruned trail verifies from its anchor, goes on from it, and records the prune in the chain', async () => {
    const r = await trail(4);
    // Sealed at T0, T0+1d, T0+2d, T0+3d; now T0+4d: older than 2.5 days are the first two.
    const report = await pruneAudit(r.store.visibility, { olderThanMs: 2.5 * DAY, now: clock, batchSize: 3 });
    expect(report).toMatchObject({ entries: 6, segments: 2, batches: 2, anchor: { seq: 6 } });
    const kept = await all(r);
    expect(kept[0].seq).toBe(7);
    const prunes = kept.filter((e) => e.action === 'audit.prune');
    expect(prunes.map((e) => e.target)).toEqual(['audit:1..3', 'audit:4..6']);
    const v = await verifyAudit(r.store);
    expect(v).toMatchObject({ ok: true, count: 8, anchor: { seq: 6 }, unsealed: 0 });

    // Everything else pruned too: the sealer goes on from the anchor, not from the genesis.
    clock += 10 * DAY;
    await pruneAudit(r.store.visibility, { olderThanMs: DAY, now: clock });
    await r.enqueue('pay', { after: true });
    await r.visibility.audit!.flush();
    await r.visibility.audit!.seal();
    const after = await verifyAudit(r.store);
    expect(after.ok).toBe(true);
    expect(after.anchor!.seq).toBeGreaterThan(6);
    expect((await all(r))[0].seq).toBe(after.anchor!.seq + 1);
  });

  it('tampering with a kept entry, or a removed kept segment, is still detected after a prune', async () => {
    const r = await trail(4);
    await pruneAudit(r.store.visibility, { olderThanMs: 2.5 * DAY, now: clock });
    await sql(r, ["UPDATE audit_log SET actor = 'mallory' WHERE seq = 8"]);
    const altered = await verifyAudit(r.store);
    expect(altered.ok).toBe(false);
    expect(altered.problem).toMatchObject({ seq: 8 });
    expect(altered.problem!.reason).toMatch(/altered/);

    await sql(r, ["UPDATE audit_log SET actor = 'bob' WHERE seq = 8", 'DELETE FROM audit_log WHERE seq = 7']);
    const removed = await verifyAudit(r.store);
    expect(removed.ok).toBe(false);
    expect(removed.problem!.reason).toMatch(/seq 7 is missing/);
  });

  it('an anchor moved forward outside a prune is detected; so is one with other totals', async () => {
    const r = await trail(4);
    await pruneAudit(r.store.visibility, { olderThanMs: 2.5 * DAY, now: clock });
    const [e9] = (await all(r)).filter((e) => e.seq === 9);
    // Entries 7-9 deleted with their segment, the anchor set to entry 9: the kept chain links up from there.
    await sql(r, [
      'DELETE FROM audit_log WHERE seq <= 9',
      'DELETE FROM audit_segments WHERE last_seq <= 9',
      `UPDATE audit_anchor SET seq = 9, hash = '${e9.hash}'`,
    ]);
    const moved = await verifyAudit(r.store);
    expect(moved.ok).toBe(false);
    expect(moved.problem!.reason).toMatch(/anchor \(seq 9.*not recorded by any audit\.prune entry/);
  });

  it('with REBOUND_AUDIT_KEY, an anchor forged with its own audit.prune entry is detected; a signed prune verifies', async () => {
    const key = 'k3y';
    const r = await trail(4);
    await pruneAudit(r.store.visibility, { olderThanMs: 2.5 * DAY, now: clock, key });
    expect(await verifyAudit(r.store, { key })).toMatchObject({ ok: true, anchor: { seq: 6 } });
    const [e9] = (await all(r)).filter((e) => e.seq === 9);
    const totals = { 'job.submit': { entries: 2, count: 0 } };
    const forged = { anchor: { hash: e9.hash, seq: 9, totals }, entries: 3, from_seq: 6, sealed_before: 0, segments: 1 };
    // Kept entries 7-9 deleted, the anchor moved to 9, and an unsealed prune entry that records it appended.
    await sql(r, [
      'DELETE FROM audit_log WHERE seq <= 9',
      'DELETE FROM audit_segments WHERE last_seq <= 9',
      `UPDATE audit_anchor SET seq = 9, hash = '${e9.hash}', totals = '${JSON.stringify(totals)}'`,
      `INSERT INTO audit_log (at, actor, action, target, details) VALUES (${clock}, 'retention', 'audit.prune', 'audit:7..9', '${JSON.stringify(forged)}')`,
    ]);
    // Without the key nothing tells it from a prune; with it, the record is not signed.
    expect((await verifyAudit(r.store, { key: '' })).ok).toBe(true);
    const v = await verifyAudit(r.store, { key });
    expect(v.ok).toBe(false);
    expect(v.problem!.reason).toMatch(/anchor \(seq 9.*not signed with REBOUND_AUDIT_KEY/);
    await r.visibility.audit!.seal();
    expect((await verifyAudit(r.store, { key })).problem!.reason).toMatch(/not signed with REBOUND_AUDIT_KEY/);
  });

  it('an anchor given other totals (to move reconcile) is detected', async () => {
    const r = await trail(4);
    await pruneAudit(r.store.visibility, { olderThanMs: 2.5 * DAY, now: clock });
    await sql(r, [`UPDATE audit_anchor SET totals = '{"job.submit":{"entries":99,"count":0}}'`]);
    expect((await verifyAudit(r.store)).problem!.reason).toMatch(/not recorded by any audit\.prune entry/);
  });

  it('a verify that lists the segments just before a pruner seals its audit.prune entry passes', async () => {
    const r = await trail(3);
    const v = r.store.visibility;
    // Another process's batch has committed (the anchor and its unsealed audit.prune entry); its seal comes next.
    await v.pruneAudit({ sealedBefore: clock - 1.5 * DAY, limit: 5000, now: clock, anchor: nextAnchor, record: pruneRecord('other', 0) });
    const list = v.listAuditSegments.bind(v);
    let sealed = false;
    // The real store, with the other process's seal landing right after verify's read of the segments.
    const racing = Object.create(v, {
      listAuditSegments: {
        value: async () => {
          const segments = await list();
          if (!sealed) sealed = !!(await v.sealAudit({ limit: 5000, now: clock, chain: chainLinks }));
          return segments;
        },
      },
    });
    const v1 = await verifyAudit(Object.create(r.store, { visibility: { value: racing } }));
    expect(sealed).toBe(true);
    expect(v1).toMatchObject({ ok: true, anchor: { seq: 6 } });
  });

  it('a prune refuses segments that do not verify, and prunes nothing', async () => {
    const r = await trail(3);
    await sql(r, ["UPDATE audit_log SET target = 'job:forged' WHERE seq = 2"]);
    await expect(pruneAudit(r.store.visibility, { olderThanMs: DAY / 2, now: clock })).rejects.toThrow(/seq 2 .*altered; nothing was pruned/);
    expect(await r.store.visibility.auditAnchor()).toBeNull();
    expect((await all(r))[0].seq).toBe(1);
  });

  it("a segment whose sealed_at was backdated (to have recent entries pruned) is refused, and nothing is pruned", async () => {
    const r = await trail(3);
    // Sealed as their entries were recorded (T0 to T0+2d); made to look sealed a week before T0.
    await sql(r, [`UPDATE audit_segments SET sealed_at = ${T0 - 7 * DAY}`]);
    await expect(pruneAudit(r.store.visibility, { olderThanMs: 5 * DAY, now: clock })).rejects.toThrow(/sealed_at was backdated; nothing was pruned/);
    expect(await r.store.visibility.auditAnchor()).toBeNull();
    expect((await all(r))[0].seq).toBe(1);
  });

  it('a checkpoint whose head was pruned is reported not checked; one after the anchor is checked', async () => {
    const r = await trail(2);
    const early = await exportCheckpoint(r.store, clock);
    expect(early.head_seq).toBe(6);
    clock += DAY;
    await r.enqueue('pay', { late: true });
    await r.visibility.audit!.flush();
    await r.visibility.audit!.seal();
    clock += DAY;
    await pruneAudit(r.store.visibility, { olderThanMs: 1.5 * DAY, now: clock });
    expect((await r.store.visibility.auditAnchor())!.seq).toBe(6);

    const atAnchor = await verifyAudit(r.store, { checkpoint: early });
    expect(atAnchor).toMatchObject({ ok: true, checkpoint: { checked: true } });

    clock += 3 * DAY;
    await pruneAudit(r.store.visibility, { olderThanMs: DAY, now: clock });
    const pruned = await verifyAudit(r.store, { checkpoint: early });
    expect(pruned.ok).toBe(true);
    expect(pruned.checkpoint).toMatchObject({ checked: false, reason: expect.stringMatching(/head \(seq 6\) was pruned/) });
    if (kind === 'sqlite') {
      // The CLI warns (exit 0); --strict, for an auditor to whom an unchecked checkpoint proves nothing, fails.
      const file = join(mkdtempSync(join(tmpdir(), 'rebound-cp-')), 'early.json');
      writeFileSync(file, JSON.stringify(early));
      const [warned, strict, alone] = await Promise.all([
        runCli(['audit', 'verify', '--store', url, '--checkpoint', file]),
        runCli(['audit', 'verify', '--store', url, '--checkpoint', file, '--strict']),
        runCli(['audit', 'verify', '--store', url, '--strict']),
      ]);
      expect([warned.code, strict.code, alone.code]).toEqual([0, 1, 2]);
      expect(warned.stderr).toMatch(/warning: the checkpoint was NOT checked: the checkpoint's head \(seq 6\) was pruned/);
      expect(strict.stderr).toMatch(/^error: checkpoint_unchecked: the checkpoint was NOT checked \(--strict\): the checkpoint's head \(seq 6\) was pruned/);
      expect(alone.stderr).toMatch(/--strict applies to --checkpoint FILE/);
    }

    const late = await exportCheckpoint(r.store, clock);
    expect(await verifyAudit(r.store, { checkpoint: late })).toMatchObject({ ok: true, checkpoint: { checked: true } });
    expect((await verifyAudit(r.store, { checkpoint: { ...late, head_hash: 'f'.repeat(64) } })).ok).toBe(false);
  });

  it('reconcile and verify --jobs answer the same after a prune', async () => {
    const r = await trail(3);
    await r.enqueueMany([{ type: 'pay', payload: { bulk: 1 } }, { type: 'fail', payload: { bulk: 2 } }, { type: 'fail', payload: { bulk: 3 } }]);
    await r.work({ pollIntervalMs: 10, drain: true }).done;
    expect(await r.purge({ type: 'fail' }, { actor: 'alice' })).toBe(2);
    await r.visibility.audit!.flush();
    await r.visibility.audit!.seal();
    clock += 10 * DAY;
    const before = await reconcileAudit(r.store);
    expect(before).toMatchObject({ ok: true, submitted: 9, accounted: { purged: 2 } });
    const report = await pruneAudit(r.store.visibility, { olderThanMs: DAY, now: clock });
    expect(report.entries).toBeGreaterThan(9);
    expect(await reconcileAudit(r.store)).toEqual(before);
    expect(await verifyAudit(r.store, { jobs: true })).toMatchObject({ ok: true });
  });

  it('two pruners at once (two clients) prune each segment once, and the trail verifies', async () => {
    const r = await trail(8);
    const other = await open();
    const [a, b] = await Promise.all([
      pruneAudit(r.store.visibility, { olderThanMs: DAY / 2, now: clock, batchSize: 3, actor: 'a' }),
      pruneAudit(other.store.visibility, { olderThanMs: DAY / 2, now: clock, batchSize: 3, actor: 'b' }),
    ]);
    expect(a.segments + b.segments).toBe(8);
    expect(a.entries + b.entries).toBe(24);
    const targets = (await all(r)).filter((e) => e.action === 'audit.prune').map((e) => e.target);
    expect(new Set(targets).size).toBe(8);
    expect(await verifyAudit(r.store)).toMatchObject({ ok: true, anchor: { seq: 24 } });
  });

  it('two rebound audit prune processes at once prune each segment once, and the trail verifies', async () => {
    const r = await trail(8);
    const runs = await Promise.all([0, 1].map(() => runCli(['--json', 'audit', 'prune', '--store', url, '--older-than', '1d'])));
    for (const run of runs) expect(run.code, run.stderr).toBe(0);
    const reports = runs.map((run) => JSON.parse(run.stdout).audit as { entries: number });
    expect(reports[0].entries + reports[1].entries).toBe(24);
    const ranges = (await all(r)).filter((e) => e.action === 'audit.prune').map((e) => e.target);
    expect(ranges.length).toBe(new Set(ranges).size);
    expect(await verifyAudit(r.store)).toMatchObject({ ok: true, anchor: { seq: 24 } });
  });

  it("the leader's pass prunes the trail and the stats with its options, which are checked", async () => {
    const r = await trail(3);
    const old = Math.floor((clock - 40 * DAY) / 60_000) * 60_000;
    await r.store.visibility.addStats([
      { minute: old, type: 'pay', outcomes: { completed: 3 }, latency: [{ kind: 'run', bucket: 4, count: 3 }], errors: [] },
      { minute: clock - 60_000, type: 'pay', outcomes: { completed: 1 }, latency: [], errors: [] },
    ]);
    expect(() => r.coordination.coordinator({ auditRetentionMs: 5 })).toThrow(ValidationError);
    expect(() => r.coordination.coordinator({ auditRetentionMs: 5 })).toThrow(/auditRetentionMs.*from 60000/);
    const c = r.coordination.coordinator({ auditRetentionMs: DAY / 2 });
    await c.elector.runOnce();
    const pass = await c.runOnce();
    expect(pass.pruned).toMatchObject({ audit: { entries: 9, segments: 3 }, stats: 2 });
    const rows = await r.store.visibility.readStats({ fromMinute: 0, toMinute: clock });
    expect(rows.outcomes.map((o) => o.count)).toEqual([1]);
    expect(await verifyAudit(r.store)).toMatchObject({ ok: true, anchor: { seq: 9 } });
    expect((await all(r)).find((e) => e.action === 'audit.prune')?.actor).toBe('retention');
  });

  it("every process's stats recorder keeps rollups as long as its coordinator's statsRetentionMs", async () => {
    url = freshStoreUrl(kind);
    clock = T0 + 100 * DAY;
    const old = (days: number) => ({ minute: clock - days * DAY, type: 'pay', outcomes: { completed: days }, latency: [], errors: [] });
    const kept = async () => (await clients[0].store.visibility.readStats({ fromMinute: 0, toMinute: clock })).outcomes.map((o) => o.count).sort((a, b) => a - b);
    const recorder = async (statsRetentionMs?: number) => {
      const r = await createRebound({ store: url, jobs, now: () => clock, stats: { flushIntervalMs: 3_600_000 } });
      clients.push(r);
      if (statsRetentionMs) r.coordination.coordinator({ statsRetentionMs });
      return r;
    };
    // A leader told to keep 90 days: its process's recorder (its hourly delete at 31 days by default) keeps 60-day-old rollups too.
    // Before, every recorder deleted at its own 31 days, so `rebound worker --stats-retention 90d` kept 31.
    const r = await recorder(90 * DAY);
    await r.store.visibility.addStats([old(40), old(95)]);
    await r.visibility.stats!.flush();
    expect(await kept()).toEqual([40]);
    // Without the option, the recorder's own 31 days.
    const plain = await recorder();
    await plain.visibility.stats!.flush();
    expect(await kept()).toEqual([]);
  });

  it("the demo's prune keeps an hour of trail and a day of stats", async () => {
    const r = await trail(2);
    await r.store.visibility.addStats([{ minute: T0, type: 'pay', outcomes: { completed: 1 }, latency: [], errors: [] }]);
    clock = T0 + DAY + DEMO_VISIBILITY_RETENTION.auditMs + 60_000;
    await pruneDemoVisibility(r);
    expect((await r.store.visibility.auditAnchor())!.seq).toBe(6);
    expect((await all(r)).find((e) => e.action === 'audit.prune')?.actor).toBe('demo');
    expect((await r.store.visibility.readStats({ fromMinute: 0, toMinute: clock })).outcomes).toEqual([]);
  });

  it('stats rollups are pruned in bounded batches', async () => {
    url = freshStoreUrl(kind);
    const r = await open();
    const minutes = Array.from({ length: 25 }, (_, i) => T0 + i * 60_000);
    await r.store.visibility.addStats(minutes.map((minute) => ({ minute, type: 'pay', outcomes: { completed: 1 }, latency: [], errors: [] })));
    expect(await r.store.visibility.pruneStats(T0 + 20 * 60_000, 7)).toBe(7);
    expect(await pruneStatsRollups(r.store.visibility, { olderThanMs: 5 * 60_000, now: T0 + 25 * 60_000, batchSize: 4 })).toBe(13);
    const rows = await r.store.visibility.readStats({ fromMinute: 0, toMinute: T0 + DAY });
    expect(rows.outcomes.map((o) => o.minute).sort((x, y) => x - y)).toEqual(minutes.slice(20));
  });

  it('GET /api/audit?kind=operator reads operator actions by index, however many submissions follow them', async () => {
    const r = await trail(2);
    const recent = await r.store.visibility.readOperatorAudit({ throughSeq: 1_000, limit: 10 });
    expect(recent.map((e) => [e.seq, e.action])).toEqual([
      [6, 'job.cancel'],
      [3, 'job.cancel'],
    ]);
  });

  it('rebound audit prune prunes the trail and the stats, and refuses a bad duration naming the flag', async () => {
    const r = await trail(3);
    await r.store.visibility.addStats([{ minute: T0, type: 'pay', outcomes: { completed: 1 }, latency: [], errors: [] }]);
    // The CLI prunes at the real time: the test's segments were sealed in 2026's first days.
    const cli = await runCli(['audit', 'prune', '--store', url, '--older-than', '1d', '--stats-older-than', '14d']);
    expect(cli.stderr).toBe('');
    expect(cli.code).toBe(0);
    expect(cli.stdout).toMatch(/audit trail: 9 entries in 3 segments pruned; it now starts after seq 9/);
    expect(cli.stdout).toMatch(/stats: 1 rollup rows deleted/);
    expect((await all(r)).find((e) => e.action === 'audit.prune')?.actor).toBe('cli');
    const verify = await runCli(['audit', 'verify', '--store', url]);
    expect(verify.code).toBe(0);
    expect(verify.stdout).toMatch(/entries through seq 9 were pruned/);

    const bad = await runCli(['audit', 'prune', '--store', url, '--older-than', 'soon']);
    expect(bad.code).not.toBe(0);
    expect(bad.stderr).toMatch(/--older-than.*"soon" must be a duration/);
    const none = await runCli(['audit', 'prune', '--store', url]);
    expect(none.code).not.toBe(0);
    expect(none.stderr).toMatch(/--older-than <duration>/);
  });
});
