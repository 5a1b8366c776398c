/**
 * Retention: the leader deletes finished jobs past their age (completed and
 * compensated 7 days, dead 30, cancelled 7, per type overridable with defineJob's
 * `retention`; a child stays while its parent may still read it: unfinished, or
 * dead, since a redrive resumes a workflow in `join`; a job stays while its
 * idempotency key is live, which names it until `keyTtlMs` after it finished; a dead job
 * holding its ordering key stays until redriven or purged, since the key's later jobs wait for it),
 * frees idempotency keys past their TTL, and drops old schedule fire records. Each statement handles one bounded batch (so no long lock and
 * no huge transaction), every write is fenced by the leader's term, and every
 * deleted job is counted by type and state in `pruned_counts`, so an audit
 * reconcile can account for jobs that are gone.
 *
 * The same pass prunes the visibility tables (observability/audit-retention.ts): per-minute stats rollups past
 * `statsMs` (31 days by default, the longest window /api/stats reads), and the audit trail's sealed segments
 * past `auditMs` (kept forever by default: audit trails are often kept for compliance, and pruning one is the
 * operator's decision). Neither needs the fence: an audit prune batch takes the sealer's lock and starts from
 * the stored anchor, so a second pruner (the CLI, or a leader that lost its term) prunes nothing twice, and a
 * stats delete is idempotent.
 */
import type { JobDefinition } from '../define.ts';
import { AUDIT_PRUNE_BATCH, pruneAudit, pruneStatsRollups } from '../observability/audit-retention.ts';
import type { CoordinationStore, Fence } from '../store/coordination.ts';
import type { VisibilityStore } from '../store/visibility.ts';

const DAY = 86_400_000;

export interface RetentionPolicy {
  completedMs: number;
  deadMs: number;
  cancelledMs: number;
}

export const DEFAULT_RETENTION: RetentionPolicy = { completedMs: 7 * DAY, deadMs: 30 * DAY, cancelledMs: 7 * DAY };

/** Per-minute stats are kept as long as the longest window /api/stats reads (31d). */
export const DEFAULT_STATS_RETENTION_MS = 31 * DAY;

export interface PrunerOptions {
  /** The default policy for types without their own. */
  retention?: Partial<RetentionPolicy>;
  /** Rows per statement (default 500). */
  batchSize?: number;
  /** Statements per kind per pass, so one pass stays short (default 20). */
  maxBatches?: number;
  /** Schedule fire records older than this are dropped (default 7 days). */
  fireRecordsMs?: number;
  /** The visibility tables to prune; without it, only jobs, keys and fire records are. */
  visibility?: VisibilityStore;
  /** Audit segments sealed longer ago than this are pruned (default: never). */
  auditMs?: number;
  /** Stats rollups older than this are deleted (default DEFAULT_STATS_RETENTION_MS). */
  statsMs?: number;
}

export interface PruneReport {
  /** Deleted jobs: state -> type -> count. */
  jobs: Record<string, Record<string, number>>;
  keys: number;
  fires: number;
  /** Audit entries and segments pruned; `error` when the oldest segments did not verify (nothing pruned: see docs/visibility.md). */
  audit?: { entries: number; segments: number; error?: Error };
  /** Stats rollup rows deleted. */
  stats?: number;
}

/** Each final state and the age it is kept for; a compensated workflow (failed, and undone) is kept as a completed job is. */
const STATES = [
  ['completed', 'completedMs'],
  ['compensated', 'completedMs'],
  ['dead', 'deadMs'],
  ['cancelled', 'cancelledMs'],
] as const;

export class Pruner {
  private readonly policy: RetentionPolicy;
  private readonly batchSize: number;
  private readonly maxBatches: number;
  private readonly fireRecordsMs: number;
  private readonly visibility: VisibilityStore | undefined;
  private readonly auditMs: number | undefined;
  private readonly statsMs: number;

  constructor(
    private readonly store: CoordinationStore,
    private readonly defs: ReadonlyMap<string, JobDefinition>,
    opts: PrunerOptions = {},
  ) {
    this.policy = { ...DEFAULT_RETENTION };
    // An age given as undefined leaves the default (spread, it replaced the default, and that state was never pruned).
    for (const [state, age] of Object.entries(opts.retention ?? {}) as [keyof RetentionPolicy, number | undefined][]) {
      if (age !== undefined) this.policy[state] = age;
    }
    this.batchSize = opts.batchSize ?? 500;
    this.maxBatches = opts.maxBatches ?? 20;
    this.fireRecordsMs = opts.fireRecordsMs ?? 7 * DAY;
    this.visibility = opts.visibility;
    this.auditMs = opts.auditMs;
    this.statsMs = opts.statsMs ?? DEFAULT_STATS_RETENTION_MS;
  }

  /** One pruning pass with the leader's fence. Throws StaleTermError if leadership was lost. */
  async runOnce(fence: Fence, now: number): Promise<PruneReport> {
    const report: PruneReport = { jobs: {}, keys: 0, fires: 0 };
    for (const [state, field] of STATES) {
      // Types with their own age for this state, grouped by age.
      const byAge = new Map<number, string[]>();
      for (const def of this.defs.values()) {
        const age = def.retention?.[field];
        if (age != null && age !== this.policy[field]) byAge.set(age, [...(byAge.get(age) ?? []), def.type]);
      }
      const own = [...byAge.values()].flat();
      const rules = [
        ...[...byAge].map(([age, types]) => ({ age, onlyTypes: types, exceptTypes: undefined as string[] | undefined })),
        { age: this.policy[field], onlyTypes: undefined as string[] | undefined, exceptTypes: own },
      ];
      for (const rule of rules) {
        for (let i = 0; i < this.maxBatches; i++) {
          const counts = await this.store.pruneJobs({
            fence,
            state,
            finishedBefore: now - rule.age,
            onlyTypes: rule.onlyTypes,
            exceptTypes: rule.exceptTypes,
            limit: this.batchSize,
            now,
          });
          let n = 0;
          for (const [type, c] of Object.entries(counts)) {
            n += c;
            const s = (report.jobs[state] ??= {});
            s[type] = (s[type] ?? 0) + c;
          }
          if (n < this.batchSize) break;
        }
      }
    }
    for (let i = 0; i < this.maxBatches; i++) {
      const n = await this.store.pruneExpiredKeys({ fence, now, limit: this.batchSize });
      report.keys += n;
      if (n < this.batchSize) break;
    }
    for (let i = 0; i < this.maxBatches; i++) {
      const n = await this.store.pruneFires({ fence, before: now - this.fireRecordsMs, limit: this.batchSize, now });
      report.fires += n;
      if (n < this.batchSize) break;
    }
    if (this.visibility) await this.pruneVisibility(this.visibility, report, now);
    return report;
  }

  private async pruneVisibility(visibility: VisibilityStore, report: PruneReport, now: number): Promise<void> {
    report.stats = await pruneStatsRollups(visibility, { olderThanMs: this.statsMs, now, maxBatches: this.maxBatches, batchSize: this.batchSize });
    if (this.auditMs === undefined) return;
    try {
      const r = await pruneAudit(visibility, { olderThanMs: this.auditMs, now, maxBatches: this.maxBatches, batchSize: AUDIT_PRUNE_BATCH });
      report.audit = { entries: r.entries, segments: r.segments };
    } catch (error) {
      // A trail that does not verify is not pruned (that would launder the tampering); the rest of the pass goes on.
      report.audit = { entries: 0, segments: 0, error: error as Error };
    }
  }
}
