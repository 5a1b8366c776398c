export { createRebound, Rebound, type ReboundOptions, type EnqueueResult, type EnqueueItem, type JobDetails } from './rebound.ts';
export { defineJob, type JobDefinition, type JobOptions, type JobContext, type Handler, type Logger } from './define.ts';
export type { EnqueueOptions } from './engine/enqueue-input.ts';
export { Worker, type WorkOptions } from './runtime/worker.ts';
export { openStore, resolveStoreUrl, DEFAULT_STORE_URL } from './store/open.ts';
export type { Store } from './store/store.ts';
export { backoffDelay, DEFAULT_RETRY, type RetryPolicy, type Classifier } from './policies/retry.ts';
export * from './errors.ts';
export { superviseWorkers, Supervisor, type SupervisorOptions, type ProcessInfo } from './runtime/supervisor.ts';
export { Breakers, type BreakerView } from './runtime/breakers.ts';
export { DlqWatcher, type DlqAlertRule, type RedrivePolicy, type DlqAlert, type DlqWatcherOptions } from './runtime/dlq-watcher.ts';
export type { QueueStats, QueueLimit } from './runtime/backpressure.ts';
export type { RateLimit, ConcurrencyLimit, RetryBudget } from './policies/limits.ts';
export type { BreakerConfig, BreakerSpec, BreakerStateName } from './policies/breaker.ts';
export type { Job, JobState, JobEvent, Attempt, ErrorInfo, Json, JobFilter } from './job.ts';
export type { ReboundEvents } from './events.ts';
export type { WorkerPlugin, ClaimGate } from './runtime/plugin.ts';
export { defineWorkflow, type WorkflowOptions } from './workflows/define-workflow.ts';
export type { WorkflowContext } from './workflows/context.ts';
export type { StepOptions } from './workflows/step.ts';
export type { StepInfo } from './workflows/run-env.ts';
export type { ChildRef, ChildOutcome, SpawnOptions } from './workflows/children.ts';
export type { WaitOptions } from './workflows/signals.ts';
export type { StateSpec } from './workflows/states.ts';
export type { WorkflowDetails, SignalResult } from './workflows/client.ts';
export type { WorkflowRun, StepRecord, WorkflowSignal, RunStatus } from './store/workflows.ts';
export {
  Coordination,
  Coordinator,
  Elector,
  defineSchedule,
  parseCron,
  DEFAULT_RETENTION,
  ScheduleNotFoundError,
  type CoordinatorOptions,
  type ElectorOptions,
  type Leadership,
  type ScheduleDefinition,
  type ScheduleOptions,
  type MisfirePolicy,
  type HeldLock,
  type LockOptions,
  type RetentionPolicy,
} from './coordination/index.ts';
export type { Fence, Lease, ScheduleRecord, PrunedCount, CoordinationStore } from './store/coordination.ts';
export { maskJob, maskPayload, MASK, verifyAudit, exportCheckpoint, reconcileAudit, type Checkpoint, type VerifyResult, type Reconciliation, type Stats, type VisibilityOptions } from './observability/index.ts';
