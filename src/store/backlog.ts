/**
 * What a queue holds and how fast it moves: the input for backpressure
 * (maximum depth) and for lag reports (depth, oldest waiting age, rates, drain time).
 */
export interface QueueCounts {
  queue: string;
  /** Waiting and due now. */
  waiting: number;
  /** Waiting for a later run-at (delayed, retrying, snoozed). */
  scheduled: number;
  running: number;
  /** Run-at of the oldest due waiting job. */
  oldestDueAt: number | null;
  /** Jobs created since `since`. */
  arrived: number;
  /** Jobs completed since `since`. */
  completed: number;
  /** Jobs that went dead or were cancelled since `since`. */
  failed: number;
}

/** The dead letter queue at a glance, for alert rules. */
export interface DeadCounts {
  total: number;
  /** Jobs that died at or after `since`. */
  recent: number;
  /** When the longest-dead job died. */
  oldestAt: number | null;
}

export interface BacklogStore {
  /** Jobs not yet run (available or scheduled) in a queue. */
  depth(queue: string): Promise<number>;
  /** Counts per queue; `now` splits due from scheduled, `since` opens the rate window. */
  queueCounts(now: number, since: number): Promise<QueueCounts[]>;
  /** Dead jobs (of one type, or all). */
  deadCounts(since: number, type?: string): Promise<DeadCounts>;
}
