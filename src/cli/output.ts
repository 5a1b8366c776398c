/** How commands print: human tables by default, JSON with --json. Errors: one line on stderr. */
import type { Job } from '../job.ts';

/**
 * An error message as one line for stderr: control characters inside it (a newline in an unknown option or a
 * type name the user typed) are escaped as JSON escapes them, so one error is always one line.
 */
export function errorLine(message: string): string {
  return `${message.trimEnd().replace(/[\u0000-\u001f\u007f]/g, (c) => JSON.stringify(c).slice(1, -1))}\n`;
}

export function printJson(value: unknown): void {
  process.stdout.write(`${JSON.stringify(value, null, 2)}\n`);
}

export function printTable(rows: Record<string, unknown>[], columns?: string[]): void {
  if (rows.length === 0) {
    process.stdout.write('(none)\n');
    return;
  }
  const cols = columns ?? Object.keys(rows[0]);
  const cells = rows.map((r) => cols.map((c) => cell(r[c])));
  const widths = cols.map((c, i) => Math.min(60, Math.max(c.length, ...cells.map((row) => row[i].length))));
  const line = (values: string[]) => values.map((v, i) => v.slice(0, widths[i]).padEnd(widths[i])).join('  ').trimEnd();
  process.stdout.write(`${line(cols.map((c) => c.toUpperCase()))}\n${cells.map(line).join('\n')}\n`);
}

function cell(v: unknown): string {
  if (v == null) return '-';
  if (typeof v === 'object') return JSON.stringify(v);
  return String(v);
}

export const time = (ms: number | null | undefined) => (ms == null ? null : new Date(ms).toISOString());

export function jobRow(j: Job) {
  return {
    id: j.id,
    type: j.type,
    queue: j.queue,
    state: j.state,
    attempt: `${j.attempt}/${j.maxAttempts}`,
    run_at: time(j.runAt),
    error: j.lastError?.message ?? null,
  };
}
