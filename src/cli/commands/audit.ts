import { readFileSync, writeFileSync } from 'node:fs';
import type { Command } from 'commander';
import { AuditTamperedError, exportCheckpoint, reconcileAudit, verifyAudit, type Checkpoint } from '../../observability/audit.ts';
import { ReboundError } from '../../errors.ts';
import { globals, UsageError, withClient } from '../context.ts';
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
  const audit = program.command('audit').description('the hash-chained audit trail: verify, export a checkpoint, reconcile');

  audit
    .command('verify')
    .description('check that no audit entry was altered, removed or reordered (exit 1 names the first bad entry)')
    .option('--checkpoint <file>', 'also check against a checkpoint written by "rebound audit export"')
    .option('--jobs', 'also check each bulk submission entry against the jobs it names (reads every one of them)')
    .action(async (o: { checkpoint?: string; jobs?: boolean }, cmd: Command) => {
      const checkpoint = o.checkpoint ? readCheckpoint(o.checkpoint) : undefined;
      const result = await withClient(cmd, async (r) => {
        await r.visibility.audit?.seal();
        return verifyAudit(r.store, { checkpoint, jobs: o.jobs });
      }, { readOnly: true });
      if (globals(cmd).json) printJson(result);
      if (!result.ok) throw new AuditTamperedError(result.problem!);
      if (!globals(cmd).json) {
        process.stdout.write(
          `audit trail verifies: ${result.count} entries, head seq ${result.head?.seq ?? 0} ${result.head?.hash ?? '-'}` +
            `${result.unsealed ? ` (${result.unsealed} not yet sealed)` : ''}${checkpoint ? ', matches the checkpoint' : ''}` +
            `${result.batches ? `; ${matched(result.submissions!, 'single submissions')}, ${matched(result.batches, 'bulk entries')}` : ''}\n`,
        );
      }
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
