/**
 * The audit trail: an append-only log of governance events (job submissions
 * with the policy in force, operator actions), hash-chained so that an
 * altered, removed or reordered entry is detected.
 *
 * The model: writing an entry never touches the chain. Subscribers buffer
 * entries and append them in batches (raw rows, no hash). A sealer, one at a
 * time across processes, takes the unsealed entries in id order, gives each
 * the next chain position (seq 1, 2, 3... without gaps), its predecessor's
 * hash and its own hash = sha256(prev_hash, seq, id, at, actor, action,
 * target, details), and records the batch as a segment (first and last seq,
 * head hash, the previous segment's head). Enqueue therefore never waits on
 * the chain; an entry is protected from its sealing on (within one seal
 * interval, 1 s by default, and at close). `verify` walks the chain in seq
 * order and names the first entry that does not check out; an exported
 * checkpoint (head seq and hash) kept elsewhere also catches a rewrite of the
 * whole chain or a cut tail.
 *
 * Retention (audit-retention.ts) prunes whole segments from the start and
 * leaves an anchor, the last pruned entry's seq and hash: the walk starts from
 * it, and an `audit.prune` entry in the chain must record it.
 */
import { createHmac, hash as hashText } from 'node:crypto';
import type { JobDefinition } from '../define.ts';
import { canonicalJson, payloadHash } from '../engine/enqueue-input.ts';
import type { ReboundEmitter, ReboundEvents } from '../events.ts';
import { FINAL_STATES, type Json } from '../job.ts';
import type { Store } from '../store/store.ts';
import type { AuditAnchor, AuditEntry, AuditRecord, ChainHead } from '../store/visibility.ts';
import { on, onLoose, str, type Unsubscribe } from './subscribe.ts';
import { BATCH_ENTRY_JOBS, BATCH_SUBMIT, batchDigest, batchLine, checkBatch, checkSubmissions, isCheckedSubmission, type GoneJobs } from './audit-jobs.ts';

export { BATCH_ENTRY_JOBS, BATCH_SUBMIT, batchDigest, batchLine };

export const GENESIS_HASH = '0'.repeat(64);

/** A prune of the trail's start (audit-retention.ts): its details hold the anchor it left. */
export const AUDIT_PRUNE = 'audit.prune';

/** Whether `e` is the prune entry that left `anchor` (same seq, hash and pruned totals). */
export function recordsAnchor(e: Pick<AuditEntry, 'action' | 'details'>, anchor: AuditAnchor): boolean {
  if (e.action !== AUDIT_PRUNE) return false;
  const a = (e.details as { anchor?: { seq?: unknown; hash?: unknown; totals?: unknown } } | null)?.anchor;
  return a?.seq === anchor.seq && a.hash === anchor.hash && canonicalJson((a.totals ?? null) as Json) === canonicalJson(anchor.totals as Json);
}

/**
 * An anchor's HMAC-SHA256 with REBOUND_AUDIT_KEY (seq, hash and pruned totals), which the pruner writes into its
 * `audit.prune` entry. Without the key, someone who can write the database can delete the trail's start and forge
 * the anchor and the entry recording it; with it, `verify` given the key refuses an anchor no key holder recorded.
 */
export function anchorSignature(a: Pick<AuditAnchor, 'seq' | 'hash' | 'totals'>, key: string): string {
  return createHmac('sha256', key).update(`anchor:${a.seq}:${a.hash}:${canonicalJson(a.totals as Json)}`).digest('hex');
}

/** Whether `e` records `anchor` (recordsAnchor) with the signature `key` gives it. */
function signsAnchor(e: Pick<AuditEntry, 'details'>, anchor: AuditAnchor, key: string): boolean {
  return (e.details as { anchor?: { signature?: unknown } } | null)?.anchor?.signature === anchorSignature(anchor, key);
}

export function entryHash(prevHash: string, e: Pick<AuditEntry, 'id' | 'at' | 'actor' | 'action' | 'target' | 'details'>, seq: number): string {
  const body = canonicalJson([seq, e.id, e.at, e.actor, e.action, e.target, e.details ?? null] as Json);
  return hashText('sha256', `${prevHash}\n${body}`);
}

/** The chain links for `entries` (in id order) after `head`. */
export function chainLinks(head: ChainHead | null, entries: AuditEntry[]) {
  let seq = head?.seq ?? 0;
  let prev = head?.hash ?? GENESIS_HASH;
  return entries.map((e) => {
    seq += 1;
    const hash = entryHash(prev, e, seq);
    const link = { seq, prevHash: prev, hash };
    prev = hash;
    return link;
  });
}

export interface AuditOptions {
  /** How often the sealer chains new entries (default 1000 ms). */
  sealIntervalMs?: number;
  /** How often buffered entries are written (default 200 ms). */
  flushIntervalMs?: number;
}

/** While the store refuses writes, at most this many entries wait for the next try; newer ones are dropped, loudly. */
export const MAX_BUFFERED_ENTRIES = 10_000;

export interface AuditDeps {
  events: ReboundEmitter;
  store: Store;
  now: () => number;
  definitions: () => ReadonlyMap<string, JobDefinition>;
}

export class AuditTrail {
  private buffer: AuditRecord[] = [];
  /** Batch entries in the buffer whose details are not built yet, with their jobs (recordBatch). */
  private unbuilt: { entry: AuditRecord; jobs: ReboundEvents['jobs:submitted']['jobs'] }[] = [];
  private building: NodeJS.Immediate | null = null;
  private readonly off: Unsubscribe[];
  private flushTimer: NodeJS.Timeout | null = null;
  private sealTimer: NodeJS.Timeout | null = null;
  private flushing: Promise<void> = Promise.resolve();
  /** A write is chained behind `flushing` and has not taken the buffer yet. */
  private writeQueued = false;
  /** Writes refused in a row; the next try waits longer. */
  private failures = 0;
  /** Entries dropped since the last report (the buffer was full while the store refused writes). */
  private dropped = 0;
  private sealing: Promise<unknown> = Promise.resolve();
  private readonly policies = new WeakMap<JobDefinition, Json>();
  private readonly flushIntervalMs: number;
  private closed = false;

  constructor(
    private readonly deps: AuditDeps,
    opts: AuditOptions = {},
  ) {
    this.flushIntervalMs = opts.flushIntervalMs ?? 200;
    const sealIntervalMs = opts.sealIntervalMs ?? 1000;
    this.off = [
      on(deps.events, 'job:enqueued', (e) => {
        if (e.batched) return; // recorded with its call's `jobs:submitted`
        const j = e.job;
        this.record({
          actor: e.actor ?? 'library',
          action: e.deduplicated ? 'job.submit.deduplicated' : 'job.submit',
          target: `job:${j.id}`,
          // Keys in sorted order, so the chain's canonical JSON of the entry is a plain JSON.stringify.
          details: {
            idempotency_key: j.idempotencyKey,
            parent_id: j.parentId,
            payload_digest: e.payloadHash ?? payloadHash(j.type, j.payload),
            policy: this.policyOf(j.type),
            queue: j.queue,
            type: j.type,
          },
        });
      }),
      on(deps.events, 'jobs:submitted', (e) => this.recordBatch(e.actor ?? 'library', e.jobs)),
      on(deps.events, 'operator:action', (e) =>
        this.record({ actor: e.actor, action: e.action, target: e.target, details: (e.details ?? null) as Json }),
      ),
      // A schedule's job is inserted by the coordinator, not through enqueue: it is a submission too.
      onLoose(deps.events, 'schedule:fired', (e) =>
        this.record({
          actor: `schedule:${str(e.schedule)}`,
          action: 'job.submit',
          target: `job:${str(e.jobId)}`,
          details: { schedule: str(e.schedule), fire_at: typeof e.fireAt === 'number' ? e.fireAt : null, term: typeof e.term === 'number' ? e.term : null },
        }),
      ),
      onLoose(deps.events, 'retention:pruned', (e) => {
        const counts = (e.counts && typeof e.counts === 'object' ? e.counts : {}) as Record<string, number>;
        const count = Object.values(counts).reduce((n, c) => n + (typeof c === 'number' ? c : 0), 0);
        if (count > 0) this.record({ actor: 'retention', action: 'retention.prune', target: `jobs:${str(e.state)}`, details: { state: str(e.state), counts, count } });
      }),
    ];
    this.sealTimer = setInterval(() => void this.seal().catch((error) => this.report(error, 'audit seal')), sealIntervalMs);
    this.sealTimer.unref();
  }

  private policyOf(type: string): Json {
    const def = this.deps.definitions().get(type);
    if (!def) return null;
    let p = this.policies.get(def);
    if (p === undefined) {
      const extra = def as unknown as { breaker?: unknown; retention?: unknown };
      // Through JSON (functions drop out), then with sorted keys, like the rest of an entry's details.
      const plain = JSON.parse(
        JSON.stringify({
          retry: def.retry,
          timeout_ms: def.timeoutMs,
          lease_ms: def.leaseMs,
          max_crashes: def.maxCrashes,
          breaker: extra.breaker ?? null,
          retention: { key_ttl_ms: def.keyTtlMs, ...(extra.retention && typeof extra.retention === 'object' ? extra.retention : {}) },
          redact: def.redact ?? [],
        }),
      ) as Json;
      p = JSON.parse(canonicalJson(plain)) as Json;
      this.policies.set(def, p);
    }
    return p;
  }

  /**
   * One `enqueueMany` call's jobs (of one actor) as one entry per 1,000 jobs, `job.submit.batch`: `count` new jobs
   * and `deduplicated` answered by an existing job, their `ids` in call order (`deduplicated_ids` among them), the
   * `idempotency_keys` given ([id, key] pairs), the policy of each type once, and `jobs_digest`, which commits the
   * entry to each job's type, queue, payload digest and parent (batchLine). The entry stays small and cheap to seal
   * whatever the batch size; `verifyAudit(store, { jobs: true })` recomputes each digest from the stored jobs.
   *
   * The entry takes its place in the buffer at once; its details (a line and a digest per job) are built on the
   * next turn of the event loop, or at the flush if that comes first, so the enqueue that submitted the jobs
   * returns without waiting for them (a tenth of a 1,000-job call).
   */
  private recordBatch(actor: string, list: ReboundEvents['jobs:submitted']['jobs']): void {
    if (list.length === 0) return;
    for (let i = 0; i < list.length; i += BATCH_ENTRY_JOBS) {
      const part = list.length > BATCH_ENTRY_JOBS ? list.slice(i, i + BATCH_ENTRY_JOBS) : list;
      const entry: AuditRecord = {
        at: this.deps.now(),
        actor,
        action: BATCH_SUBMIT,
        target: `jobs:${part[0].job.id}..${part[part.length - 1].job.id}`,
        details: null,
      };
      this.unbuilt.push({ entry, jobs: part });
      this.push(entry);
    }
    this.building ??= setImmediate(() => this.buildDetails());
  }

  /** Fills in the details of the batch entries recorded since the last call. */
  private buildDetails(): void {
    if (this.building) clearImmediate(this.building);
    this.building = null;
    for (const { entry, jobs } of this.unbuilt.splice(0)) {
      try {
        entry.details = this.batchDetails(jobs);
      } catch (error) {
        // Off the enqueue's path, a throw here would end the process: keep the entry, say what is missing.
        entry.details = { count: jobs.length, error: `details not built: ${(error as Error)?.message ?? String(error)}` };
        this.report(error, 'audit entry');
      }
    }
  }

  private batchDetails(list: ReboundEvents['jobs:submitted']['jobs']): Json {
    const policies: Record<string, Json> = {};
    const ids: string[] = [];
    const deduplicatedIds: string[] = [];
    const keys: [string, string][] = [];
    const lines: string[] = [];
    for (const { job: j, deduplicated, payloadHash: hash } of list) {
      if (!(j.type in policies)) policies[j.type] = this.policyOf(j.type);
      ids.push(j.id);
      if (deduplicated) deduplicatedIds.push(j.id);
      if (j.idempotencyKey != null) keys.push([j.id, j.idempotencyKey]);
      lines.push(batchLine(j, hash || payloadHash(j.type, j.payload)));
    }
    const sortedPolicies = Object.fromEntries(Object.keys(policies).sort().map((t) => [t, policies[t]]));
    // Keys in sorted order, so the chain's canonical JSON of the entry is a plain JSON.stringify.
    return {
      count: list.length - deduplicatedIds.length,
      deduplicated: deduplicatedIds.length,
      deduplicated_ids: deduplicatedIds,
      idempotency_keys: keys,
      ids,
      jobs_digest: batchDigest(lines),
      policies: sortedPolicies,
    };
  }

  /** Buffers one entry; it is written within one flush interval. */
  record(r: Omit<AuditRecord, 'at'> & { at?: number }): void {
    this.push({ at: r.at ?? this.deps.now(), actor: r.actor, action: r.action, target: r.target, details: r.details });
  }

  private push(entry: AuditRecord): void {
    // Bounded only while writes fail: a dead store must not grow memory forever, a burst on a live one loses nothing.
    if (this.failures > 0 && this.buffer.length >= MAX_BUFFERED_ENTRIES) {
      this.dropped++;
      return;
    }
    this.buffer.push(entry);
    // While the store refuses writes, the retry timer paces the tries, not every 1,000th entry.
    if (this.buffer.length >= 1000 && this.failures === 0) void this.flush();
    else this.flushIn(this.flushIntervalMs);
  }

  private flushIn(ms: number): void {
    if (this.flushTimer || this.closed) return;
    this.flushTimer = setTimeout(() => void this.flush(), ms);
    this.flushTimer.unref();
  }

  /** Writes buffered entries, including those a refused write put back. */
  flush(): Promise<void> {
    this.buildDetails();
    if (this.flushTimer) clearTimeout(this.flushTimer);
    this.flushTimer = null;
    if (this.buffer.length === 0 || this.writeQueued) return this.flushing;
    this.writeQueued = true;
    this.flushing = this.flushing.then(() => this.write());
    return this.flushing;
  }

  /** Takes the buffer when its turn comes, so entries are written in the order they were recorded, retries included. */
  private async write(): Promise<void> {
    this.writeQueued = false;
    this.buildDetails();
    const batch = this.buffer;
    this.buffer = [];
    if (batch.length === 0) return;
    try {
      await this.deps.store.visibility.appendAudit(batch);
      this.failures = 0;
    } catch (error) {
      this.failures++;
      // Back at the front, ahead of what was recorded during the try; beyond the bound the newest go.
      this.buffer = batch.concat(this.buffer);
      if (this.buffer.length > MAX_BUFFERED_ENTRIES) this.dropped += this.buffer.splice(MAX_BUFFERED_ENTRIES).length;
      this.report(error, 'audit flush');
      if (this.flushTimer) clearTimeout(this.flushTimer);
      this.flushTimer = null;
      this.flushIn(Math.min(this.flushIntervalMs * 2 ** this.failures, 30_000));
    }
    if (this.dropped > 0) {
      const n = this.dropped;
      this.dropped = 0;
      this.report(new Error(`${n} audit entries dropped: the store refused writes while ${MAX_BUFFERED_ENTRIES} entries waited; reconcile counts their jobs as never submitted`), 'audit flush');
    }
  }

  /** Chains every unsealed entry (in segments of at most `batch`). Returns how many were sealed. */
  seal(batch = 5000): Promise<number> {
    const run = this.sealing.then(async () => {
      let sealed = 0;
      for (;;) {
        const seg = await this.deps.store.visibility.sealAudit({ limit: batch, now: this.deps.now(), chain: chainLinks });
        if (!seg) return sealed;
        sealed += seg.count;
      }
    });
    this.sealing = run.catch(() => 0);
    return run;
  }

  private report(error: unknown, during: string) {
    this.deps.events.emit('worker:error', { workerId: '-', error, during });
  }

  /** Writes what is buffered and seals it. */
  async close(): Promise<void> {
    if (this.closed) return;
    this.closed = true;
    for (const off of this.off) off();
    if (this.sealTimer) clearInterval(this.sealTimer);
    await this.flush();
    if (this.flushTimer) clearTimeout(this.flushTimer);
    this.flushTimer = null;
    if (this.buffer.length > 0) {
      this.report(new Error(`${this.buffer.length} audit entries lost: the store refused them at close`), 'audit flush');
    }
    await this.seal().catch((error) => this.report(error, 'audit seal'));
  }
}

export interface AuditProblem {
  seq: number;
  id: string | null;
  reason: string;
}

export interface VerifyResult {
  ok: boolean;
  /** Sealed entries checked (those kept: pruned ones are not counted). */
  count: number;
  /** Where the kept trail starts when its beginning was pruned: the last pruned entry, which the walk started from. */
  anchor?: { seq: number; hash: string; prunedAt: number };
  /**
   * With a checkpoint: whether it was checked. A checkpoint whose head was pruned cannot be compared with entries
   * that are gone: it is reported not checked (ok may still be true, for the kept chain), never as matched.
   */
  checkpoint?: { checked: true } | { checked: false; reason: string };
  /** With `jobs: true`: batch entries whose jobs_digest was recomputed from the stored jobs, and those skipped (jobs pruned). */
  batches?: { checked: number; skipped: number };
  /** With `jobs: true`: single submissions (`job.submit`) compared with their stored job, and those skipped (job pruned). */
  submissions?: { checked: number; skipped: number };
  head: ChainHead | null;
  /** Entries not checked: not sealed yet, or sealed by another process while the verify ran (the next one checks them). */
  unsealed: number;
  problem?: AuditProblem;
}

export interface Checkpoint {
  head_seq: number;
  head_hash: string;
  count: number;
  exported_at: string;
  /** HMAC-SHA256 of `head_seq:head_hash:count` with REBOUND_AUDIT_KEY, when that key is set. */
  signature?: string;
}

export interface VerifyOptions {
  checkpoint?: Checkpoint;
  pageSize?: number;
  /** Default REBOUND_AUDIT_KEY. */
  key?: string;
  /** Also check each submission's entry against its stored jobs (a read of every job the trail names). */
  jobs?: boolean;
}

/** Verifies again, up to this many times in all, when a prune moved the anchor during the walk. */
const VERIFY_TRIES = 3;

/**
 * Walks the sealed chain in order from the anchor (the genesis while nothing was pruned); the first entry that
 * does not check out is named. A prune in another process can delete entries the walk was about to read: a
 * failure found while the anchor moved is walked again from the new anchor.
 */
export async function verifyAudit(store: Store, opts: VerifyOptions = {}): Promise<VerifyResult> {
  for (let i = 1; ; i++) {
    const anchor = await store.visibility.auditAnchor();
    const result = await verifyFrom(store, anchor, opts);
    if (result.ok || i >= VERIFY_TRIES || (await store.visibility.auditAnchor())?.seq === anchor?.seq) return result;
  }
}

async function verifyFrom(store: Store, anchor: AuditAnchor | null, opts: VerifyOptions): Promise<VerifyResult> {
  const v = store.visibility;
  const pageSize = opts.pageSize ?? 5000;
  const base = anchor?.seq ?? 0;
  let expectedSeq = base + 1;
  let prev = anchor?.hash ?? GENESIS_HASH;
  let head: ChainHead | null = anchor ? { seq: anchor.seq, hash: anchor.hash } : null;
  // The anchor's position (0, the genesis, while nothing was pruned: the head of a checkpoint exported from an empty trail).
  const hashAt = new Map<number, string>([[base, prev]]);
  const anchorInfo = anchor ? { anchor: { seq: anchor.seq, hash: anchor.hash, prunedAt: anchor.prunedAt } } : {};
  let anchorRecorded = !anchor;
  const key = opts.key ?? process.env.REBOUND_AUDIT_KEY;
  // With a key, only a signed record counts: an unsigned one is what anyone who can write the database can add.
  const records = (e: AuditEntry) => recordsAnchor(e, anchor!) && (!key || signsAnchor(e, anchor!, key));
  const batches = opts.jobs ? { checked: 0, skipped: 0 } : undefined;
  const submissions = opts.jobs ? { checked: 0, skipped: 0 } : undefined;
  const gone: GoneJobs | undefined = opts.jobs ? { ids: new Set<string>(), removed: await removedJobs(store).then((r) => r.purged + r.pruned) } : undefined;
  // The prune entry recording the anchor may still be unsealed. Read before the segments are listed: sealed after
  // this read, it is sealed before the list (its segment is then listed, and the walk reads it); sealed after the
  // list, it is still found here. Read after the walk, one sealed in between was in neither.
  const unsealedPrunes = anchor ? await v.readUnsealedAudit({ action: AUDIT_PRUNE, limit: 1000 }) : [];
  const segments = await v.listAuditSegments();
  // The walk stops at the last listed segment: another process may seal more meanwhile, and those entries'
  // segments are not in this list. What lies past it is looked at after the walk.
  const through = segments.reduce((n, s) => Math.max(n, s.lastSeq), 0);
  const wanted = new Set(segments.map((s) => s.lastSeq));
  if (opts.checkpoint) wanted.add(opts.checkpoint.head_seq);
  const fail = async (problem: AuditProblem): Promise<VerifyResult> => ({
    ok: false,
    count: expectedSeq - 1 - base,
    ...anchorInfo,
    head,
    unsealed: await v.countUnsealedAudit(),
    problem,
  });
  for (;;) {
    const page = await v.readAudit({ afterSeq: expectedSeq - 1, limit: pageSize, throughSeq: through });
    if (page.length === 0) break;
    const singles: AuditEntry[] = [];
    for (const e of page) {
      const seq = e.seq!;
      if (seq !== expectedSeq) {
        return fail({ seq: expectedSeq, id: null, reason: `entry seq ${expectedSeq} is missing (the chain jumps from ${expectedSeq - 1} to ${seq})` });
      }
      if (e.prevHash !== prev && seq === base + 1 && anchor) {
        return fail({ seq, id: e.id, reason: `entry seq ${seq} (id ${e.id}) does not follow the anchor (the last pruned entry, seq ${base}): the anchor or the entry was altered` });
      }
      if (e.prevHash !== prev) {
        return fail({ seq, id: e.id, reason: `entry seq ${seq} (id ${e.id}) does not follow entry seq ${seq - 1}: it was reordered, or one before it was removed or altered` });
      }
      if (entryHash(prev, e, seq) !== e.hash) {
        return fail({ seq, id: e.id, reason: `entry seq ${seq} (id ${e.id}, ${e.action}) was altered: its content does not match its hash` });
      }
      if (batches && gone && e.action === BATCH_SUBMIT && (e.details as { jobs_digest?: unknown } | null)?.jobs_digest) {
        const problem = await checkBatch(store, e, gone);
        if (problem && problem !== 'skipped') return { ...(await fail(problem)), batches, submissions };
        batches[problem ? 'skipped' : 'checked']++;
      }
      if (submissions && isCheckedSubmission(e)) singles.push(e);
      if (anchor && !anchorRecorded) anchorRecorded = records(e);
      prev = e.hash!;
      head = { seq, hash: prev };
      if (wanted.has(seq)) hashAt.set(seq, prev);
      expectedSeq++;
    }
    // A page's single submissions are read in one query, after its chain checked out.
    if (submissions && gone && singles.length > 0) {
      const { problem, checked, skipped } = await checkSubmissions(store, singles, gone);
      submissions.checked += checked;
      submissions.skipped += skipped;
      if (problem) return { ...(await fail(problem)), count: problem.seq - 1 - base, batches, submissions };
    }
  }
  const last = expectedSeq - 1;
  let segSeq = base;
  for (const s of segments) {
    if (s.firstSeq !== segSeq + 1) {
      return fail({ seq: segSeq + 1, id: null, reason: `audit segment ${s.id} starts at seq ${s.firstSeq}, expected ${segSeq + 1}: a segment was removed` });
    }
    if (s.lastSeq > last) {
      return fail({ seq: last + 1, id: null, reason: `entry seq ${last + 1} is missing: segment ${s.id} covers entries up to seq ${s.lastSeq}` });
    }
    if (hashAt.get(s.lastSeq) !== s.headHash) {
      return fail({ seq: s.lastSeq, id: null, reason: `segment ${s.id} head (seq ${s.lastSeq}) does not match the chain: entries were rewritten` });
    }
    segSeq = s.lastSeq;
  }
  // Entries sealed past the walk are left to the next verify, like the unsealed tail, when a segment covers them:
  // sealed since the list was read (an entry and its segment are written in one transaction, so a list read
  // after the entry has it). None does when a segment row was deleted.
  let sealedSince = 0;
  const [past] = await v.readAudit({ afterSeq: last, limit: 1 });
  if (past) {
    const relisted = await v.listAuditSegments();
    if (!relisted.some((s) => s.firstSeq <= past.seq! && past.seq! <= s.lastSeq)) {
      return fail({ seq: past.seq!, id: past.id, reason: `entries from seq ${past.seq} on are not covered by any segment` });
    }
    sealedSince = relisted.reduce((n, s) => Math.max(n, s.lastSeq), 0) - last;
  }
  // An anchor moved forward (entries deleted, the anchor row set to a later entry's seq and hash) or given other
  // totals has no prune entry recording it: each prune appends one in its own transaction, after the anchor.
  // Not yet sealed when the walk began, it is among the unsealed entries read then (the pruner seals right after).
  if (anchor && !anchorRecorded) {
    anchorRecorded = unsealedPrunes.some(records);
    if (!anchorRecorded) {
      const unsigned = key ? `, or only by entries not signed with REBOUND_AUDIT_KEY (forged, or pruned by a process without the key: set it wherever the trail is pruned)` : '';
      return fail({
        seq: base,
        id: null,
        reason: `the anchor (seq ${base}, where the kept trail starts) is not recorded by any ${AUDIT_PRUNE} entry${unsigned}: it was moved or its totals changed outside a prune`,
      });
    }
  }
  const cp = opts.checkpoint;
  let checkpoint: VerifyResult['checkpoint'];
  if (cp) {
    if (key && signCheckpoint(cp, key).signature !== cp.signature) {
      return fail({ seq: cp.head_seq, id: null, reason: 'the checkpoint is not signed with REBOUND_AUDIT_KEY: it was altered or forged' });
    }
    if (cp.head_seq > last) {
      return fail({ seq: last + 1, id: null, reason: `the checkpoint names seq ${cp.head_seq} but the chain ends at seq ${last}: entries were removed` });
    }
    if (cp.head_seq < base) {
      checkpoint = {
        checked: false,
        reason: `the checkpoint's head (seq ${cp.head_seq}) was pruned: the kept trail starts after seq ${base}; export checkpoints more often than the retention`,
      };
    } else if (hashAt.get(cp.head_seq) !== cp.head_hash) {
      return fail({ seq: cp.head_seq, id: null, reason: `entry seq ${cp.head_seq} does not match the checkpoint's head hash: the chain was rewritten` });
    } else checkpoint = { checked: true };
  }
  return {
    ok: true,
    count: last - base,
    ...anchorInfo,
    ...(checkpoint && { checkpoint }),
    head,
    unsealed: sealedSince + (await v.countUnsealedAudit()),
    ...(batches && { batches, submissions }),
  };
}

export function signCheckpoint(c: Checkpoint, key = process.env.REBOUND_AUDIT_KEY): Checkpoint {
  const { signature: _old, ...unsigned } = c;
  if (!key) return unsigned;
  const signature = createHmac('sha256', key).update(`${c.head_seq}:${c.head_hash}:${c.count}`).digest('hex');
  return { ...unsigned, signature };
}

/** The head of the sealed chain and its length, to keep elsewhere and pass back to `verify`. */
export async function exportCheckpoint(store: Store, now: number): Promise<Checkpoint> {
  const result = await verifyAudit(store);
  if (!result.ok) throw new AuditTamperedError(result.problem!);
  return signCheckpoint({
    head_seq: result.head?.seq ?? 0,
    head_hash: result.head?.hash ?? GENESIS_HASH,
    // The chain's length since the genesis, pruned entries included (as before any prune: seq has no gaps).
    count: result.head?.seq ?? 0,
    exported_at: new Date(now).toISOString(),
  });
}

export class AuditTamperedError extends Error {
  constructor(readonly problem: AuditProblem) {
    super(`audit trail does not verify: ${problem.reason}`);
    this.name = 'AuditTamperedError';
  }
}

/** Audit actions whose `details.count` says how many jobs left the store without finishing there. */
export const REMOVAL_ACTIONS = { purged: ['dlq.purge'], pruned: ['retention.prune'] };

export interface Reconciliation {
  ok: boolean;
  submitted: number;
  accounted: {
    completed: number;
    dead: number;
    cancelled: number;
    /** Workflows that failed for good and were undone (a final state). */
    compensated: number;
    purged: number;
    pruned: number;
    in_flight: number;
  };
  total: number;
  /** submitted - total: positive when submitted jobs are unaccounted for, negative when jobs exist that were never audited. */
  difference: number;
}

/** Jobs that left the store without finishing there: dead-letter purges (from the trail), retention prunes (the coordination store's running counts when there is one, else the trail). */
async function removedJobs(store: Store): Promise<{ purged: number; pruned: number }> {
  const totals = await store.visibility.auditTotals([...REMOVAL_ACTIONS.purged, ...REMOVAL_ACTIONS.pruned]);
  const sum = (actions: string[]) => actions.reduce((n, a) => n + (totals.counted[a] ?? 0), 0);
  const prunedCounts = (store as { coordination?: { prunedCounts?: () => Promise<{ count: number }[]> } }).coordination?.prunedCounts;
  const pruned = prunedCounts
    ? (await prunedCounts.call((store as { coordination: unknown }).coordination)).reduce((n, c) => n + c.count, 0)
    : sum(REMOVAL_ACTIONS.pruned);
  return { purged: sum(REMOVAL_ACTIONS.purged), pruned };
}

/**
 * Checks that every audited submission is accounted for by a job state or a
 * removal: dead-letter purges (from the trail), retention prunes (the
 * coordination store's running counts when there is one, else the trail).
 */
export async function reconcileAudit(store: Store): Promise<Reconciliation> {
  const totals = await store.visibility.auditTotals([BATCH_SUBMIT]);
  const submitted = totals.submitted + (totals.counted[BATCH_SUBMIT] ?? 0);
  const counts = await store.countByState();
  const { purged, pruned } = await removedJobs(store);
  const accounted = {
    completed: counts.completed ?? 0,
    dead: counts.dead ?? 0,
    cancelled: counts.cancelled ?? 0,
    compensated: counts.compensated ?? 0,
    purged,
    pruned,
    // Every state that is not final (scheduled, available, running, and any a capability adds).
    in_flight: Object.entries(counts).reduce((n, [state, c]) => ((FINAL_STATES as readonly string[]).includes(state) ? n : n + (c ?? 0)), 0),
  };
  const total = Object.values(accounted).reduce((a, b) => a + b, 0);
  return { ok: total === submitted, submitted, accounted, total, difference: submitted - total };
}
