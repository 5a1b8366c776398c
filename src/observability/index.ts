/**
 * The visibility capability, wired into a Rebound client by createRebound:
 * metrics, job logs, traces, stats rollups and the audit trail, each hanging
 * off the typed events and one worker plugin. The engine never imports this.
 */
import type { Tracer } from '@opentelemetry/api';
import type { Registry } from 'prom-client';
import type { JobDefinition, Logger } from '../define.ts';
import type { ReboundEmitter } from '../events.ts';
import type { WorkerPlugin } from '../runtime/plugin.ts';
import type { Store } from '../store/store.ts';
import { AuditTrail, type AuditOptions } from './audit.ts';
import { subscribeJobLogs } from './logging.ts';
import { ReboundMetrics } from './metrics.ts';
import { visibilityPlugin } from './plugin.ts';
import { computeStats, StatsRecorder, type Stats, type StatsOptions } from './stats.ts';
import type { Unsubscribe } from './subscribe.ts';
import { reboundTracer } from './tracing.ts';

export interface VisibilityOptions {
  /** OpenTelemetry spans through the global tracer provider (default true; a no-op until an SDK is registered), or a tracer. */
  tracing?: boolean | { tracer: Tracer };
  /** Prometheus metrics (default true): false, or a prom-client Registry to register into. */
  metrics?: boolean | Registry;
  /** The hash-chained audit trail (default true). */
  audit?: boolean | AuditOptions;
  /** Per-minute stats rollups for `stats()` (default true). */
  stats?: boolean | StatsOptions;
  /** Job lifecycle log lines at debug level (default true). */
  jobLogs?: boolean;
}

export interface VisibilityDeps {
  store: Store;
  events: ReboundEmitter;
  logger: Logger;
  now: () => number;
  definitions: () => ReadonlyMap<string, JobDefinition>;
}

export class Visibility {
  readonly metrics: ReboundMetrics | null;
  readonly audit: AuditTrail | null;
  readonly stats: StatsRecorder | null;
  readonly plugin: WorkerPlugin;
  private readonly off: Unsubscribe[];

  constructor(
    private readonly deps: VisibilityDeps,
    opts: VisibilityOptions = {},
  ) {
    const tracer = opts.tracing === false ? null : typeof opts.tracing === 'object' ? opts.tracing.tracer : reboundTracer();
    // A tracer of the caller's own may record without a global SDK; the global one does not.
    this.plugin = visibilityPlugin({ tracer, globalTracer: typeof opts.tracing !== 'object' });
    this.metrics =
      opts.metrics === false ? null : new ReboundMetrics({ ...deps, registry: typeof opts.metrics === 'object' ? opts.metrics : undefined });
    this.audit = opts.audit === false ? null : new AuditTrail(deps, typeof opts.audit === 'object' ? opts.audit : {});
    this.stats = opts.stats === false ? null : new StatsRecorder(deps, typeof opts.stats === 'object' ? opts.stats : {});
    this.off = opts.jobLogs === false ? [] : subscribeJobLogs(deps.events, deps.logger);
  }

  /** Prometheus text; empty when metrics are off. */
  async metricsText(): Promise<string> {
    return this.metrics ? this.metrics.text() : '';
  }

  /** Statistics of the last `window` (5m, 1h, 24h...), from the rollups every client writes. */
  async computeStats(opts: { window?: string; type?: string } = {}): Promise<Stats> {
    await this.stats?.flush();
    return computeStats(this.deps.store, { ...opts, now: this.deps.now() });
  }

  /** Writes what is buffered (audit entries, rollups) and seals the audit chain. */
  async close(): Promise<void> {
    for (const off of this.off.splice(0)) off();
    this.metrics?.close();
    await Promise.all([this.audit?.close(), this.stats?.close()]);
  }
}

export { maskJob, maskPayload, MASK } from './redaction.ts';
export { verifyAudit, exportCheckpoint, reconcileAudit, type Checkpoint, type VerifyResult, type Reconciliation } from './audit.ts';
export type { Stats } from './stats.ts';
