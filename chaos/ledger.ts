/**
 * The downstream "payment service" of the chaos workload: an HTTP server on
 * 127.0.0.1 that applies a payment at most once per idempotency key, and
 * writes every application to a ledger keyed by job, one row each with its own
 * row id, so a job paid twice shows up as two rows. It can be taken down
 * (connections refused) and brought back: the downstream-outage fault.
 *
 * The ledger lives in its own SQLite file, apart from the job store, so a
 * database restart of the job store never touches the evidence.
 */
import Database from 'better-sqlite3';
import { createServer, type IncomingMessage, type Server, type ServerResponse } from 'node:http';
import type { AddressInfo } from 'node:net';
import { join } from 'node:path';

export interface LedgerFigures {
  /** Ledger rows: applications of the effect. */
  applied: number;
  /** Requests that repeated a key already applied (a retry or a crash saved by the key). */
  replayed: number;
  /** Requests refused while the service was down are not counted: they never arrived. */
  requests: number;
  /** Jobs with more than one ledger row: effects applied twice. Must be 0. */
  appliedTwice: number;
}

export class PaymentService {
  private readonly db: Database.Database;
  private server: Server | null = null;
  private port = 0;
  private readonly apply: (jobId: string, key: string, amount: number, now: number) => { row: number; replayed: boolean };

  constructor(dir: string) {
    this.db = new Database(join(dir, 'ledger.db'));
    this.db.pragma('journal_mode = WAL');
    this.db.exec(`
      CREATE TABLE IF NOT EXISTS ledger (row_id INTEGER PRIMARY KEY AUTOINCREMENT, job_id TEXT NOT NULL, key TEXT NOT NULL,
                                         amount INTEGER NOT NULL, at INTEGER NOT NULL);
      CREATE TABLE IF NOT EXISTS idempotency (key TEXT PRIMARY KEY, row_id INTEGER NOT NULL);
      CREATE TABLE IF NOT EXISTS requests (id INTEGER PRIMARY KEY AUTOINCREMENT, job_id TEXT NOT NULL, key TEXT NOT NULL,
                                           outcome TEXT NOT NULL, at INTEGER NOT NULL);`);
    const seen = this.db.prepare<[string], { row_id: number }>('SELECT row_id FROM idempotency WHERE key = ?');
    const insertLedger = this.db.prepare('INSERT INTO ledger (job_id, key, amount, at) VALUES (?, ?, ?, ?)');
    const remember = this.db.prepare('INSERT INTO idempotency (key, row_id) VALUES (?, ?)');
    const logRequest = this.db.prepare('INSERT INTO requests (job_id, key, outcome, at) VALUES (?, ?, ?, ?)');
    // The key check and the ledger write commit together: the service's own exactly-once.
    this.apply = this.db.transaction((jobId: string, key: string, amount: number, now: number) => {
      const prior = seen.get(key);
      if (prior) {
        logRequest.run(jobId, key, 'replayed', now);
        return { row: prior.row_id, replayed: true };
      }
      const row = Number(insertLedger.run(jobId, key, amount, now).lastInsertRowid);
      remember.run(key, row);
      logRequest.run(jobId, key, 'applied', now);
      return { row, replayed: false };
    });
  }

  get url(): string {
    return `http://127.0.0.1:${this.port}`;
  }

  get isUp(): boolean {
    return this.server !== null;
  }

  /** Starts listening (on the same port as before, after `down()`). */
  async up(): Promise<void> {
    if (this.server) return;
    const server = createServer((req, res) => void this.handle(req, res));
    server.keepAliveTimeout = 1000;
    await new Promise<void>((resolve, reject) => {
      server.once('error', reject);
      server.listen(this.port, '127.0.0.1', () => resolve());
    });
    this.port = (server.address() as AddressInfo).port;
    this.server = server;
  }

  /** Stops accepting and drops open connections: callers see ECONNREFUSED or a reset. */
  async down(): Promise<void> {
    const server = this.server;
    if (!server) return;
    this.server = null;
    const closed = new Promise<void>((r) => server.close(() => r()));
    server.closeAllConnections();
    await closed;
  }

  private async handle(req: IncomingMessage, res: ServerResponse) {
    try {
      const key = req.headers['idempotency-key'];
      let body = '';
      for await (const chunk of req) body += chunk;
      const { jobId, amount } = JSON.parse(body) as { jobId: string; amount: number };
      if (req.method !== 'POST' || req.url !== '/pay' || typeof key !== 'string' || typeof jobId !== 'string') {
        res.writeHead(400).end('{"error":"bad request"}');
        return;
      }
      const result = this.apply(jobId, key, amount, Date.now());
      // Answer a little later than the write: a worker killed in this window has paid without knowing it.
      await new Promise((r) => setTimeout(r, Math.floor(Math.random() * 15)));
      res.writeHead(200, { 'content-type': 'application/json' }).end(JSON.stringify(result));
    } catch (err) {
      if (!res.headersSent) res.writeHead(500).end(JSON.stringify({ error: (err as Error).message }));
    }
  }

  figures(): LedgerFigures {
    const one = (sql: string) => (this.db.prepare(sql).get() as { n: number }).n;
    return {
      applied: one('SELECT count(*) AS n FROM ledger'),
      replayed: one("SELECT count(*) AS n FROM requests WHERE outcome = 'replayed'"),
      requests: one('SELECT count(*) AS n FROM requests'),
      appliedTwice: one('SELECT count(*) AS n FROM (SELECT job_id FROM ledger GROUP BY job_id HAVING count(*) > 1)'),
    };
  }

  /** Ledger rows per job id. */
  paidJobs(): Map<string, number> {
    const rows = this.db.prepare('SELECT job_id, count(*) AS n FROM ledger GROUP BY job_id').all() as { job_id: string; n: number }[];
    return new Map(rows.map((r) => [r.job_id, r.n]));
  }

  async close(): Promise<void> {
    await this.down();
    if (this.db.open) this.db.close();
  }
}
