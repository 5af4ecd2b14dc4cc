// Approvals on PostgreSQL, for several gateway replicas sharing one approval state (DESIGN.md
// "State"). Same contract and rules as the file store (rules.ts); concurrency comes from the
// database: a transaction-scoped advisory lock per binding key makes `request` find-or-create
// atomic, row locks make decisions and consumption first-wins, and LISTEN/NOTIFY wakes held
// statements on every replica (with polling as a fallback while a listener reconnects).
//
// Times are the service's clock (passed as parameters), not the database's, so replicas and tests
// agree with the file store's semantics exactly.

import { randomBytes } from 'node:crypto';
import { EventEmitter } from 'node:events';
import pg from 'pg';
import type { Identity } from '../../stdlib/facts.ts';
import type { ApprovalDetails, ApprovalParam, ApprovalRecord, ApprovalRequest, ApprovalStatus } from '../ports.ts';
import { approvalKey, lastingKey, ChangeFeed, checkDecision, requesterActors, effectiveStatus, newApprovalId, PollWhileWaiting, waitUntilSettled, type ApprovalStore } from './rules.ts';

export interface PgApprovalOptions {
  connectionString?: string;
  connection?: pg.ClientConfig;
  /** Schema holding the `approvals` table (created if missing). Default `hoop`. */
  schema?: string;
  now?: () => number;
  /** Fallback polling interval for held statements (ms). Default 1000. */
  pollMs?: number;
}

interface Row {
  id: string;
  key: string;
  sub: string;
  actor: string | null;
  actors: string[] | null;
  resource: string;
  statement: string;
  params: ApprovalParam[] | null;
  details: ApprovalDetails | null;
  quorum: number | null;
  approved_by: string[] | null;
  lasting_ms: string | null;
  lasting_key: string | null;
  lasting_until: Date | null;
  fingerprint: string;
  approvers: string[];
  session_id: string;
  within_ms: string;
  created_at: Date;
  expires_at: Date;
  status: Exclude<ApprovalStatus, 'expired'>;
  decided_by: string | null;
  decided_at: Date | null;
  reason: string | null;
}

type DecideResult = Awaited<ReturnType<ApprovalStore['decide']>>;

export async function openPgApprovalService(opts: PgApprovalOptions): Promise<ApprovalStore> {
  const now = opts.now ?? Date.now;
  const schema = opts.schema ?? 'hoop';
  if (!/^[a-z_][a-z0-9_]*$/.test(schema)) throw new Error(`internal error: invalid approvals schema name ${JSON.stringify(schema)}`);
  const table = `${schema}.approvals`;
  const channel = `hoop_approvals_${schema}`;
  const connection: pg.ClientConfig = { ...(opts.connection ?? {}), ...(opts.connectionString ? { connectionString: opts.connectionString } : {}), application_name: 'hoop-gateway-approvals' };
  const pool = new pg.Pool({ ...connection, max: 4 });
  pool.on('error', () => undefined); // idle client errors: the next query reconnects
  const changes = new EventEmitter();
  changes.setMaxListeners(0);
  let listener: pg.Client | undefined;
  let listening: Promise<void> | undefined;
  let closed = false;
  /** Names this process in its notifications, so it does not hear its own changes twice. */
  const instance = randomBytes(6).toString('hex');
  // Subscribers hear other replicas through LISTEN, which is held from open on: a listener started
  // by the first subscriber missed what another replica announced while it was connecting.
  const feed = new ChangeFeed(() => void listen(), () => undefined);

  /** Tells every replica (held statements, change feeds) once `c`'s transaction commits. */
  async function announce(c: pg.PoolClient | pg.Pool, event: 'requested' | 'decided' | 'consumed', id: string): Promise<void> {
    await c.query(`SELECT pg_notify($1, $2)`, [channel, `${instance} ${event} ${id}`]);
  }

  await withTx(pool, async (c) => {
    // Two replicas starting at once must not race on CREATE.
    await c.query(`SELECT pg_advisory_xact_lock(hashtext($1))`, [`hoop-approvals-schema-${schema}`]);
    await c.query(`CREATE SCHEMA IF NOT EXISTS ${schema}`);
    await c.query(`CREATE TABLE IF NOT EXISTS ${table} (
      id text PRIMARY KEY, key text NOT NULL, sub text NOT NULL, actor text, resource text NOT NULL,
      statement text NOT NULL, fingerprint text NOT NULL, approvers text[] NOT NULL, session_id text NOT NULL,
      within_ms bigint NOT NULL, created_at timestamptz NOT NULL, expires_at timestamptz NOT NULL,
      status text NOT NULL, decided_by text, decided_at timestamptz, reason text)`);
    await c.query(`CREATE INDEX IF NOT EXISTS approvals_key_idx ON ${table} (key, created_at DESC)`);
    await c.query(`ALTER TABLE ${table} ADD COLUMN IF NOT EXISTS params jsonb`);
    await c.query(`ALTER TABLE ${table} ADD COLUMN IF NOT EXISTS actors text[]`);
    await c.query(`ALTER TABLE ${table} ADD COLUMN IF NOT EXISTS details jsonb`);
    await c.query(`ALTER TABLE ${table} ADD COLUMN IF NOT EXISTS quorum int, ADD COLUMN IF NOT EXISTS approved_by text[],
      ADD COLUMN IF NOT EXISTS lasting_ms bigint, ADD COLUMN IF NOT EXISTS lasting_key text, ADD COLUMN IF NOT EXISTS lasting_until timestamptz`);
    await c.query(`CREATE INDEX IF NOT EXISTS approvals_lasting_idx ON ${table} (lasting_key, lasting_until DESC) WHERE lasting_key IS NOT NULL`);
  });

  const iso = (t: number) => new Date(t).toISOString();

  function statusOf(r: Row): ApprovalStatus {
    return effectiveStatus(r.status, r.expires_at.getTime(), now());
  }

  function view(r: Row): ApprovalRecord {
    const out: ApprovalRecord = {
      id: r.id,
      sub: r.sub,
      resource: r.resource,
      statement: r.statement,
      approvers: r.approvers,
      status: statusOf(r),
      created_at: r.created_at.toISOString(),
      expires_at: r.expires_at.toISOString(),
      session_id: r.session_id,
      fingerprint: r.fingerprint,
    };
    if (r.params) out.params = r.params;
    if (r.details) out.details = r.details;
    if (r.quorum !== null && r.quorum > 1) out.quorum = r.quorum;
    if (r.approved_by && r.approved_by.length > 0) out.approved_by = r.approved_by;
    if (r.lasting_ms !== null) out.lasting_ms = Number(r.lasting_ms);
    if (r.lasting_until) out.lasting_until = r.lasting_until.toISOString();
    if (r.actor) out.actor = r.actor;
    if (r.actors) out.actors = r.actors;
    if (r.decided_by) out.decided_by = r.decided_by;
    if (r.decided_at) out.decided_at = r.decided_at.toISOString();
    if (r.reason) out.reason = r.reason;
    return out;
  }

  async function getRow(id: string): Promise<Row | undefined> {
    const r = await pool.query<Row>(`SELECT * FROM ${table} WHERE id = $1`, [id]);
    return r.rows[0];
  }

  function listen(): Promise<void> {
    if (listening) return listening;
    const c = new pg.Client(connection);
    listening = (async () => {
      c.on('notification', (m) => {
        // `<instance> <event> <id>`: this process's own changes were announced to the feed already.
        const [from, event, id] = (m.payload ?? '').split(' ');
        if (!id || !from) return;
        changes.emit(id);
        if (from !== instance && (event === 'requested' || event === 'decided' || event === 'consumed')) feed.emit({ id, event, local: false });
      });
      c.on('error', () => {
        // Reconnect in a second (held statements poll meanwhile; the change feed hears this process only).
        listener = undefined;
        listening = undefined;
        if (!closed) setTimeout(() => void (!closed && listen()), 1000).unref();
      });
      await c.connect();
      await c.query(`LISTEN ${channel}`);
      listener = c;
    })().catch(() => {
      listening = undefined;
      void c.end().catch(() => undefined);
      if (!closed) setTimeout(() => void (!closed && listen()), 1000).unref();
    });
    return listening;
  }

  await listen();

  const poll = new PollWhileWaiting(opts.pollMs ?? 1000, () => {
    for (const name of changes.eventNames()) changes.emit(name);
  });

  return {
    async request(req: ApprovalRequest): Promise<ApprovalRecord> {
      const key = approvalKey(req);
      const t = now();
      let created: string | undefined;
      const rec = await withTx(pool, async (c) => {
        await c.query(`SELECT pg_advisory_xact_lock(hashtext($1))`, [key]);
        const live = await c.query<Row>(
          `SELECT * FROM ${table} WHERE key = $1 AND status IN ('pending', 'approved') AND expires_at >= $2 ORDER BY created_at DESC LIMIT 1`,
          [key, iso(t)],
        );
        if (live.rows[0]) return view(live.rows[0]);
        const ins = await c.query<Row>(
          `INSERT INTO ${table} (id, key, sub, actor, resource, statement, fingerprint, approvers, session_id, within_ms, created_at, expires_at, status, params, actors, details, quorum, lasting_ms, lasting_key)
           VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11, $12, 'pending', $13, $14, $15, $16, $17, $18) RETURNING *`,
          [
            newApprovalId(),
            key,
            req.identity.sub,
            req.identity.actor ?? null,
            `${req.resource.kind}/${req.resource.name}`,
            req.statement,
            req.fingerprint,
            [...new Set(req.approvers)].sort(),
            req.session_id,
            req.withinMs,
            iso(t),
            iso(t + req.withinMs),
            req.params ? JSON.stringify(req.params) : null,
            requesterActors(req.identity) ?? null,
            req.details ? JSON.stringify(req.details) : null,
            req.quorum !== undefined && req.quorum > 1 ? req.quorum : null,
            req.lastingMs ?? null,
            req.lastingMs !== undefined ? lastingKey(req) : null,
          ],
        );
        await announce(c, 'requested', ins.rows[0].id);
        created = ins.rows[0].id;
        return view(ins.rows[0]);
      });
      if (created) feed.emit({ id: created, event: 'requested', local: true });
      return rec;
    },

    async consumeApproved(req: ApprovalRequest): Promise<ApprovalRecord | undefined> {
      const r = await pool.query<Row>(
        `UPDATE ${table} SET status = 'consumed'
         WHERE id = (SELECT id FROM ${table} WHERE key = $1 AND status = 'approved' AND expires_at >= $2 ORDER BY created_at DESC LIMIT 1 FOR UPDATE)
           AND status = 'approved' RETURNING *`,
        [approvalKey(req), iso(now())],
      );
      if (r.rows[0]) {
        await announce(pool, 'consumed', r.rows[0].id);
        feed.emit({ id: r.rows[0].id, event: 'consumed', local: true });
      }
      return r.rows[0] ? view(r.rows[0]) : undefined;
    },

    async consume(id: string): Promise<boolean> {
      const r = await pool.query(`UPDATE ${table} SET status = 'consumed' WHERE id = $1 AND status = 'approved' AND expires_at >= $2`, [id, iso(now())]);
      if (r.rowCount === 1) {
        await announce(pool, 'consumed', id);
        feed.emit({ id, event: 'consumed', local: true });
      }
      return r.rowCount === 1;
    },

    async wait(id: string, signal?: AbortSignal): Promise<ApprovalRecord> {
      const first = await getRow(id);
      if (!first) throw new Error(`internal error: wait() on unknown approval ${id}`);
      if (statusOf(first) !== 'pending') return view(first);
      await listen();
      let latest = first;
      let checking = false;
      // A change announced while a read is in flight may have landed after that read's snapshot:
      // read once more when it finishes, or the notification is lost (and with it the wake-up).
      let again = false;
      const check = (settle: () => void): void => {
        if (checking) {
          again = true;
          return;
        }
        checking = true;
        again = false;
        getRow(id)
          .then((r) => {
            if (r) latest = r;
            if (statusOf(latest) !== 'pending') settle();
          })
          .catch(() => undefined)
          .finally(() => {
            checking = false;
            if (again) check(settle);
          });
      };
      return waitUntilSettled({
        id,
        changes,
        expiresAtMs: first.expires_at.getTime(),
        now,
        check,
        result: () => view(latest),
        ...(signal ? { signal } : {}),
        poll,
      });
    },

    async list(filter?: { status?: ApprovalStatus }): Promise<ApprovalRecord[]> {
      const r = await pool.query<Row>(`SELECT * FROM ${table} ORDER BY created_at, id`);
      return r.rows.map(view).filter((a) => !filter?.status || a.status === filter.status);
    },

    async lasting(req: ApprovalRequest): Promise<ApprovalRecord | undefined> {
      if (req.lastingMs === undefined) return undefined;
      const r = await pool.query<Row>(
        `SELECT * FROM ${table} WHERE lasting_key = $1 AND status IN ('approved', 'consumed') AND lasting_until > $2 ORDER BY lasting_until DESC LIMIT 1`,
        [lastingKey(req), iso(now())],
      );
      return r.rows[0] ? view(r.rows[0]) : undefined;
    },

    async get(id: string): Promise<ApprovalRecord | undefined> {
      const r = await getRow(id);
      return r && view(r);
    },

    subscribe(listener) {
      return feed.subscribe(listener);
    },

    async decide(id: string, approver: Identity, decision: 'approve' | 'deny', reason?: string): Promise<DecideResult> {
      const t = now();
      const r = await withTx(pool, async (c): Promise<DecideResult> => {
        const cur = await c.query<Row>(`SELECT * FROM ${table} WHERE id = $1 FOR UPDATE`, [id]);
        const row = cur.rows[0];
        if (!row) return { ok: false, code: 'not_found', reason: `no approval ${id}` };
        const allowed = checkDecision(view(row), approver);
        if (!allowed.ok) return allowed;
        const approvedBy = [...(row.approved_by ?? [])];
        if (decision === 'approve') {
          approvedBy.push(approver.sub);
          if (approvedBy.length < (row.quorum ?? 1)) {
            // Not yet a quorum: counted, still pending.
            const part = await c.query<Row>(`UPDATE ${table} SET approved_by = $2 WHERE id = $1 RETURNING *`, [id, approvedBy]);
            await announce(c, 'decided', id);
            return { ok: true, record: view(part.rows[0]) };
          }
        }
        const upd = await c.query<Row>(
          `UPDATE ${table} SET status = $2, decided_by = $3, decided_at = $4, reason = $5, approved_by = $6,
             expires_at = CASE WHEN $2 = 'approved' THEN $4::timestamptz + make_interval(secs => within_ms / 1000.0) ELSE expires_at END,
             lasting_until = CASE WHEN $2 = 'approved' AND lasting_ms IS NOT NULL THEN $4::timestamptz + make_interval(secs => lasting_ms / 1000.0) ELSE NULL END
           WHERE id = $1 RETURNING *`,
          [id, decision === 'approve' ? 'approved' : 'denied', approver.sub, iso(t), reason ?? null, approvedBy],
        );
        await announce(c, 'decided', id);
        return { ok: true, record: view(upd.rows[0]) };
      });
      if (r.ok) feed.emit({ id, event: 'decided', local: true });
      return r;
    },

    async close(): Promise<void> {
      if (closed) return;
      closed = true;
      poll.stop();
      await listening;
      await listener?.end().catch(() => undefined);
      await pool.end();
    },
  };
}

async function withTx<T>(pool: pg.Pool, fn: (c: pg.PoolClient) => Promise<T>): Promise<T> {
  const c = await pool.connect();
  try {
    await c.query('BEGIN');
    const out = await fn(c);
    await c.query('COMMIT');
    return out;
  } catch (err) {
    await c.query('ROLLBACK').catch(() => undefined);
    throw err;
  } finally {
    c.release();
  }
}
