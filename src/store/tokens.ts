/**
 * API tokens for the operator surface (HTTP API and dashboard). Only a hash of
 * each token is stored; the token itself is shown once, when it is created.
 */
export const ROLES = ['viewer', 'operator', 'admin'] as const;
export type Role = (typeof ROLES)[number];

export interface ApiToken {
  id: string;
  name: string;
  role: Role;
  createdAt: number;
  lastUsedAt: number | null;
  revokedAt: number | null;
}

export interface TokenStore {
  /** Stores a new token by its hash. Names are unique among tokens not revoked. */
  createToken(p: { name: string; role: Role; hash: string; now: number }): Promise<ApiToken>;
  /** The live (not revoked) token with this hash, or null. */
  findTokenByHash(hash: string): Promise<ApiToken | null>;
  /** Records a use (at most once a minute per token is enough; the caller decides). */
  touchToken(id: string, now: number): Promise<void>;
  /** Revokes the live token with this name. false: no such live token. */
  revokeToken(name: string, now: number): Promise<boolean>;
  /** Every token, revoked ones included, oldest first. */
  listTokens(): Promise<ApiToken[]>;
  /** Tokens not revoked. */
  countLiveTokens(): Promise<number>;
}

export interface TokenRow {
  id: number;
  name: string;
  role: string;
  created_at: number;
  last_used_at: number | null;
  revoked_at: number | null;
}

export function toToken(r: TokenRow): ApiToken {
  return {
    id: String(r.id),
    name: r.name,
    role: r.role as Role,
    createdAt: Number(r.created_at),
    lastUsedAt: r.last_used_at == null ? null : Number(r.last_used_at),
    revokedAt: r.revoked_at == null ? null : Number(r.revoked_at),
  };
}
