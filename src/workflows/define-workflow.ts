/**
 * `defineWorkflow(type, { schema?, version?, states?, run })`: a workflow is
 * a job whose handler replays. Each execution loads the run's history and
 * calls `run` again; finished positions return their recorded results, so the
 * run continues from the first position that has not finished. The result is
 * a plain JobDefinition: enqueue it like any job (its idempotency key is the
 * key of the whole run), and list it in a jobs file for `rebound worker`.
 */
import { defineJob, type JobDefinition, type JobOptions } from '../define.ts';
import { errorInfo } from '../engine/error-info.ts';
import type { Json } from '../job.ts';
import { sensitiveValues } from '../observability/redaction.ts';
import { DeterminismError, Snooze, ValidationError } from '../errors.ts';
import { classifyError } from '../policies/retry.ts';
import { History, ReplayEnd } from './history.ts';
import { hostOf } from './host.ts';
import { makeWorkflowContext, type WorkflowContext } from './context.ts';
import { settled, sleepUntilEarliest, type RunEnv } from './run-env.ts';
import type { StepRecord, WorkflowRun, WorkflowStore } from '../store/workflows.ts';
import type { ErrorInfo } from '../job.ts';
import { compensate } from './saga.ts';
import { failedPosition } from './step.ts';
import { checkStates, initialState, StateMachine, type StateSpec } from './states.ts';

export interface WorkflowOptions<I = any, O = unknown> extends Omit<JobOptions<I>, 'handler'> {
  /** The version new runs start with (default 1). Runs in flight keep the version they started with. */
  version?: number;
  /** Declared states and their allowed moves; the first key is the initial state. */
  states?: StateSpec;
  run: (ctx: WorkflowContext, input: I) => Promise<O> | O;
}

export function defineWorkflow<I = any, O = unknown>(type: string, options: WorkflowOptions<I, O>): JobDefinition<I> {
  const { run, version = 1, states, ...jobOptions } = options ?? ({} as WorkflowOptions<I, O>);
  if (typeof run !== 'function') throw new ValidationError(`defineWorkflow("${type}").run`, 'must be a function (ctx, input) => result');
  if (!Number.isInteger(version) || version < 1) throw new ValidationError(`defineWorkflow("${type}").version`, 'must be a whole number >= 1');
  checkStates(type, states);

  const def: JobDefinition<I> = defineJob<I>(type, {
    ...jobOptions,
    handler: async (input, ctx) => {
      const host = hostOf(ctx);
      const store = host.store.workflows;
      const now = host.now;
      const token = ctx.fencingToken;
      let stored = await store.startRun({ jobId: ctx.jobId, type, version, state: initialState(states), now: now(), token });
      let steps = await store.listSteps(ctx.jobId);
      if (stored.status === 'failed') {
        // Only a redrive resets the job's attempts (to 0, so this is attempt 1). Any later attempt is the one
        // that failed the run coming back because the job's own dead-lettering write was lost (a crash, a
        // store error): it fails again, and the step that failed for good is not run again.
        if (ctx.attempt > 1) throw failedAgain(stored, steps);
        ({ stored, steps } = await retryFailedRun(store, stored, steps, now(), token));
      }
      // A run that finished undoing comes back when its job's final write was lost (a crash, a store error): it only
      // ends compensated again. Run forward, it could go past the failure it compensated, if that has gone away.
      const replayOnly = stored.status === 'compensating' || stored.status === 'compensated';
      const history = new History(ctx, type, store, new Map(steps.map((s) => [s.seq, s])), now, replayOnly);
      const env: RunEnv = {
        history,
        host,
        ctx,
        type,
        retry: def.retry,
        classify: def.classify,
        compensations: [],
        secrets: sensitiveValues(def, input as Json),
        inFlight: new Set(),
        pendingWait: null,
        earliestSnooze: null,
      };
      const machine = new StateMachine(states, initialState(states));
      const wctx = makeWorkflowContext(env, stored.version, machine);

      if (replayOnly) {
        // Failed for good earlier: replay only to rebuild the compensations, then finish undoing. The replay
        // ends at the first unfinished position or with the run's own failure again; a history it no longer
        // matches leaves the list of compensations unknown, so nothing more is undone.
        const cause = stored.error ?? errorInfo(new Error('the workflow failed'), 'permanent', type);
        const replayed = await Promise.resolve()
          .then(() => run(wctx, input))
          .then(
            () => null,
            (err: unknown) => err,
          );
        await settled(env);
        if (ctx.signal.aborted) throw ctx.signal.reason;
        if (replayed instanceof DeterminismError) throw compensationStopped(replayed, steps, cause);
        return compensate(env, cause);
      }
      try {
        const result = await run(wctx, input);
        // A step waiting for its retry (or a wait) whose rejection the run's code did not let through
        // (Promise.allSettled, a catch-all): the run has not finished, it sleeps until that position is due.
        await settled(env);
        if (env.earliestSnooze) throw env.earliestSnooze;
        await history.updateRun({ status: 'completed', waiting: null }, now());
        return result;
      } catch (err) {
        if (ctx.signal.aborted || err instanceof ReplayEnd) throw err;
        if (err instanceof Snooze) {
          // A sibling still running (Promise.all) records its outcome before the execution ends; once the job
          // sleeps, its lease is gone and a late write would be refused, so a finished step would run again.
          await settled(env);
          throw sleepUntilEarliest(env, err);
        }
        // Bad input from the workflow's own code (a step without a name, a child payload its schema refuses) will not get better by retrying.
        if ((err as { code?: unknown })?.code === 'validation') Object.defineProperty(err, 'permanent', { value: true });
        const cls = classifyError(err, def.classify);
        const forGood = cls.kind === 'permanent' || ctx.attempt >= ctx.maxAttempts;
        if (!forGood) throw err;
        // What a redrive retries: the step whose failure ended the run, and siblings that failed beside it. A step
        // failure the code had caught (and taken another path for) is a finished position, not retried.
        const caught = new Set(history.failedSteps());
        await settled(env);
        const failedSteps = history.failedSteps().filter((seq) => !caught.has(seq) || seq === failedPosition(err));
        const error: RunFailure = { ...errorInfo(err, cls.kind, type, env.secrets), failedSteps };
        if (env.compensations.length === 0 || (err as { code?: unknown }).code === 'determinism') {
          await history.updateRun({ status: 'failed', waiting: null, error }, now());
          throw err;
        }
        await history.updateRun({ status: 'compensating', waiting: null, error }, now());
        return compensate(env, error);
      }
    },
  });
  // Marked on the handler, which every copy of the definition keeps (createRebound's `jobs` rebuilds each with defineJob).
  Object.defineProperty(def.handler, WORKFLOW, { value: true });
  return def;
}

// A registry symbol, so a definition made by a second copy of this module (a job file's own rebound) is recognised too.
const WORKFLOW = Symbol.for('rebound.workflow');

/** Whether a job definition came from defineWorkflow: only workflows receive signals. */
export function isWorkflowDefinition(def: JobDefinition): boolean {
  return (def.handler as unknown as Record<symbol, unknown>)[WORKFLOW] === true;
}

/** Why a run failed, with the positions of the steps a redrive retries (absent on runs failed before it was kept: all). */
type RunFailure = ErrorInfo & { failedSteps?: number[] };

function failedAgain(run: WorkflowRun, steps: StepRecord[]): Error {
  const compensation = steps.find((s) => s.compensation === 'failed');
  const why = compensation ? `compensation of step "${compensation.name}" failed` : (run.error?.message ?? 'see its history');
  const err = new Error(`the run had already failed for good: ${why}`);
  return Object.assign(err, { permanent: true, deadReason: compensation ? 'compensation_failed' : undefined });
}

/**
 * The replay of a compensating run no longer matches its history (the code changed under it): which
 * compensations to run is unknown, so none runs. The job goes to the dead letter queue as
 * `compensation_failed` and the run stays `compensating`, so a redrive with fixed code finishes undoing.
 */
function compensationStopped(err: DeterminismError, steps: StepRecord[], cause: ErrorInfo): DeterminismError {
  const undone = steps.filter((s) => s.compensation === 'done').sort((a, b) => b.seq - a.seq).map((s) => s.name);
  err.message =
    `compensation stopped, nothing more was undone: ${err.message}; undone so far: [${undone.join(', ')}]; ` +
    `fix the code and redrive the job to finish undoing; the workflow had failed with: ${cause.message}`;
  return Object.assign(err, { deadReason: 'compensation_failed' });
}

/**
 * A run that had failed for good is executing again: it was redriven from the
 * dead letter queue. Its failed step (or failed compensation) gets a fresh
 * budget of attempts, like the redriven job; a run whose compensation had
 * failed goes back to compensating, anything else back to running.
 */
async function retryFailedRun(store: WorkflowStore, run: WorkflowRun, steps: StepRecord[], now: number, token: number) {
  const compensating = steps.some((s) => s.compensation === 'failed');
  const failing = (run.error as RunFailure | null)?.failedSteps;
  const retried = (s: StepRecord) => s.status === 'failed' && (!failing || failing.includes(s.seq));
  const fresh = await Promise.all(
    steps.map((s) => {
      if (compensating && s.compensation === 'failed') return store.saveStep(run.jobId, { ...s, compensation: 'pending', compensationAttempts: 0 }, token);
      if (!compensating && retried(s)) return store.saveStep(run.jobId, { ...s, status: 'retrying', attempts: 0, wakeAt: null, finishedAt: null }, token);
      return s;
    }),
  );
  const status = compensating ? 'compensating' : 'running';
  await store.updateRun(run.jobId, { status, ...(compensating ? {} : { error: null }) }, now, token);
  return { stored: { ...run, status, ...(compensating ? {} : { error: null }) } as WorkflowRun, steps: fresh };
}
