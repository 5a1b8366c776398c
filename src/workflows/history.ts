/**
 * The replay cursor. Every durable operation of a workflow (step, sleep,
 * waitFor, spawn, join, transition) takes the next position in the run's
 * history; a position already recorded must carry the same kind and name,
 * otherwise the code changed under the run and replay stops with a DeterminismError.
 */
import { DeterminismError } from '../errors.ts';
import type { ErrorInfo } from '../job.ts';
import type { RunStatus, StepKind, StepRecord, WorkflowStore } from '../store/workflows.ts';

/** The execution writing the history: its job, the lease token its writes are fenced with, and its attempt's abort. */
export interface Executor {
  jobId: string;
  fencingToken: number;
  signal: AbortSignal;
}

/** Thrown at the first unfinished position when a run is replayed only to rebuild its compensations. */
export class ReplayEnd extends Error {
  constructor() {
    super('replay reached an unfinished position');
  }
}

/**
 * Every write goes through here, fenced with the attempt's lease token, and every operation first checks
 * that the attempt has not been aborted: an execution that timed out or lost its lease goes no further.
 */
export class History {
  private position = 0;
  readonly jobId: string;

  constructor(
    private readonly executor: Executor,
    readonly workflowType: string,
    private readonly store: WorkflowStore,
    private readonly records: Map<number, StepRecord>,
    readonly now: () => number,
    /** Replaying only to rebuild compensations: stop at the first position that has not finished. */
    readonly replayOnly: boolean,
  ) {
    this.jobId = executor.jobId;
  }

  /** Takes the next position for an operation and checks it against the recorded history. */
  next(kind: StepKind, name: string): { seq: number; record: StepRecord | undefined } {
    this.executor.signal.throwIfAborted();
    const seq = ++this.position;
    const record = this.records.get(seq);
    if (record && (record.kind !== kind || record.name !== name)) {
      throw new DeterminismError(this.workflowType, this.jobId, seq, label(record.kind, record.name), label(kind, name));
    }
    if (!record && this.replayOnly) throw new ReplayEnd();
    return { seq, record };
  }

  /** A record for a position seen for the first time. */
  fresh(seq: number, kind: StepKind, name: string): StepRecord {
    return {
      seq,
      name,
      kind,
      status: 'running',
      result: null,
      error: null,
      attempts: 0,
      wakeAt: null,
      startedAt: this.now(),
      finishedAt: null,
      compensation: 'none',
      compensationAttempts: 0,
      compensationError: null,
    };
  }

  /** The positions of steps that have failed for good. */
  failedSteps(): number[] {
    return [...this.records.values()].filter((r) => r.kind === 'step' && r.status === 'failed').map((r) => r.seq);
  }

  get(seq: number): StepRecord | undefined {
    return this.records.get(seq);
  }

  async save(record: StepRecord): Promise<StepRecord> {
    this.executor.signal.throwIfAborted();
    const stored = await this.store.saveStep(this.jobId, record, this.executor.fencingToken);
    this.records.set(stored.seq, stored);
    return stored;
  }

  async updateRun(patch: { status?: RunStatus; state?: string | null; waiting?: string | null; error?: ErrorInfo | null }, now: number): Promise<void> {
    this.executor.signal.throwIfAborted();
    await this.store.updateRun(this.jobId, patch, now, this.executor.fencingToken);
  }
}

const label = (kind: StepKind, name: string) => (kind === 'step' ? name : `${kind}:${name}`);
