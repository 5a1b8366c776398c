/** The leader's flags of `rebound worker` (and of its supervised processes), and the library fields they set. */

/** Which coordinator option each flag sets, for errors that name the flag. */
export const COORDINATOR_FLAGS = { 'options.leaseMs': '--leader-lease-ms', 'options.auditRetentionMs': '--audit-retention', 'options.statsRetentionMs': '--stats-retention' };

/** The coordinator's options the flags set (only those given, so the library's defaults hold for the rest). */
export function coordinatorOptions(o: { leaderLeaseMs?: number; auditRetention?: number; statsRetention?: number }) {
  return {
    ...(o.leaderLeaseMs !== undefined && { leaseMs: o.leaderLeaseMs }),
    ...(o.auditRetention !== undefined && { auditRetentionMs: o.auditRetention }),
    ...(o.statsRetention !== undefined && { statsRetentionMs: o.statsRetention }),
  };
}
