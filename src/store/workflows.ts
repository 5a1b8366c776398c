/**
 * The workflow store: a workflow run (the version it started with, its
 * status, its named state, what it waits for), the history of its steps in
 * position order, and the signals sent to it. The job row stays the unit of
 * claiming; these tables hold what a replay needs. `now` comes from the caller.
 */
import { InvalidStateError } from '../errors.ts';
import { FINAL_STATES, type ErrorInfo, type JobState, type Json } from '../job.ts';

export type RunStatus = 'running' | 'compensating' | 'completed' | 'compensated' | 'failed' | 'cancelled';

export interface WorkflowRun {
  jobId: string;
  type: string;
  /** The workflow version the run started with; it keeps it until it ends. */
  version: number;
  status: RunStatus;
  /** The current named state (`ctx.transition`), or null when the workflow declares none. */
  state: string | null;
  /** What the run sleeps on: 'children', 'signal:NAME', 'timer', or null. Signals and finished children wake it. */
  waiting: string | null;
  /** Why the run failed for good (set when compensation starts). */
  error: ErrorInfo | null;
  createdAt: number;
  updatedAt: number;
}

export type StepKind = 'step' | 'sleep' | 'signal' | 'spawn' | 'join' | 'transition';
export type StepStatus = 'running' | 'retrying' | 'completed' | 'failed';
export type CompensationStatus = 'none' | 'pending' | 'done' | 'failed';

/** One position in a run's history. */
export interface StepRecord {
  seq: number;
  name: string;
  kind: StepKind;
  status: StepStatus;
  result: Json | null;
  error: ErrorInfo | null;
  attempts: number;
  /** Timers, signal deadlines, and a step's next retry (status 'retrying'): when the position is due. */
  wakeAt: number | null;
  startedAt: number;
  finishedAt: number | null;
  compensation: CompensationStatus;
  compensationAttempts: number;
  compensationError: ErrorInfo | null;
}

export interface WorkflowSignal {
  id: string;
  name: string;
  payload: Json;
  createdAt: number;
  /** The history position that received it, or null while undelivered. */
  consumedBy: number | null;
}

export interface SendSignalParams {
  jobId: string;
  name: string;
  payload: Json;
  now: number;
}

/**
 * A finished job takes no signals: nothing would ever read them. Stores check this in the transaction that
 * stores the signal, holding the job's row, so a run that finishes at that moment either finishes after the
 * signal is stored or refuses it; a check made before, in another transaction, lets the finish in between.
 */
export function refuseSignalIfFinished(job: { id: string; type: string; state: JobState }): void {
  if (!FINAL_STATES.includes(job.state)) return;
  const redrive = job.state === 'dead' ? '; a dead workflow takes signals again once redriven (rebound dlq redrive)' : '';
  throw new InvalidStateError(
    `job ${job.id} (type "${job.type}") is ${job.state}: a finished job takes no signals, only an unfinished workflow does${redrive}; the signal was not stored`,
  );
}

/**
 * The writes an execution of a run makes take its job's lease token (`token`, the attempt's fencing token).
 * Such a write is made only while the job is running under that token, atomically with the check; otherwise
 * it throws LeaseLostError and writes nothing. So an executor that timed out or lost its lease, and keeps
 * going because JavaScript cannot stop it, records nothing, and its successor never sees its late steps.
 * Without `token` (operator tools, tests) the write is not fenced.
 */
export interface WorkflowStore {
  /** Creates the run on its first execution; later executions get the stored run (and its version) back. */
  startRun(p: { jobId: string; type: string; version: number; state: string | null; now: number; token?: number }): Promise<WorkflowRun>;
  getRun(jobId: string): Promise<WorkflowRun | null>;
  updateRun(
    jobId: string,
    patch: { status?: RunStatus; state?: string | null; waiting?: string | null; error?: ErrorInfo | null },
    now: number,
    token?: number,
  ): Promise<void>;

  listSteps(jobId: string): Promise<StepRecord[]>;
  /**
   * Writes a position of the history. A completed position is never
   * overwritten: a stale executor's late write loses, and the stored record is returned.
   */
  saveStep(jobId: string, step: StepRecord, token?: number): Promise<StepRecord>;

  /**
   * Wakes the parents that a finishing child could not wake because the parent was going to sleep at
   * that moment (PostgreSQL notes them; SQLite, one writer at a time, never misses one). The workers'
   * periodic pass calls it. Returns how many parents it woke.
   */
  wakeMissed(now: number): Promise<number>;
  /**
   * Stores a signal; wakes the job when its run waits for this signal. Returns whether it woke the job.
   * A finished job refuses it (InvalidStateError, refuseSignalIfFinished) and a missing one is not found
   * (JobNotFoundError), both checked atomically with the insert: nothing is stored.
   */
  sendSignal(p: SendSignalParams): Promise<{ signalId: string; woke: boolean }>;
  /**
   * Delivers a signal to history position `seq`: the one it already received,
   * else the oldest undelivered signal of that name. null: none has come. Not fenced: a position
   * receives one signal whoever takes it, so a stale executor's take hands its successor the same signal.
   */
  takeSignal(p: { jobId: string; name: string; seq: number; now: number }): Promise<WorkflowSignal | null>;
  listSignals(jobId: string): Promise<WorkflowSignal[]>;
}
