/**
 * Who may do what on the operator surface. Tokens are random 32-byte strings
 * sent as `Authorization: Bearer`; the store keeps only their sha256. Every
 * role check of the server goes through `can()`, so the table below is the
 * whole policy (docs/operator.md shows it).
 */
import { createHash, randomBytes } from 'node:crypto';
import type { ApiToken, Role, TokenStore } from '../store/tokens.ts';
import { ApiError } from './errors.ts';

export type Permission =
  | 'read'
  | 'enqueue'
  | 'cancel'
  | 'retry'
  | 'redrive'
  | 'signal'
  | 'breakers'
  | 'schedules'
  | 'purge'
  | 'tokens'
  | 'unmasked';

const VIEWER: Permission[] = ['read'];
const OPERATOR: Permission[] = [...VIEWER, 'enqueue', 'cancel', 'retry', 'redrive', 'signal', 'breakers', 'schedules'];
const ADMIN: Permission[] = [...OPERATOR, 'purge', 'tokens', 'unmasked'];
export const GRANTS: Record<Role, readonly Permission[]> = { viewer: VIEWER, operator: OPERATOR, admin: ADMIN };

export function can(role: Role, permission: Permission): boolean {
  return GRANTS[role].includes(permission);
}

export interface Principal {
  /** The token's name: the actor recorded for every action it takes. */
  name: string;
  role: Role;
  /** true: no tokens exist and the server listens on loopback only, so local callers act as admin. */
  open: boolean;
}

/** What open mode checks of a request before treating its sender as local. */
export interface RequestSource {
  method: string;
  host?: string;
  origin?: string;
  fetchSite?: string;
  /** The port the request arrived on. */
  port?: number;
}

export function generateToken(): string {
  return `rbt_${randomBytes(32).toString('base64url')}`;
}

export function hashToken(token: string): string {
  return createHash('sha256').update(token).digest('hex');
}

export async function createToken(tokens: TokenStore, name: string, role: Role, now: number): Promise<{ token: string; record: ApiToken }> {
  const token = generateToken();
  const record = await tokens.createToken({ name, role, hash: hashToken(token), now });
  return { token, record };
}

export function isLoopback(host: string): boolean {
  return host === 'localhost' || host === '::1' || /^127\.\d+\.\d+\.\d+$/.test(host);
}

export interface AuthenticatorOptions {
  /** The address the server listens on: open mode is only ever allowed on loopback. */
  host: string;
  now?: () => number;
  /** Bad tokens allowed per address per window before 429. */
  maxFailures?: number;
  failureWindowMs?: number;
}

/**
 * Resolves a request's bearer token to a principal. With no live tokens and a
 * loopback address, callers act as a local admin if the request is addressed to
 * loopback and not sent by another site (checkLocalRequest); anywhere else a token is required.
 * Addresses that keep sending bad tokens are refused (429) until their window ends.
 */
export class Authenticator {
  private readonly now: () => number;
  private readonly maxFailures: number;
  private readonly windowMs: number;
  private readonly failures = new Map<string, { count: number; since: number }>();
  private liveCount: { n: number; at: number } | null = null;
  private readonly touched = new Map<string, number>();

  constructor(
    private readonly tokens: TokenStore,
    private readonly opts: AuthenticatorOptions,
  ) {
    this.now = opts.now ?? Date.now;
    this.maxFailures = opts.maxFailures ?? 10;
    this.windowMs = opts.failureWindowMs ?? 60_000;
  }

  /** Whether requests without a token are accepted (no tokens, loopback only). */
  async isOpen(): Promise<boolean> {
    if (!isLoopback(this.opts.host)) return false;
    const now = this.now();
    // Tokens may be created by the CLI while the server runs: look again every second.
    if (!this.liveCount || now - this.liveCount.at > 1000) this.liveCount = { n: await this.tokens.countLiveTokens(), at: now };
    return this.liveCount.n === 0;
  }

  async authenticate(authorization: string | undefined, ip: string, source: RequestSource): Promise<Principal> {
    this.checkNotBlocked(ip);
    const token = bearer(authorization);
    if (!token) {
      if (await this.isOpen()) {
        checkLocalRequest(source, this.opts.host);
        return { name: 'local', role: 'admin', open: true };
      }
      throw new ApiError(401, 'unauthorized', 'send an API token as "Authorization: Bearer <token>" (create one with `rebound token create`)');
    }
    const found = await this.tokens.findTokenByHash(hashToken(token));
    if (!found) {
      this.recordFailure(ip);
      throw new ApiError(401, 'unauthorized', 'the API token is unknown or revoked');
    }
    this.touch(found.id);
    return { name: found.name, role: found.role, open: false };
  }

  /** Forget the cached token count (after a token is created or revoked through the API). */
  invalidate(): void {
    this.liveCount = null;
  }

  private checkNotBlocked(ip: string) {
    const f = this.failures.get(ip);
    if (!f) return;
    const now = this.now();
    if (now - f.since >= this.windowMs) {
      this.failures.delete(ip);
      return;
    }
    if (f.count >= this.maxFailures) {
      const retryAfterSec = Math.max(1, Math.ceil((f.since + this.windowMs - now) / 1000));
      throw new ApiError(429, 'too_many_bad_tokens', `too many bad tokens from this address; try again in ${retryAfterSec} s`, { retryAfterSec });
    }
  }

  private recordFailure(ip: string) {
    const now = this.now();
    const f = this.failures.get(ip);
    if (!f || now - f.since >= this.windowMs) this.failures.set(ip, { count: 1, since: now });
    else f.count++;
    if (this.failures.size > 10_000) this.failures.delete(this.failures.keys().next().value!);
  }

  private touch(id: string) {
    const now = this.now();
    if (now - (this.touched.get(id) ?? 0) < 60_000) return;
    this.touched.set(id, now);
    void this.tokens.touchToken(id, now).catch(() => {});
  }
}

const SAFE_METHODS = ['GET', 'HEAD', 'OPTIONS'];
const OPEN_FIX = 'create an API token (rebound token create --role admin --name NAME) and send it as a bearer header';

/**
 * Open mode trusts the bind address, which a browser on this machine can cross:
 * a DNS-rebinding page reaches loopback under its own name (Host), and any page
 * can send a POST here without reading the answer (Origin, Sec-Fetch-Site).
 * Callers without those headers (curl, the CLI) are unaffected.
 */
export function checkLocalRequest(source: RequestSource, bindHost: string): void {
  const host = parseHost(source.host);
  const port = source.port === undefined || source.port === 80 ? '' : String(source.port);
  const local = host && (isLoopback(host.name) || host.name === bindHost.toLowerCase()) && (source.port === undefined || host.port === port);
  if (!local) {
    throw new ApiError(
      403,
      'untrusted_host',
      `with no API tokens only requests addressed to this machine are served, and the Host header ${JSON.stringify(source.host ?? '')} ` +
        `is not a loopback address with this server's port; open the dashboard at http://127.0.0.1${port && `:${port}`}/ or ${OPEN_FIX}`,
      { field: 'Host' },
    );
  }
  if (SAFE_METHODS.includes(source.method.toUpperCase())) return;
  const foreignOrigin = source.origin !== undefined && originHost(source.origin) !== host.host;
  if (foreignOrigin || source.fetchSite === 'cross-site' || source.fetchSite === 'same-site') {
    const header = foreignOrigin ? 'Origin' : 'Sec-Fetch-Site';
    throw new ApiError(
      403,
      'cross_origin',
      `with no API tokens, changes are accepted only from this server's own pages, and the ${header} header is ` +
        `${JSON.stringify(foreignOrigin ? source.origin : source.fetchSite)}; use the dashboard at http://${host.host}/ or ${OPEN_FIX}`,
      { field: header },
    );
  }
}

const HOST = /^([a-z0-9.-]+|\[[0-9a-f:.]+\])(:\d{1,5})?$/i;

/** A Host value, normalized by URL (`127.1` is `127.0.0.1`): `name` without IPv6 brackets, `port` '' when absent. */
function parseHost(value: string | undefined): { name: string; port: string; host: string } | null {
  if (!value || !HOST.test(value)) return null;
  try {
    const u = new URL(`http://${value}`);
    return { name: u.hostname.replace(/^\[(.*)\]$/, '$1'), port: u.port, host: u.host };
  } catch {
    return null;
  }
}

function originHost(origin: string): string | null {
  try {
    return new URL(origin).host || null;
  } catch {
    return null; // "null": a sandboxed frame or a file
  }
}

function bearer(header: string | undefined): string | null {
  if (!header) return null;
  const m = /^Bearer\s+(\S+)\s*$/i.exec(header);
  return m ? m[1] : null;
}
