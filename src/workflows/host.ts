/**
 * What a workflow's handler needs from the client that runs it (the store and
 * enqueue), handed over through a worker plugin every Rebound client installs:
 * a workflow definition stays a plain JobDefinition, loadable from a jobs file.
 */
import type { JobContext } from '../define.ts';
import type { EnqueueOptions } from '../engine/enqueue-input.ts';
import { ConfigError } from '../errors.ts';
import type { WorkerPlugin } from '../runtime/plugin.ts';
import type { Store } from '../store/store.ts';

export interface WorkflowHost {
  store: Store;
  now: () => number;
  enqueue(type: string, payload: unknown, opts: EnqueueOptions): Promise<{ id: string }>;
}

// A registry symbol, so a job file loaded as a second copy of this module still finds the host.
const HOST = Symbol.for('rebound.workflowHost');

export function workflowPlugin(host: WorkflowHost): WorkerPlugin {
  return {
    name: 'workflows',
    extendContext(ctx) {
      // A symbol key: not listed by Object.keys or JSON.stringify, and cheaper than defineProperty per job.
      (ctx as unknown as Record<symbol, WorkflowHost>)[HOST] = host;
    },
  };
}

export function hostOf(ctx: JobContext): WorkflowHost {
  const host = (ctx as unknown as Record<symbol, WorkflowHost | undefined>)[HOST];
  if (!host) throw new ConfigError('workflows run only on workers started by a Rebound client (rebound.work() or `rebound worker`)');
  return host;
}
