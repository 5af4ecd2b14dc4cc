// Records the sample sessions in examples/sessions/ by running the real gateway: a throwaway
// PostgreSQL 15 cluster seeded with the demo data (examples/demo/seed.sql), the whole gateway
// process (`runGateway`: token verifier with the development issuer, classifier, engine, masker,
// approvals in `return` mode, audit log, recorder) under the example policies
// (examples/policies/), and a realistic mix of agent sessions through the `pg` driver (simple and
// extended protocol, a transaction, masked reads, blocked writes, an approval that a DBA grants).
//
//   npx tsx examples/sessions/record.ts [OUT_DIR]      (default: examples/sessions/)
//
// The round-trip test (replay/roundtrip.test.ts) calls `recordSessions` the same way.

import { copyFileSync, existsSync, mkdirSync, mkdtempSync, readdirSync, readFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { dirname, join, resolve } from 'node:path';
import { fileURLToPath } from 'node:url';
import pg from 'pg';
import { runGateway } from '../../proxy/run.ts';
import { gatewayConfig } from '../../proxy/postgres/test-support.ts';
import { openDevIssuer } from '../../proxy/identity/index.ts';
import { startCluster, type Cluster } from '../../testing/pg-cluster.ts';

const here = dirname(fileURLToPath(import.meta.url));
const root = resolve(here, '..', '..');

export interface RecordOptions {
  /** Where the recordings end up (created if missing). */
  outDir: string;
  /** Policy folder or file the gateway enforces (default examples/policies). */
  policy?: string;
  /** An already running cluster (tests share one); otherwise one is started and stopped. */
  cluster?: Cluster;
}

/** One step of a session: a statement, with the protocol to send it by. */
type Step = { sql: string; params?: unknown[] };

interface SessionPlan {
  sub: string;
  groups: string[];
  actor?: string;
  resource: 'prod-main' | 'staging-main';
  steps: Step[];
}

const PLANS: SessionPlan[] = [
  {
    // An analytics agent: reads (masked), a transaction, a setting, and writes it may not make alone.
    sub: 'agent-analytics',
    groups: ['data-reader'],
    resource: 'prod-main',
    steps: [
      { sql: 'SET statement_timeout = 5000' },
      { sql: 'SELECT count(*) FROM orders' },
      { sql: 'SELECT id, name, email, tier FROM customers ORDER BY id' },
      { sql: 'SELECT id, total FROM orders WHERE status = $1 ORDER BY id LIMIT 5', params: ['paid'] },
      { sql: 'BEGIN' },
      { sql: 'SELECT c.tier, sum(o.total) AS revenue FROM customers c JOIN orders o ON o.customer_id = c.id GROUP BY c.tier ORDER BY c.tier' },
      { sql: 'SELECT id, total FROM orders WHERE id = $1', params: [3] },
      { sql: 'COMMIT' },
      { sql: "UPDATE orders SET status = 'refunded' WHERE id = 3" },
      { sql: 'DELETE FROM orders' },
      { sql: 'DROP TABLE orders' },
      { sql: 'SELECT count(*) FROM orders' },
    ],
  },
  {
    // A support agent acting for a human: reads a customer, asks to change an order (approved by a DBA).
    sub: 'agent-support',
    groups: ['data-writer'],
    actor: 'alice@example.com',
    resource: 'prod-main',
    steps: [
      { sql: 'SELECT id, name, email, card_number FROM customers WHERE id = $1', params: [2] },
      { sql: 'SELECT id, status, total FROM orders WHERE customer_id = 2 ORDER BY id' },
      { sql: "UPDATE orders SET status = 'shipped' WHERE id = 4" },
      // (approved by dba-on-call in between; the same text re-sent runs once)
      { sql: "UPDATE orders SET status = 'shipped' WHERE id = 4" },
      { sql: "COPY customers FROM STDIN" },
      { sql: 'GRANT ALL ON customers TO PUBLIC' },
    ],
  },
  {
    // A DBA's maintenance job: DDL, a bounded delete, an unbounded one that is refused.
    sub: 'dba-maintenance',
    groups: ['dba'],
    resource: 'prod-main',
    steps: [
      { sql: 'CREATE INDEX IF NOT EXISTS orders_status_idx ON orders (status)' },
      { sql: 'ANALYZE orders' },
      { sql: "DELETE FROM orders WHERE status = 'refunded' AND created_at < now() - interval '1 year'" },
      { sql: 'DELETE FROM orders' },
      { sql: 'SELECT count(*) FROM customers' },
    ],
  },
  {
    // The analytics agent on staging: freer, but cards stay masked and unbounded deletes refused.
    sub: 'agent-analytics',
    groups: ['data-reader'],
    resource: 'staging-main',
    steps: [
      { sql: 'SELECT id, email, card_number FROM customers ORDER BY id' },
      { sql: "INSERT INTO orders (id, customer_id, total) VALUES (900, 1, 9.99)" },
      { sql: 'DELETE FROM orders WHERE id = 900' },
      { sql: 'DELETE FROM orders' },
      { sql: 'SELECT count(*) FROM orders' },
    ],
  },
];

/** Runs the session mix through a real gateway; returns the recording files written to `outDir`. */
export async function recordSessions(opts: RecordOptions): Promise<string[]> {
  const ownCluster = !opts.cluster;
  const cluster = opts.cluster ?? (await startCluster());
  const stateDir = mkdtempSync(join(existsSync('/dev/shm') ? '/dev/shm' : tmpdir(), 'hoop-record-'));
  const recDir = join(stateDir, 'sessions');
  try {
    cluster.psql(`${readFileSync(join(root, 'examples/demo/seed.sql'), 'utf8')}\nALTER TABLE customers OWNER TO app; ALTER TABLE orders OWNER TO app;`, 'app');
    const issuer = await openDevIssuer(stateDir);
    const config = gatewayConfig(cluster, stateDir, issuer, 'prod-main');
    config.resources.push({ ...config.resources[0]!, name: 'staging-main', labels: { env: 'staging' } });
    config.resources[0]!.labels = { env: 'prod' };
    config.policy = resolve(opts.policy ?? join(root, 'examples/policies'));
    config.approvals = { mode: 'return', timeoutMs: 15 * 60_000 };
    config.recording = { dir: recDir, results: false };
    config.masking = { hashKey: 'example-sessions-hash-key' };
    const started = await runGateway(config, { log: () => undefined });
    if (!started.ok) throw new Error(`gateway did not start: ${started.errors.join('; ')}`);
    const gw = started.running;
    try {
      for (const plan of PLANS) {
        const token = await issuer.mint({ sub: plan.sub, groups: plan.groups, ...(plan.actor ? { actor: plan.actor } : {}), ttlMs: 600_000 });
        const client = new pg.Client({ host: '127.0.0.1', port: gw.gateway.postgresPort, user: plan.sub, password: token, database: plan.resource, application_name: 'example-agent' });
        await client.connect();
        let pendingApproval: string | undefined;
        for (const step of plan.steps) {
          if (pendingApproval) {
            // A DBA on call approves the pending request before the agent re-sends it.
            const dba = { sub: 'dba-on-call', groups: ['dba'], claims: {} };
            const r = await gw.approvals.decide(pendingApproval, dba, 'approve', 'looks right');
            if (!r.ok) throw new Error(`approval failed: ${r.reason}`);
            pendingApproval = undefined;
          }
          try {
            await client.query(step.sql, step.params);
          } catch (err) {
            const m = /approval required \(([^)]+)\)/.exec((err as Error).message);
            if (m) pendingApproval = m[1];
          }
        }
        await client.end();
      }
    } finally {
      await gw.close();
    }
    // The recorder writes asynchronously; the footers are on disk once every session closed.
    await waitForFooters(recDir, PLANS.length);
    mkdirSync(opts.outDir, { recursive: true });
    const out: string[] = [];
    for (const name of readdirSync(recDir).sort()) {
      copyFileSync(join(recDir, name), join(opts.outDir, name));
      out.push(join(opts.outDir, name));
    }
    return out;
  } finally {
    rmSync(stateDir, { recursive: true, force: true });
    if (ownCluster) await cluster.stop();
  }
}

async function waitForFooters(dir: string, sessions: number): Promise<void> {
  for (let i = 0; i < 100; i++) {
    const files = existsSync(dir) ? readdirSync(dir) : [];
    const done = files.filter((f) => readFileSync(join(dir, f), 'utf8').includes('"type":"footer"')).length;
    if (files.length >= sessions && done >= sessions) return;
    await new Promise((r) => setTimeout(r, 50));
  }
  throw new Error(`recordings in ${dir} did not complete`);
}

if (process.argv[1] && resolve(process.argv[1]) === fileURLToPath(import.meta.url)) {
  const out = resolve(process.argv[2] ?? here);
  recordSessions({ outDir: out }).then(
    (files) => process.stdout.write(`recorded ${files.length} session(s) into ${out}\n`),
    (err: Error) => {
      process.stderr.write(`record: ${err.stack ?? err.message}\n`);
      process.exitCode = 1;
    },
  );
}
