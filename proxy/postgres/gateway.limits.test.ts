// Guardrails through the real gateway against a real PostgreSQL 15 (issue 11): `limit rate`
// (per identity and rule, refused with 53400 naming the rule and when to retry, one budget across
// replicas on a PostgreSQL state store), cost facts from EXPLAIN (`sql.estimate`: a big UPDATE is
// held for approval, a small one runs, no estimate blocks), and a shadow policy (disagreements in
// the audit record and /metrics, `hoop shadow report`, the active set still enforced).

import { mkdtempSync, readFileSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import pg from 'pg';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { startCluster, type Cluster } from '../../testing/pg-cluster.ts';
import { openApprovalService } from '../approvals/index.ts';
import { createMetrics } from '../metrics.ts';
import { openPgRateLimiter } from '../state/rate-limits.ts';
import { runCli } from '../../cli/testing.ts';
import { createHash } from 'node:crypto';
import { RawClient } from './raw-client.ts';
import { run, startTestGateway, type TestGateway } from './test-support.ts';
import { encodeFrontend } from './wire/frontend.ts';

const md5 = (s: string): string => createHash('md5').update(s).digest('hex');

let cluster: Cluster;

beforeAll(async () => {
  cluster = await startCluster();
  cluster.psql(
    `CREATE TABLE orders (id int PRIMARY KEY, status text);
     INSERT INTO orders SELECT g, 'new' FROM generate_series(1, 50000) g;
     ANALYZE orders;
     ALTER TABLE orders OWNER TO app;`,
    'app',
  );
});
afterAll(async () => {
  await cluster?.stop();
});

async function connect(gw: TestGateway, sub: string): Promise<pg.Client> {
  const c = new pg.Client(gw.pgConfig(await gw.token({ sub })));
  await c.connect();
  return c;
}

/** The SQLSTATE and message of a statement, or 'ok'. */
async function outcome(c: pg.Client, sql: string): Promise<string> {
  try {
    await c.query(sql);
    return 'ok';
  } catch (e) {
    const err = e as { code?: string; message: string; hint?: string };
    return `${err.code}: ${err.message}${err.hint ? ` (${err.hint})` : ''}`;
  }
}

const RATE = `package t
default allow

rule block_unknown {
  match sql unknown
  block
}

rule slow_down {
  when subject "agent-*"
  match sql select
  limit rate 10 per 1h
}
`;

describe('limit rate through the gateway', () => {
  it('three concurrent sessions of one identity share one budget: exactly 10 pass, the rest get 53400 naming the rule and when to retry; another identity is unaffected', async () => {
    const gw = await startTestGateway(cluster, RATE);
    try {
      const sessions = await Promise.all([connect(gw, 'agent-1'), connect(gw, 'agent-1'), connect(gw, 'agent-1')]);
      const results = await Promise.all(sessions.map(async (c) => {
        const out: string[] = [];
        for (let i = 0; i < 6; i++) out.push(await outcome(c, 'SELECT 1'));
        return out;
      }));
      const all = results.flat();
      expect(all.filter((r) => r === 'ok')).toHaveLength(10);
      const refused = all.filter((r) => r !== 'ok');
      expect(refused).toHaveLength(8);
      for (const r of refused) expect(r).toMatch(/^53400: hoop: rate limit exceeded: rule t\.slow_down allows 10 requests per 1h; retry in \d+m \d+s \(retry after \d+m \d+s\)$/);
      // Sessions go on: a statement the rate limit does not cover still runs.
      expect(await outcome(sessions[0]!, 'SET application_name = x')).toBe('ok');
      const other = await connect(gw, 'agent-2');
      expect(await outcome(other, 'SELECT 1')).toBe('ok');
      // Refusals are audited as decisions that did not run, with the rule and the wait.
      const refusedRecords = gw.audit.records.filter((r) => r.type === 'decision' && r.outcome === 'blocked');
      expect(refusedRecords).toHaveLength(8);
      expect(refusedRecords[0]).toMatchObject({ verdict: 'allow', reason: expect.stringMatching(/^rate limit: rule t\.slow_down \(10 per 1h\); retry in/) });
      for (const c of [...sessions, other]) await c.end();
    } finally {
      await gw.close();
    }
  });

  it('the statements of one message are admitted together: a message over the budget runs nothing and spends nothing', async () => {
    const gw = await startTestGateway(cluster, RATE);
    try {
      const c = await connect(gw, 'agent-5');
      // 8 of 10 in one message, each statement a request.
      expect(await outcome(c, 'SELECT 1; SELECT 2; SELECT 3; SELECT 4; SELECT 5; SELECT 6; SELECT 7; SELECT 8')).toBe('ok');
      // Three more do not fit: refused whole, before anything runs.
      expect(await outcome(c, 'SELECT 1; SELECT 2; SELECT 3')).toMatch(/^53400: hoop: rate limit exceeded: rule t\.slow_down allows 10 requests per 1h/);
      // ... and they spent nothing: the last two of the budget are still there.
      expect(await outcome(c, 'SELECT 1; SELECT 2')).toBe('ok');
      expect(await outcome(c, 'SELECT 1')).toMatch(/^53400:/);
      await c.end();
    } finally {
      await gw.close();
    }
  });

  it('two gateway replicas on a PostgreSQL state store spend one budget', async () => {
    const schema = 'rates_replicas';
    const a = await openPgRateLimiter({ connectionString: cluster.url, schema });
    const b = await openPgRateLimiter({ connectionString: cluster.url, schema });
    const one = await startTestGateway(cluster, RATE, { rateLimiter: a });
    const two = await startTestGateway(cluster, RATE, { rateLimiter: b });
    try {
      const c1 = await connect(one, 'agent-9');
      const c2 = await connect(two, 'agent-9');
      const out: string[] = [];
      for (let i = 0; i < 8; i++) out.push(await outcome(c1, 'SELECT 1'), await outcome(c2, 'SELECT 1'));
      expect(out.filter((r) => r === 'ok')).toHaveLength(10);
      expect(out.slice(10).every((r) => r.startsWith('53400:'))).toBe(true);
      await c1.end();
      await c2.end();
    } finally {
      await one.close();
      await two.close();
      await a.close();
      await b.close();
    }
  });
});

const COST = `package t
default block "not allowed"

rule reads {
  match sql read, set, transaction
  allow
}

rule writes {
  match sql update, delete
  allow
}

rule big_writes_need_dba {
  match sql update, delete
  if \`sql.estimate.rows > 10000\`
  approve by group "dba"
}
`;

describe('cost facts through the gateway', () => {
  it('an UPDATE that EXPLAIN says touches 50,000 rows waits for approval, one row runs, an EXPLAIN failure blocks; nothing ran for the EXPLAIN', async () => {
    const approvals = await openApprovalService(mkdtempSync(join(tmpdir(), 'hoop-cost-')), { pollMs: 50 });
    const gw = await startTestGateway(cluster, COST, { approvals }, 'prod-main', (c) => {
      c.approvals = { mode: 'return', timeoutMs: 60_000 };
    });
    try {
      const c = await connect(gw, 'agent-1');
      expect(await outcome(c, "UPDATE orders SET status = 'big' WHERE id > 0")).toMatch(/approval required \(apr_[\w-]+\) by t\.big_writes_need_dba/);
      expect(await outcome(c, "UPDATE orders SET status = 'one' WHERE id = 7")).toBe('ok');
      expect(await outcome(c, 'UPDATE no_such_table SET x = 1')).toMatch(/^42501: hoop: blocked by t\.big_writes_need_dba: rule t\.big_writes_need_dba: condition failed at run time: sql\.estimate: no cost estimate for this statement: EXPLAIN failed: relation "no_such_table" does not exist/);
      expect(cluster.psql(`SELECT count(*) FILTER (WHERE status = 'big'), count(*) FILTER (WHERE status = 'one') FROM orders`, 'app').trim()).toBe('0|1');
      // Reads never asked for an estimate: no rule that applies to them reads one.
      expect(await outcome(c, 'SELECT count(*) FROM orders')).toBe('ok');
      await c.end();
    } finally {
      await gw.close();
      await approvals.close();
    }
  });
});

const ACTIVE = `package t
default allow

rule block_unknown {
  match sql unknown
  block
}
`;

const CANDIDATE = `package t
default allow

rule block_unknown {
  match sql unknown
  block
}

rule no_deletes {
  match sql delete
  block "deletes go through the admin tool"
}

rule cap_reads {
  match sql select
  limit rows 100
}
`;

describe('shadow policy through the gateway', () => {
  it('a candidate that blocks what the active set allows is recorded and counted; the statement still runs; hoop shadow report lists it', async () => {
    const metrics = createMetrics();
    // policy_shadow from the config: the gateway opens (and would reload) the candidate itself.
    const dir = mkdtempSync(join(tmpdir(), 'hoop-candidate-'));
    writeFileSync(join(dir, 'candidate.hoop'), CANDIDATE);
    const gw = await startTestGateway(cluster, ACTIVE, { metrics }, 'prod-main', (c) => {
      c.policyShadow = dir;
    });
    try {
      cluster.psql('CREATE TABLE scratch (id int); INSERT INTO scratch SELECT generate_series(1, 5); ALTER TABLE scratch OWNER TO app;', 'app');
      const c = await connect(gw, 'agent-1');
      expect(await outcome(c, 'DELETE FROM scratch WHERE id = 1')).toBe('ok');
      expect(await outcome(c, 'DELETE FROM scratch WHERE id = 2')).toBe('ok');
      expect(await outcome(c, 'SELECT * FROM scratch')).toBe('ok');
      expect(await outcome(c, 'SET application_name = x')).toBe('ok');
      await c.end();
      expect(cluster.psql('SELECT count(*) FROM scratch', 'app').trim()).toBe('3');

      const decisions = gw.audit.records.filter((r) => r.type === 'decision');
      const deletes = decisions.filter((r) => r.statement?.kind === 'delete');
      expect(deletes).toHaveLength(2);
      for (const d of deletes) {
        expect(d).toMatchObject({ verdict: 'allow', outcome: 'executed', shadow: { verdict: 'block', reasons: ['t.no_deletes'], differs: ['verdict'], message: 'deletes go through the admin tool', policy: expect.stringMatching(/^[0-9a-f]{12}$/) } });
      }
      const read = decisions.find((r) => r.statement?.kind === 'select');
      expect(read?.shadow).toMatchObject({ verdict: 'allow', differs: ['limits'], limits: { rows: { rows: 100, rule: 't.cap_reads' } } });
      expect(decisions.find((r) => r.statement?.kind === 'set')?.shadow).toBeUndefined();

      const text = metrics.render();
      expect(text).toContain('hoop_shadow_disagreements_total{active="allow",shadow="block"} 2');
      expect(text).toContain('hoop_shadow_disagreements_total{active="allow",shadow="allow"} 1');
      expect(text).toMatch(/hoop_shadow_agreements_total [1-9]/);

      const report = await runCli(['shadow', 'report', '--audit', gw.config.audit.file]);
      expect(report.code).toBe(0);
      expect(report.out).toMatch(/shadow rules t\.no_deletes\n {2}2× allow → block {2}fingerprint \w+\n {5}DELETE FROM scratch WHERE id = \$1\n {5}by agent-1 on postgres:prod-main/);
      expect(readFileSync(gw.config.audit.file, 'utf8')).toContain('"shadow":{');
    } finally {
      await gw.close();
    }
  });
});

const ROWS = `package t
default allow

rule block_unknown {
  match sql unknown
  block
}

rule cap_agent_reads {
  when subject "agent-*"
  match sql select, copy_to
  limit rows 1000
}

rule returning_capped {
  match sql update
  limit rows 5
}

rule slow_statements {
  match sql select, call
  if \`sql.text.contains("pg_sleep")\`
  limit time 200ms
}
`;

describe('limit rows and limit time through the gateway', () => {
  let gw: TestGateway;
  let token: string;
  beforeAll(async () => {
    cluster.psql('CREATE TABLE big AS SELECT g AS id, md5(g::text) AS v FROM generate_series(1, 5000000) g; ALTER TABLE big OWNER TO app; CREATE TABLE small (id int); INSERT INTO small SELECT generate_series(1, 20); ALTER TABLE small OWNER TO app;', 'app');
    gw = await startTestGateway(cluster, ROWS);
    token = await gw.token({ sub: 'agent-1' });
  }, 120_000);
  afterAll(async () => {
    await gw?.close();
  });

  const seqRead = (): number => Number(cluster.psql("SELECT coalesce(seq_tup_read, 0) FROM pg_stat_user_tables WHERE relname = 'big'", 'app').trim());
  const active = (pattern: string): string =>
    cluster.psql(`SELECT count(*) FROM pg_stat_activity WHERE state = 'active' AND query LIKE '${pattern}' AND pid <> pg_backend_pid()`, 'app').trim();

  it('psql over a 5,000,000-row table prints 1,000 rows and the notice; the upstream statement was cancelled; the session goes on', async () => {
    const rssBefore = process.memoryUsage().rss;
    const readBefore = seqRead();
    const r = await run(join(cluster.binDir, 'psql'), ['-X', '-A', '-t', '-c', 'SELECT * FROM big', '-c', 'SELECT count(*) FROM small', gw.conninfo(token)]);
    expect(r.code).toBe(0);
    const lines = r.stdout.trim().split('\n');
    expect(lines).toHaveLength(1001);
    expect(lines.slice(0, 1000).every((l) => l.split('|')[1] === md5(l.split('|')[0]!))).toBe(true);
    expect(lines[1000]).toBe('20');
    expect(r.stderr).toContain('NOTICE:  hoop: result truncated at 1000 rows by t.cap_agent_reads');
    expect(active('SELECT * FROM big')).toBe('0');
    // Cancelled, not drained: the server stopped reading the table long before its 5,000,000 rows
    // (its statistics arrive once the backend has reported them).
    let read = 0;
    for (let i = 0; i < 200 && read === 0; i++) {
      read = seqRead() - readBefore;
      if (read === 0) await new Promise((done) => setTimeout(done, 50));
    }
    expect(read).toBeGreaterThan(0);
    expect(read).toBeLessThan(4_000_000);
    // Rows beyond the limit were dropped as they came, never collected.
    expect(process.memoryUsage().rss - rssBefore).toBeLessThan(256 * 1024 * 1024);
    const audit = gw.audit.records.filter((x) => x.type === 'statement_result' && x.statement?.normalized === 'SELECT * FROM big');
    expect(audit.at(-1)).toMatchObject({ outcome: 'executed', rows: 1000 });
  });

  it('a result within the limit is untouched (no notice); inside a transaction the rest is drained and the transaction stays usable', async () => {
    const c = await connect(gw, 'agent-1');
    const notices: string[] = [];
    c.on('notice', (n) => notices.push(n.message ?? ''));
    expect((await c.query('SELECT * FROM small')).rowCount).toBe(20);
    expect(notices).toEqual([]);
    await c.query('BEGIN');
    const r = await c.query('SELECT * FROM big WHERE id <= 3000');
    expect(r.rows).toHaveLength(1000);
    expect(r.rowCount).toBe(1000);
    expect(notices).toEqual(['hoop: result truncated at 1000 rows by t.cap_agent_reads']);
    // Not cancelled: the transaction is still healthy.
    expect((await c.query('SELECT count(*)::int AS n FROM small')).rows[0].n).toBe(20);
    // A cursor: each FETCH is a statement with its own limit.
    await c.query('DECLARE cur CURSOR FOR SELECT id FROM big ORDER BY id');
    expect((await c.query('FETCH 600 FROM cur')).rows).toHaveLength(600);
    const f = await c.query('FETCH 2000 FROM cur');
    expect(f.rows).toHaveLength(1000);
    expect(f.rows[0].id).toBe(601);
    await c.query('COMMIT');
    await c.end();
  });

  it('the extended protocol: a portal fetched 100 rows at a time stops at 1,000 rows in all', async () => {
    const c = await RawClient.login(gw.gateway.postgresPort, token, gw.resourceName);
    c.query('BEGIN');
    await c.until((m) => m.name === 'readyForQuery');
    c.send(Buffer.concat([
      encodeFrontend({ name: 'parse', statement: '', text: 'SELECT id FROM big ORDER BY id', paramTypes: [] }),
      encodeFrontend({ name: 'bind', portal: 'p', statement: '', paramFormats: [], params: [], resultFormats: [] }),
      encodeFrontend({ name: 'sync' }),
    ]));
    await c.until((m) => m.name === 'readyForQuery' && c.messages.filter((x) => x.name === 'readyForQuery').length === 3);
    let rows = 0;
    const ends: string[] = [];
    for (let batch = 0; batch < 12; batch++) {
      const before = c.messages.length;
      c.send(Buffer.concat([encodeFrontend({ name: 'execute', portal: 'p', maxRows: 100 }), encodeFrontend({ name: 'sync' })]));
      await c.until((m) => m.name === 'readyForQuery' && c.messages.indexOf(m) >= before);
      const got = c.messages.slice(before);
      rows += got.filter((m) => m.name === 'dataRow').length;
      const end = got.find((m) => m.name === 'portalSuspended' || m.name === 'commandComplete');
      ends.push(end?.name === 'commandComplete' ? end.tag : end?.name ?? '?');
    }
    expect(rows).toBe(1000);
    // The tenth batch reaches 1,000 rows and cannot know whether more exist; the next one ends the portal.
    expect(ends.slice(0, 10)).toEqual(Array(10).fill('portalSuspended'));
    expect(ends.slice(10)).toEqual(['SELECT 0', 'SELECT 0']);
    expect(c.messages.some((m) => m.name === 'notice' && m.fields.some(([k, v]) => k === 'M' && v === 'hoop: result truncated at 1000 rows by t.cap_agent_reads'))).toBe(true);
    c.query('COMMIT');
    await c.until((m) => m.name === 'commandComplete' && m.tag === 'COMMIT');
    c.destroy();
  });

  it('COPY (SELECT ...) TO STDOUT is cut after 1,000 lines', async () => {
    const r = await run(join(cluster.binDir, 'psql'), ['-X', '-c', 'COPY (SELECT * FROM big) TO STDOUT', '-c', 'SELECT 42', gw.conninfo(token)]);
    expect(r.code).toBe(0);
    const lines = r.stdout.trim().split('\n');
    // Rows of the table (a synchronized scan may start anywhere in it), each exactly once.
    const rows = lines.slice(0, 1000).map((l) => l.split('\t'));
    expect(rows.every(([id, v]) => v === md5(id!))).toBe(true);
    expect(new Set(rows.map(([id]) => id)).size).toBe(1000);
    expect(lines.slice(1000).join('\n')).toMatch(/42/);
    expect(r.stderr).toContain('hoop: result truncated at 1000 rows by t.cap_agent_reads');
    expect(active('COPY (SELECT * FROM big) TO STDOUT')).toBe('0');
  });

  it('a write\'s RETURNING rows are drained, never cancelled: the write runs whole and keeps its tag', async () => {
    const c = await connect(gw, 'agent-1');
    const r = await c.query('UPDATE small SET id = id RETURNING id');
    expect(r.rows).toHaveLength(5);
    expect(r.rowCount).toBe(20);
    await c.end();
  });

  it('limit time 200ms against SELECT pg_sleep(5): 57014 naming the rule, the backend stopped, the session usable after', async () => {
    const c = await connect(gw, 'agent-1');
    expect(await outcome(c, 'SELECT pg_sleep(5)')).toBe('57014: hoop: canceling statement: it ran longer than 200ms, the limit time of rule t.slow_statements');
    expect(active('SELECT pg_sleep(5)')).toBe('0');
    expect((await c.query('SELECT 1 AS one')).rows[0].one).toBe(1);
    await c.end();
  });
});
