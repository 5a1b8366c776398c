/**
 * The replay cursor. Every durable operation of a workflow (step, sleep,
 * waitFor, spawn, join, transition) takes the next position in the run's
 * history; a position already recorded must carry the same kind and name,
 * otherwise the code changed under the run and replay stops with a DeterminismError.
 */
import { DeterminismError } from '../errors.ts';
import type { StepKind, StepRecord, WorkflowStore } from '../store/workflows.ts';

/** Thrown at the first unfinished position when a run is replayed only to rebuild its compensations. */
export class ReplayEnd extends Error {
  constructor() {
    super('replay reached an unfinished position');
  }
}

export class History {
  private position = 0;

  constructor(
    readonly jobId: string,
    readonly workflowType: string,
    private readonly store: WorkflowStore,
    private readonly records: Map<number, StepRecord>,
    readonly now: () => number,
    /** Replaying only to rebuild compensations: stop at the first position that has not finished. */
    readonly replayOnly: boolean,
  ) {}

  /** Takes the next position for an operation and checks it against the recorded history. */
  next(kind: StepKind, name: string): { seq: number; record: StepRecord | undefined } {
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

  get(seq: number): StepRecord | undefined {
    return this.records.get(seq);
  }

  async save(record: StepRecord): Promise<StepRecord> {
    const stored = await this.store.saveStep(this.jobId, record);
    this.records.set(stored.seq, stored);
    return stored;
  }
}

const label = (kind: StepKind, name: string) => (kind === 'step' ? name : `${kind}:${name}`);
