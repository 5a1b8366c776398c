/** API tokens on PostgreSQL (see ../tokens.ts). The pool's search_path is the store's schema. */
import type pg from 'pg';
import { ValidationError } from '../../errors.ts';
import { toToken, type ApiToken, type Role, type TokenRow, type TokenStore } from '../tokens.ts';

export class PostgresTokenStore implements TokenStore {
  constructor(private readonly pool: pg.Pool) {}

  async createToken(p: { name: string; role: Role; hash: string; now: number }): Promise<ApiToken> {
    try {
      const { rows } = await this.pool.query<TokenRow>(
        'INSERT INTO api_tokens (name, role, token_hash, created_at) VALUES ($1, $2, $3, $4) RETURNING *',
        [p.name, p.role, p.hash, p.now],
      );
      return toToken(rows[0]);
    } catch (err) {
      if ((err as { code?: string }).code === '23505') {
        throw new ValidationError('name', `a live token named "${p.name}" already exists; revoke it first or pick another name`);
      }
      throw err;
    }
  }

  async findTokenByHash(hash: string): Promise<ApiToken | null> {
    const { rows } = await this.pool.query<TokenRow>('SELECT * FROM api_tokens WHERE token_hash = $1 AND revoked_at IS NULL', [hash]);
    return rows[0] ? toToken(rows[0]) : null;
  }

  async touchToken(id: string, now: number): Promise<void> {
    await this.pool.query('UPDATE api_tokens SET last_used_at = $1 WHERE id = $2', [now, Number(id)]);
  }

  async revokeToken(name: string, now: number): Promise<boolean> {
    const r = await this.pool.query('UPDATE api_tokens SET revoked_at = $1 WHERE name = $2 AND revoked_at IS NULL', [now, name]);
    return (r.rowCount ?? 0) > 0;
  }

  async listTokens(): Promise<ApiToken[]> {
    const { rows } = await this.pool.query<TokenRow>('SELECT * FROM api_tokens ORDER BY id');
    return rows.map(toToken);
  }

  async countLiveTokens(): Promise<number> {
    const { rows } = await this.pool.query<{ n: number }>('SELECT count(*)::int AS n FROM api_tokens WHERE revoked_at IS NULL');
    return rows[0].n;
  }
}
