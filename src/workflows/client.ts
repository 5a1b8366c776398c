/** What the client offers about workflows: signals, and a run's state and history. */
import { JobNotFoundError, NotAWorkflowError, ValidationError } from '../errors.ts';
import type { JobDefinition } from '../define.ts';
import { jobIdOf, shownId } from '../engine/job-query.ts';
import { UNSTORABLE_ESCAPE } from '../engine/stored-json.ts';
import type { Json } from '../job.ts';
import type { Store } from '../store/store.ts';
import type { StepRecord, WorkflowRun, WorkflowSignal } from '../store/workflows.ts';
import { isWorkflowDefinition } from './define-workflow.ts';
import { checkStepName } from './step.ts';

export interface WorkflowDetails extends WorkflowRun {
  /** The history: one record per position, in order. */
  steps: StepRecord[];
  signals: WorkflowSignal[];
}

/** The run of job `id`, or null when the job has none; an id that cannot name a job is not found, on every store alike. */
export async function workflowDetails(store: Store, id: string): Promise<WorkflowDetails | null> {
  const jobId = jobIdOf(id);
  if (!jobId) throw new JobNotFoundError(shownId(id));
  const run = await store.workflows.getRun(jobId);
  if (!run) return null;
  const [steps, signals] = await Promise.all([store.workflows.listSteps(run.jobId), store.workflows.listSignals(run.jobId)]);
  return { ...run, steps, signals };
}

export interface SignalResult {
  signalId: string;
  /** The workflow was waiting for this signal and is due now. */
  woke: boolean;
}

/**
 * Stores a signal for a workflow. A job that is not a workflow is refused (NotAWorkflowError), and so is a
 * finished one (InvalidStateError): nothing would ever read the signal. Whether a job is a workflow is
 * known from its definition, so only a client that holds it (the application's, a worker's, `--jobs`) can
 * refuse a plain job; without it the signal is kept, as one sent to a workflow not started yet must be.
 */
export async function sendSignal(
  store: Store,
  now: number,
  jobId: string,
  name: string,
  payload: unknown,
  definitionOf: (type: string) => JobDefinition | undefined,
): Promise<SignalResult> {
  checkStepName(name, 'signal name');
  let json: Json;
  try {
    const text = JSON.stringify(payload === undefined ? null : payload);
    json = JSON.parse(text) as Json;
  } catch (err) {
    throw new ValidationError('payload', `must be JSON-serializable (${(err as Error).message})`);
  }
  // As for a step's result: what PostgreSQL cannot keep is refused on every store alike.
  if (UNSTORABLE_ESCAPE.test(JSON.stringify(json))) {
    throw new ValidationError('payload', 'must not contain U+0000 or unpaired UTF-16 surrogates; encode binary data (base64) first');
  }
  const id = jobIdOf(jobId);
  const job = id ? await store.getJob(id) : null;
  if (!job) throw new JobNotFoundError(shownId(jobId));
  const def = definitionOf(job.type);
  if (def && !isWorkflowDefinition(def)) throw new NotAWorkflowError(job.id, job.type);
  // Whether it has finished is checked by the store, in the transaction that stores the signal.
  return store.workflows.sendSignal({ jobId: job.id, name, payload: json, now });
}
