/** API tokens on SQLite (see ../tokens.ts). */
import type Database from 'better-sqlite3';
import { ValidationError } from '../../errors.ts';
import { toToken, type ApiToken, type Role, type TokenRow, type TokenStore } from '../tokens.ts';
import { writeTransaction } from './write-lock.ts';

export class SqliteTokenStore implements TokenStore {
  constructor(private readonly db: Database.Database) {}

  async createToken(p: { name: string; role: Role; hash: string; now: number }): Promise<ApiToken> {
    const insert = this.db.prepare('INSERT INTO api_tokens (name, role, token_hash, created_at) VALUES (?, ?, ?, ?) RETURNING *');
    try {
      const row = (await writeTransaction(this.db, () => insert.get(p.name, p.role, p.hash, p.now))) as TokenRow;
      return toToken(row);
    } catch (err) {
      if ((err as { code?: string }).code === 'SQLITE_CONSTRAINT_UNIQUE') {
        throw new ValidationError('name', `a live token named "${p.name}" already exists; revoke it first or pick another name`);
      }
      throw err;
    }
  }

  async findTokenByHash(hash: string): Promise<ApiToken | null> {
    const row = this.db.prepare('SELECT * FROM api_tokens WHERE token_hash = ? AND revoked_at IS NULL').get(hash) as TokenRow | undefined;
    return row ? toToken(row) : null;
  }

  async touchToken(id: string, now: number): Promise<void> {
    const touch = this.db.prepare('UPDATE api_tokens SET last_used_at = ? WHERE id = ?');
    await writeTransaction(this.db, () => touch.run(now, Number(id)));
  }

  async revokeToken(name: string, now: number): Promise<boolean> {
    const revoke = this.db.prepare('UPDATE api_tokens SET revoked_at = ? WHERE name = ? AND revoked_at IS NULL');
    return (await writeTransaction(this.db, () => revoke.run(now, name))).changes > 0;
  }

  async listTokens(): Promise<ApiToken[]> {
    return (this.db.prepare('SELECT * FROM api_tokens ORDER BY id').all() as TokenRow[]).map(toToken);
  }

  async countLiveTokens(): Promise<number> {
    return (this.db.prepare('SELECT count(*) AS n FROM api_tokens WHERE revoked_at IS NULL').get() as { n: number }).n;
  }
}
