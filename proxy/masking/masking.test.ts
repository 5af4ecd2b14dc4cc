// Lineage and the ResultMasker against a real PostgreSQL 15: every corpus statement is classified
// as expected, and when it may run, its real result (text format, raw DataRow values) goes through
// plan + transformRow and no sentinel value survives.

import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { execFileSync } from 'node:child_process';
import { join } from 'node:path';
import pg from 'pg';
import { startCluster, type Cluster } from '../../testing/pg-cluster.ts';
import { loadStatementParser, statementLineage, type StatementParser } from '../../stdlib/lineage/index.ts';
import type { Decision } from '../../engine/response.ts';
import type { Resource } from '../../stdlib/facts.ts';
import type { ResultField } from '../ports.ts';
import { CORPUS, MASKED_COLUMNS, SENTINEL, SETUP_SQL } from './corpus.ts';
import { PgCatalog } from './pg-catalog.ts';
import { createResultMasker, type GatewayResultMasker } from './index.ts';

const resource: Resource = { kind: 'postgres', name: 'test-db', labels: {} };
const masks: Decision['masks'] = {
  columns: MASKED_COLUMNS.map((m) => ({ column: m.column, masker: { name: m.masker.name, args: [...m.masker.args] }, rule: 'mask_pii' })),
  detectors: [],
};
const SENTINELS = Object.values(SENTINEL);

let cluster: Cluster;
let client: pg.Client;
let catalog: PgCatalog;
let parse: StatementParser;
let masker: GatewayResultMasker;

beforeAll(async () => {
  cluster = await startCluster();
  client = new pg.Client({ connectionString: cluster.appUser.url });
  await client.connect();
  await client.query(SETUP_SQL);
  catalog = new PgCatalog({ connection: { connectionString: cluster.appUser.url } });
  parse = await loadStatementParser();
  masker = createResultMasker({ catalogFor: () => ({ connection: { connectionString: cluster.appUser.url } }), hashKey: 'test-key' });
});

afterAll(async () => {
  await masker?.close();
  await catalog?.close();
  await client?.end();
  await cluster?.stop();
});

/** Runs a statement and returns its fields and raw text-format values, as the wire carries them. */
async function runRaw(sql: string): Promise<{ fields: ResultField[]; rows: (Buffer | null)[][] }> {
  await client.query('BEGIN');
  try {
    const result = await client.query({ text: sql, rowMode: 'array', types: { getTypeParser: () => (v: string) => v } });
    const fields: ResultField[] = result.fields.map((f) => ({
      name: f.name,
      tableOid: f.tableID,
      columnAttr: f.columnID,
      typeOid: f.dataTypeID,
      typeSize: f.dataTypeSize,
      typeModifier: f.dataTypeModifier,
      format: 0,
    }));
    const rows = (result.rows as (string | null)[][]).map((r) => r.map((v) => (v === null ? null : Buffer.from(v, 'utf8'))));
    return { fields, rows };
  } finally {
    await client.query('ROLLBACK');
  }
}

const letter = (f: { t: string; column?: string }): string => {
  if (f.t === 'clear') return 'c';
  if (f.t === 'derived') return 'd';
  if (f.t === 'opaque') return 'o';
  return (
    { 'public.customers.email': 'e', 'public.customers.card_number': 'k', 'public.customers.ssn': 's', 'public.events.contact': 'p', 'public.v_contacts.contact_name': 'v' } as Record<string, string>
  )[f.column ?? ''] ?? '?';
};

describe('masking corpus on PostgreSQL 15', () => {
  it('has at least 40 leak attempts', () => {
    expect(CORPUS.length).toBeGreaterThanOrEqual(40);
  });

  for (const c of CORPUS) {
    it(`${c.expect === 'block' ? 'blocks' : c.expect}: ${c.sql}`, async () => {
      const [stmt] = parse(c.sql);
      const lineage = await statementLineage(stmt.ast, { catalog, masked: new Set(masks.columns.map((m) => m.column)), parse });
      const check = await masker.precheck({ resource, statementText: c.sql, masks });
      if (c.expect === 'block') {
        expect(lineage.blocks.length, 'lineage blocks').toBeGreaterThan(0);
        expect(check.ok).toBe(false);
        if (!check.ok) expect(check.reason).toMatch(/^masking: /);
        return;
      }
      expect(lineage.blocks, 'no blocks').toEqual([]);
      expect(check).toEqual({ ok: true });
      expect(lineage.outputs.filter((o) => !o.spread).map((o) => letter(o.flow)).join('') || lineage.outputs.map((o) => letter(o.flow)).join('')).toBe(c.expect);

      const { fields, rows } = await runRaw(c.sql);
      const plan = await masker.plan({ resource, statementText: c.sql, fields, masks });
      expect(plan.ok).toBe(true);
      if (!plan.ok) return;
      const sent = rows.map((r) => plan.transformRow(r)).flat().map((v) => (v === null ? '' : v.toString('utf8'))).join('\n');
      for (const s of SENTINELS) expect(sent).not.toContain(s);
      if (c.expect.includes('e') && rows.length > 0) expect(sent).toContain('z***@example.org');
    });
  }
});

describe('plan', () => {
  it('masks a direct column by its origin even when the statement text is not understood (FETCH)', async () => {
    await client.query('BEGIN');
    try {
      await client.query('DECLARE cur CURSOR FOR SELECT id, email FROM customers ORDER BY id');
      const r = await client.query({ text: 'FETCH ALL FROM cur', rowMode: 'array', types: { getTypeParser: () => (v: string) => v } });
      const fields: ResultField[] = r.fields.map((f) => ({ name: f.name, tableOid: f.tableID, columnAttr: f.columnID, typeOid: f.dataTypeID, typeSize: f.dataTypeSize, typeModifier: f.dataTypeModifier, format: 0 }));
      const plan = await masker.plan({ resource, statementText: 'FETCH ALL FROM cur', fields, masks });
      expect(plan.ok).toBe(true);
      if (!plan.ok) return;
      const out = plan.transformRow((r.rows[0] as string[]).map((v) => Buffer.from(v)));
      expect(out[1]?.toString()).toBe('z***@example.org');
    } finally {
      await client.query('ROLLBACK');
    }
  });

  it('refuses a computed field it cannot trace (FETCH of an expression)', async () => {
    const fields: ResultField[] = [{ name: 'upper', tableOid: 0, columnAttr: 0, typeOid: 25, typeSize: -1, typeModifier: -1, format: 0 }];
    const plan = await masker.plan({ resource, statementText: 'FETCH ALL FROM cur2', fields, masks });
    expect(plan).toMatchObject({ ok: false });
  });

  it('sends NULL for masked values of non-text types and a JSON string for json', async () => {
    const { fields, rows } = await runRaw("SELECT length(email), to_json(email) FROM customers WHERE id = 1");
    const plan = await masker.plan({ resource, statementText: "SELECT length(email), to_json(email) FROM customers WHERE id = 1", fields, masks });
    if (!plan.ok) throw new Error(plan.reason);
    const [len, json] = plan.transformRow(rows[0]);
    expect(len).toBeNull();
    expect(JSON.parse(json!.toString())).toBe('[REDACTED]');
  });

  it('masks binary-format text columns with a valid binary encoding, other types with NULL', async () => {
    const text = 'SELECT email, ssn, balance FROM customers WHERE id = 1';
    const { fields } = await runRaw(text);
    const binary = fields.map((f) => ({ ...f, format: 1 as const }));
    const plan = await masker.plan({ resource, statementText: text, fields: binary, masks });
    if (!plan.ok) throw new Error(plan.reason);
    const numeric = Buffer.from([0, 2, 0, 0, 0, 0, 0, 1, 0, 12, 0x13, 0x88]); // 12.5
    const out = plan.transformRow([Buffer.from(SENTINEL.email), Buffer.from(SENTINEL.ssn), numeric]);
    expect(out[0]?.toString()).toBe('z***@example.org');
    expect(out[1]?.toString()).toBe('[REDACTED]');
    expect(out[2]).toBe(numeric);
  });

  it('passes rows through untouched when nothing masked is selected', async () => {
    const { fields } = await runRaw('SELECT id, name FROM customers');
    const plan = await masker.plan({ resource, statementText: 'SELECT id, name FROM customers', fields, masks });
    expect(plan).toMatchObject({ ok: true, passthrough: true });
  });

  it('runs content detectors on every text value, and refuses COPY TO while they apply', async () => {
    const detectorMasks: Decision['masks'] = { columns: [], detectors: [{ detectors: [{ name: 'credit_card', args: [] }, { name: 'us_ssn', args: [] }], masker: { name: 'redact', args: [] }, rule: 'detect' }] };
    const text = "SELECT name || ' card ' || card_number AS note, ssn FROM customers WHERE id = 1";
    const { fields, rows } = await runRaw(text);
    expect(await masker.precheck({ resource, statementText: text, masks: detectorMasks })).toEqual({ ok: true });
    const plan = await masker.plan({ resource, statementText: text, fields, masks: detectorMasks });
    if (!plan.ok) throw new Error(plan.reason);
    const out = plan.transformRow(rows[0]).map((v) => v?.toString());
    expect(out).toEqual(['Zed Sentinel card [REDACTED]', '[REDACTED]']);
    expect(await masker.precheck({ resource, statementText: 'COPY orders TO STDOUT', masks: detectorMasks })).toMatchObject({ ok: false });
  });

  it('blocks when a masker cannot be built (hash without a key)', async () => {
    const noKey = createResultMasker({ catalogFor: () => ({ catalog }) });
    const hashMasks: Decision['masks'] = { columns: [{ column: 'public.customers.email', masker: { name: 'hash', args: [] }, rule: 'r' }], detectors: [] };
    expect(await noKey.precheck({ resource, statementText: 'SELECT email FROM customers', masks: hashMasks })).toMatchObject({ ok: false });
    await noKey.close();
  });

  it('hash keeps equal values equal (joins still work)', async () => {
    const hashMasks: Decision['masks'] = { columns: [{ column: 'public.customers.email', masker: { name: 'hash', args: [] }, rule: 'r' }], detectors: [] };
    const text = 'SELECT a.email, b.email FROM customers a JOIN customers b ON a.id = b.id';
    const { fields, rows } = await runRaw(text);
    const plan = await masker.plan({ resource, statementText: text, fields, masks: hashMasks });
    if (!plan.ok) throw new Error(plan.reason);
    const [x, y] = plan.transformRow(rows[0]).map((v) => v?.toString());
    expect(x).toMatch(/^h:[0-9a-f]{64}$/);
    expect(x).toBe(y);
  });

  it('blocks functions of extensions not known to be pure, even when installed in pg_catalog', async () => {
    cluster.psql('CREATE EXTENSION pageinspect SCHEMA pg_catalog', 'app');
    masker.invalidate();
    const r = await masker.precheck({ resource, statementText: "SELECT fsm_page_contents('\\x00'::bytea)", masks });
    expect(r).toMatchObject({ ok: false });
    if (!r.ok) expect(r.reason).toMatch(/extension pageinspect, which is not known to be safe/);
  });

  it("lets psql's catalog queries (\\d, \\dt, \\df, \\l, ...) run while columns are masked", async () => {
    for (const meta of ['\\d customers', '\\d+ v_customers', '\\dt', '\\dv', '\\df', '\\dn', '\\du', '\\l']) {
      const out = execFileSync(join(cluster.binDir, 'psql'), ['-X', '-E', '-h', '127.0.0.1', '-p', String(cluster.port), '-U', 'postgres', '-d', 'app', '-c', meta], { encoding: 'utf8' });
      const queries = [...out.matchAll(/\*{9} QUERY \*{10}\n([\s\S]*?)\n\*{26}/g)].map((m) => m[1]);
      expect(queries.length, meta).toBeGreaterThan(0);
      for (const q of queries) expect(await masker.precheck({ resource, statementText: q, masks }), `${meta}: ${q}`).toEqual({ ok: true });
    }
  });

  it('fails closed when the catalog is unreachable', async () => {
    const broken = createResultMasker({ catalogFor: () => ({ connection: { host: '127.0.0.1', port: 1, user: 'x', connectionTimeoutMillis: 2000 } }) });
    const r = await broken.precheck({ resource: { ...resource, name: 'down' }, statementText: 'SELECT email FROM customers', masks });
    expect(r).toMatchObject({ ok: false });
    await broken.close();
  });
});
