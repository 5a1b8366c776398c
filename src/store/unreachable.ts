/**
 * Whether a store error means "not reachable now" rather than "wrongly configured": the network's and the
 * servers' transient failures, by their codes. A wrong password, a database that does not exist or a file that
 * cannot be opened are not among them: those need a person.
 */
const NETWORK_CODES = new Set(['ECONNREFUSED', 'ECONNRESET', 'ETIMEDOUT', 'EHOSTUNREACH', 'ENETUNREACH', 'EAI_AGAIN', 'EPIPE']);
/** PostgreSQL: connection exceptions (class 08), the server shutting down or starting (57P01-57P03), too many connections (53300). */
const PG_TRANSIENT = /^(08...|57P0[1-3]|53300)$/;

export function isStoreUnreachable(err: unknown): boolean {
  const e = err as { code?: unknown; message?: unknown; errors?: unknown[] } | null;
  const code = typeof e?.code === 'string' ? e.code : '';
  if (NETWORK_CODES.has(code) || PG_TRANSIENT.test(code) || code.startsWith('SQLITE_BUSY')) return true;
  // node-postgres: a connection that ended or timed out before it was ready carries no code, only its message.
  const message = typeof e?.message === 'string' ? e.message : '';
  if (/^Connection terminated|^timeout expired|connection timeout/i.test(message)) return true;
  // Node's dual-stack connect: an AggregateError of one refusal per address.
  return Array.isArray(e?.errors) && e.errors.length > 0 && e.errors.every(isStoreUnreachable);
}
