import { readFileSync, writeFileSync } from 'node:fs';
import type { Command } from 'commander';
import { AuditTamperedError, exportCheckpoint, reconcileAudit, verifyAudit, type Checkpoint } from '../../observability/audit.ts';
import { pruneAudit, pruneStatsRollups } from '../../observability/audit-retention.ts';
import { ReboundError } from '../../errors.ts';
import { globals, parseDuration, UsageError, withClient } from '../context.ts';
import { printJson, printTable } from '../output.ts';

function readCheckpoint(file: string): Checkpoint {
  let cp: Checkpoint;
  try {
    cp = JSON.parse(readFileSync(file, 'utf8'));
  } catch (err) {
    throw new UsageError(`--checkpoint: cannot read ${file}: ${(err as Error).message}`);
  }
  if (!Number.isInteger(cp?.head_seq) || typeof cp?.head_hash !== 'string') {
    throw new UsageError(`--checkpoint: ${file} is not a checkpoint written by "rebound audit export"`);
  }
  return cp;
}

export class AuditMismatchError extends ReboundError {
  constructor(message: string) {
    super('audit_mismatch', message);
  }
}

const matched = (n: { checked: number; skipped: number }, what: string) =>
  `${n.checked} ${what} match their jobs${n.skipped ? ` (${n.skipped} name pruned jobs, not checked)` : ''}`;

export function register(program: Command) {
  const audit = program.command('audit').description('the hash-chained audit trail: verify, export a checkpoint, reconcile, prune');

  audit
    .command('verify')
    .description('check that no audit entry was altered, removed or reordered (exit 1 names the first bad entry)')
    .option('--checkpoint <file>', 'also check against a checkpoint written by "rebound audit export"')
    .option('--jobs', 'also check each bulk submission entry against the jobs it names (reads every one of them)')
    .option('--strict', 'with --checkpoint: exit 1 when the checkpoint could not be checked (its head was pruned), not only warn')
    .action(async (o: { checkpoint?: string; jobs?: boolean; strict?: boolean }, cmd: Command) => {
      if (o.strict && !o.checkpoint) throw new UsageError('--strict applies to --checkpoint FILE; give one, or leave --strict out');
      const checkpoint = o.checkpoint ? readCheckpoint(o.checkpoint) : undefined;
      const result = await withClient(cmd, async (r) => {
        await r.visibility.audit?.seal();
        return verifyAudit(r.store, { checkpoint, jobs: o.jobs });
      }, { readOnly: true });
      if (globals(cmd).json) printJson(result);
      if (!result.ok) throw new AuditTamperedError(result.problem!);
      if (!globals(cmd).json) {
        const cp = result.checkpoint;
        process.stdout.write(
          `audit trail verifies: ${result.count} entries, head seq ${result.head?.seq ?? 0} ${result.head?.hash ?? '-'}` +
            `${result.anchor ? ` (entries through seq ${result.anchor.seq} were pruned; the chain was checked from there)` : ''}` +
            `${result.unsealed ? ` (${result.unsealed} not yet sealed)` : ''}${cp?.checked ? ', matches the checkpoint' : ''}` +
            `${result.batches ? `; ${matched(result.submissions!, 'single submissions')}, ${matched(result.batches, 'bulk entries')}` : ''}\n`,
        );
        if (cp && !cp.checked && !o.strict) process.stderr.write(`warning: the checkpoint was NOT checked: ${cp.reason}\n`);
      }
      // For an auditor, a checkpoint that could not be compared is no proof: --strict makes it a failure (exit 1).
      if (o.strict && result.checkpoint && !result.checkpoint.checked) throw new CheckpointUncheckedError(result.checkpoint.reason);
    });

  audit
    .command('export')
    .description('write a checkpoint (head hash and count) to keep elsewhere; signed with REBOUND_AUDIT_KEY when set')
    .option('--out <file>', 'write to this file instead of stdout')
    .action(async (o: { out?: string }, cmd: Command) => {
      const cp = await withClient(cmd, async (r) => {
        await r.visibility.audit?.seal();
        return exportCheckpoint(r.store, r.now());
      }, { readOnly: true });
      if (o.out) {
        writeFileSync(o.out, `${JSON.stringify(cp, null, 2)}\n`);
        if (!globals(cmd).json) process.stdout.write(`checkpoint written to ${o.out}: seq ${cp.head_seq} ${cp.head_hash}\n`);
        else printJson(cp);
      } else printJson(cp);
    });

  audit
    .command('prune')
    .description('delete audit segments sealed before a cutoff (an anchor keeps verify and reconcile whole) and/or old per-minute stats')
    .option('--older-than <duration>', 'prune the audit trail\'s segments sealed longer ago than this (90d, 12h, 30m)', parseDuration)
    .option('--stats-older-than <duration>', 'delete per-minute stats rollups older than this (14d)', parseDuration)
    .action(async (o: { olderThan?: number; statsOlderThan?: number }, cmd: Command) => {
      if (o.olderThan === undefined && o.statsOlderThan === undefined) {
        throw new UsageError('audit prune: give --older-than <duration> (the audit trail), --stats-older-than <duration> (stats rollups), or both');
      }
      const result = await withClient(cmd, async (r) => {
        await r.visibility.audit?.seal();
        const now = r.now();
        const audit = o.olderThan === undefined ? null : await pruneAudit(r.store.visibility, { olderThanMs: o.olderThan, now, actor: 'cli' });
        const stats = o.statsOlderThan === undefined ? null : await pruneStatsRollups(r.store.visibility, { olderThanMs: o.statsOlderThan, now });
        return { audit, stats };
      });
      if (globals(cmd).json) printJson(result);
      else {
        const lines = [];
        if (result.audit) {
          const a = result.audit;
          lines.push(
            a.entries > 0
              ? `audit trail: ${a.entries} entries in ${a.segments} segments pruned; it now starts after seq ${a.anchor!.seq} (anchor ${a.anchor!.hash})`
              : 'audit trail: no segment was sealed before the cutoff; nothing pruned',
          );
        }
        if (result.stats !== null) lines.push(`stats: ${result.stats} rollup rows deleted`);
        process.stdout.write(`${lines.join('\n')}\n`);
      }
    });

  audit
    .command('reconcile')
    .description('check that submitted jobs are all accounted for: completed, dead, cancelled, compensated, purged, pruned or in flight')
    .action(async (_o, cmd: Command) => {
      const rec = await withClient(cmd, async (r) => {
        await r.visibility.audit?.seal();
        return reconcileAudit(r.store);
      }, { readOnly: true });
      if (globals(cmd).json) printJson(rec);
      else {
        printTable([{ submitted: rec.submitted, ...rec.accounted, accounted: rec.total, difference: rec.difference }]);
      }
      if (!rec.ok) {
        throw new AuditMismatchError(
          rec.difference > 0
            ? `${rec.difference} submitted job(s) are not accounted for`
            : `${-rec.difference} job(s) exist that were never submitted through the audit trail`,
        );
      }
    });
}

/** `audit verify --strict --checkpoint`: the chain verifies, but the checkpoint could not be compared with it. */
class CheckpointUncheckedError extends ReboundError {
  constructor(reason: string) {
    super('checkpoint_unchecked', `the checkpoint was NOT checked (--strict): ${reason}`);
  }
}
