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
 * loopback address, callers act as a local admin; anywhere else a token is required.
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

  async authenticate(authorization: string | undefined, ip: string): Promise<Principal> {
    this.checkNotBlocked(ip);
    const token = bearer(authorization);
    if (!token) {
      if (await this.isOpen()) return { name: 'local', role: 'admin', open: true };
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

function bearer(header: string | undefined): string | null {
  if (!header) return null;
  const m = /^Bearer\s+(\S+)\s*$/i.exec(header);
  return m ? m[1] : null;
}
