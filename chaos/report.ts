/**
 * The verdict of a run: what was enqueued, where every job ended, what was
 * lost or done twice, and how long the system took to recover from each fault.
 */
import type { Fault } from './faults.ts';
import type { LedgerFigures } from './ledger.ts';
import type { Snapshot } from './snapshot.ts';
import type { WorkerExit } from './workers.ts';
import { EXPECTED, type PlannedJob } from './workload.ts';

export interface FaultFigures extends Fault {
  /** From the fault to the next job completed anywhere. */
  toNextCompletionMs: number | null;
  /** From the fault's end (SIGCONT, service back, server up) to the next completion. */
  afterLiftMs: number | null;
  /** Jobs whose lease expired under the faulted worker, and when the last of them was done. */
  stranded?: number;
  strandedDoneMs?: number | null;
}

export interface Verdict {
  store: string;
  seed: number;
  startedAt: string;
  durationMs: number;
  workers: number;
  concurrency: number;
  enqueued: number;
  enqueueRetries: number;
  states: Record<string, number>;
  byType: Record<string, Record<string, number>>;
  /** Enqueued but in no final state after the system quiesced (or never stored). Must be 0. */
  lost: number;
  lostSample: string[];
  /** Jobs with two or more ledger rows. Must be 0. */
  appliedTwice: number;
  /** Completed jobs that should have paid and have no ledger row. Must be 0. */
  effectsMissing: number;
  /** Dead jobs of kinds that must complete. Must be 0. */
  unexpectedDead: number;
  /** Poison jobs not in the dead letter queue as poison. Must be 0. */
  poisonMissing: number;
  /** Permanent or exhausted jobs that ended any other way. Must be 0. */
  wrongOutcome: number;
  ledger: LedgerFigures;
  leaseExpiredEvents: number;
  /** Stale executors whose late outcome was refused by the fence. */
  leaseLostEvents: number;
  workerStarts: number;
  supervised: boolean;
  /** Supervised: worker processes still running a grace period after the run (orphans that did not exit). */
  lingered: number;
  /** Times the run stalled (no job finished within the timeout, jobs still open) and every worker had to be replaced. Should be 0. */
  stallRestarts: number;
  workerExits: Record<string, number>;
  unexpectedExits: WorkerExit[];
  faults: FaultFigures[];
  ok: boolean;
}

export interface RunFacts {
  store: string;
  seed: number;
  startedAt: number;
  endedAt: number;
  workers: number;
  concurrency: number;
  planned: PlannedJob[];
  enqueueRetries: number;
  snapshot: Snapshot;
  ledger: LedgerFigures;
  paid: Map<string, number>;
  faults: Fault[];
  exits: WorkerExit[];
  workerStarts: number;
  supervised: boolean;
  lingered: number;
  stallRestarts: number;
}

const FINAL = new Set(['completed', 'dead', 'cancelled']);
const pidOf = (worker: string | null) => (worker ? Number(worker.split(':').at(-2)) : NaN);

export function judge(f: RunFacts): Verdict {
  const byKey = new Map(f.snapshot.jobs.filter((j) => j.key).map((j) => [j.key!, j]));
  const states: Record<string, number> = {};
  const byType: Record<string, Record<string, number>> = {};
  const lostSample: string[] = [];
  let lost = 0;
  let effectsMissing = 0;
  let unexpectedDead = 0;
  let poisonMissing = 0;
  let wrongOutcome = 0;
  for (const p of f.planned) {
    const job = byKey.get(p.key);
    const state = job?.state ?? 'never stored';
    states[state] = (states[state] ?? 0) + 1;
    const t = (byType[p.type] ??= {});
    const label = state === 'dead' ? `dead (${job!.deadReason})` : state;
    t[label] = (t[label] ?? 0) + 1;
    if (!job || !FINAL.has(job.state)) {
      lost++;
      if (lostSample.length < 10) lostSample.push(`${p.key} (${state})`);
      continue;
    }
    const want = EXPECTED[p.type];
    if (want.state === 'completed') {
      if (job.state === 'dead') unexpectedDead++;
      else if (job.state === 'completed' && want.pays && (f.paid.get(job.id) ?? 0) === 0) effectsMissing++;
    } else if (want.deadReason === 'poison') {
      if (job.state !== 'dead' || job.deadReason !== 'poison') poisonMissing++;
    } else if (job.state !== 'dead' || job.deadReason !== want.deadReason) {
      wrongOutcome++;
    }
  }

  const completions = f.snapshot.jobs
    .filter((j) => j.state === 'completed' && j.finishedAt != null)
    .map((j) => j.finishedAt!)
    .sort((a, b) => a - b);
  const nextCompletion = (t: number) => {
    let lo = 0;
    let hi = completions.length;
    while (lo < hi) {
      const mid = (lo + hi) >> 1;
      if (completions[mid] < t) lo = mid + 1;
      else hi = mid;
    }
    return lo < completions.length ? completions[lo] - t : null;
  };
  const jobsById = new Map(f.snapshot.jobs.map((j) => [j.id, j]));
  const faults = f.faults.map((fault): FaultFigures => {
    const figures: FaultFigures = { ...fault, toNextCompletionMs: nextCompletion(fault.at), afterLiftMs: nextCompletion(fault.endAt) };
    if (fault.pid != null) {
      const ids = new Set(
        f.snapshot.events.filter((e) => e.kind === 'lease_expired' && e.at >= fault.at && pidOf(e.worker) === fault.pid).map((e) => e.jobId),
      );
      const done = [...ids].map((id) => jobsById.get(id)).filter((j) => j?.state === 'completed' && j.finishedAt != null);
      figures.stranded = ids.size;
      figures.strandedDoneMs = done.length ? Math.max(...done.map((j) => j!.finishedAt!)) - fault.at : null;
    }
    return figures;
  });

  const workerExits: Record<string, number> = {};
  for (const e of f.exits) workerExits[e.cause] = (workerExits[e.cause] ?? 0) + 1;
  const verdict: Verdict = {
    store: f.store,
    seed: f.seed,
    startedAt: new Date(f.startedAt).toISOString(),
    durationMs: f.endedAt - f.startedAt,
    workers: f.workers,
    concurrency: f.concurrency,
    enqueued: f.planned.length,
    enqueueRetries: f.enqueueRetries,
    states,
    byType,
    lost,
    lostSample,
    appliedTwice: f.ledger.appliedTwice,
    effectsMissing,
    unexpectedDead,
    poisonMissing,
    wrongOutcome,
    ledger: f.ledger,
    leaseExpiredEvents: f.snapshot.events.filter((e) => e.kind === 'lease_expired').length,
    leaseLostEvents: f.snapshot.events.filter((e) => e.kind === 'lease_lost').length,
    workerStarts: f.workerStarts,
    supervised: f.supervised,
    lingered: f.lingered,
    stallRestarts: f.stallRestarts,
    workerExits,
    unexpectedExits: f.exits.filter((e) => e.cause === 'unexpected'),
    faults,
    ok: false,
  };
  verdict.ok = [lost, verdict.appliedTwice, effectsMissing, unexpectedDead, poisonMissing, wrongOutcome].every((n) => n === 0);
  return verdict;
}

const ms = (v: number | null | undefined) => (v == null ? '-' : v < 10_000 ? `${v} ms` : `${(v / 1000).toFixed(1)} s`);

function summarize(values: (number | null | undefined)[]) {
  const xs = values.filter((v): v is number => v != null).sort((a, b) => a - b);
  if (!xs.length) return '-';
  return `median ${ms(xs[Math.floor(xs.length / 2)])}, max ${ms(xs[xs.length - 1])}`;
}

/** The verdict as Markdown, for the terminal and docs/reliability.md. */
export function toMarkdown(v: Verdict): string {
  const mark = (n: number) => `${n}${n === 0 ? '' : ' **FAIL**'}`;
  const lines = [
    `### ${v.store}${v.supervised ? ', supervised' : ''}: ${v.ok ? 'PASS' : 'FAIL'}`,
    '',
    `Started ${v.startedAt}, ran ${ms(v.durationMs)}, seed ${v.seed}, ${v.workers} worker processes x concurrency ${v.concurrency}${v.supervised ? ' under the supervisor (`rebound worker --processes`)' : ', restarted by the harness'}.`,
    '',
    '| Figure | Value |',
    '| --- | --- |',
    `| Jobs enqueued | ${v.enqueued} (enqueue batches retried after a fault: ${v.enqueueRetries}) |`,
    `| Final states | ${Object.entries(v.states).map(([s, n]) => `${s} ${n}`).join(', ')} |`,
    `| **Jobs lost** (in no final state after quiescence) | ${mark(v.lost)} |`,
    `| **Effects applied twice** (jobs with 2+ ledger rows) | ${mark(v.appliedTwice)} |`,
    `| Completed jobs whose effect is missing | ${mark(v.effectsMissing)} |`,
    `| **Jobs in the DLQ that should not be there** | ${mark(v.unexpectedDead)} |`,
    `| **Poison jobs not in the DLQ as poison** | ${mark(v.poisonMissing)} |`,
    `| Permanent/exhausted jobs with another outcome | ${mark(v.wrongOutcome)} |`,
    `| Ledger rows (payments applied) | ${v.ledger.applied} |`,
    `| Payment requests replayed and absorbed by the idempotency key | ${v.ledger.replayed} of ${v.ledger.requests} |`,
    `| Leases expired and rescued | ${v.leaseExpiredEvents} |`,
    `| Stale executors fenced off (late outcome refused) | ${v.leaseLostEvents} |`,
    `| ${v.supervised ? 'Supervisor processes started' : 'Worker processes started'} | ${v.workerStarts} |`,
    `| ${v.supervised ? 'Supervisor exits' : 'Worker exits'} by cause | ${Object.entries(v.workerExits).map(([c, n]) => `${c} ${n}`).join(', ') || '-'} |`,
    ...(v.supervised ? [`| Worker processes still running a grace period after the run | ${v.lingered} |`] : []),
    `| Stalls (no job finished within the timeout: every worker replaced once) | ${v.stallRestarts}${v.stallRestarts ? ' **FINDING**' : ''} |`,
    '',
    'Final state by job kind:',
    '',
    '| Kind | Final states |',
    '| --- | --- |',
    ...Object.entries(v.byType).map(([t, s]) => `| ${t} | ${Object.entries(s).map(([k, n]) => `${k} ${n}`).join(', ')} |`),
    '',
    'Recovery after each kind of fault (to the next completed job; for worker faults, until the last job stranded on that worker was done):',
    '',
    '| Fault | Count | Fault to next completion | Lift to next completion | Stranded jobs | Stranded jobs done |',
    '| --- | --- | --- | --- | --- | --- |',
  ];
  const kinds = [...new Set(v.faults.map((f) => f.kind))];
  for (const k of kinds) {
    const fs = v.faults.filter((f) => f.kind === k);
    const stranded = fs.some((f) => f.stranded != null) ? String(fs.reduce((n, f) => n + (f.stranded ?? 0), 0)) : '-';
    lines.push(
      `| ${k} | ${fs.length} | ${summarize(fs.map((f) => f.toNextCompletionMs))} | ${summarize(fs.map((f) => f.afterLiftMs))} | ${stranded} | ${fs.some((f) => f.stranded) ? summarize(fs.map((f) => f.strandedDoneMs)) : '-'} |`,
    );
  }
  lines.push('', '<details><summary>Every fault</summary>', '', '| t (s) | Fault | Target | Next completion | After lift | Stranded | Stranded done |', '| --- | --- | --- | --- | --- | --- | --- |');
  const t0 = Date.parse(v.startedAt);
  for (const f of v.faults) {
    lines.push(
      `| ${((f.at - t0) / 1000).toFixed(1)} | ${f.kind} | ${f.pid ? `pid ${f.pid}` : (f.note ?? '-')} | ${ms(f.toNextCompletionMs)} | ${ms(f.afterLiftMs)} | ${f.stranded ?? '-'} | ${ms(f.strandedDoneMs)} |`,
    );
  }
  lines.push('', '</details>');
  if (v.lostSample.length) lines.push('', `Lost (sample): ${v.lostSample.join(', ')}`);
  for (const e of v.unexpectedExits) lines.push('', `Unexpected worker exit: pid ${e.pid}, code ${e.code}, signal ${e.signal}: ${JSON.stringify(e.tail ?? '')}`);
  return lines.join('\n');
}
