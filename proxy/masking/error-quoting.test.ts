// The evidence behind stdlib/lineage/functions.ts (issue 14 item 5), on a real PostgreSQL 15:
//
// - every ECHO_SAFE entry's probes and every operator probe, with a masked value made of hostile
//   text (bad patterns, bad escapes, hex and JSON prefixes, format specifiers) in each listed
//   position, never produce an error or notice that quotes any of it;
// - every form the list leaves out because the server quotes the argument does quote it when run
//   directly, and the masker refuses it before it runs.

import pg from 'pg';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type { Decision } from '../../engine/response.ts';
import type { Resource } from '../../stdlib/facts.ts';
import { ECHO_SAFE, OPERATOR_PROBES } from '../../stdlib/lineage/functions.ts';
import { startCluster, type Cluster } from '../../testing/pg-cluster.ts';
import { createResultMasker, type GatewayResultMasker } from './index.ts';

// Every value carries the marker; an error quoting even one character of it shows the marker.
const MARK = 'ǂ';
const HOSTILE = [`${MARK}leak`, `\\x${MARK}9`, `${MARK}((`, `[${MARK}`, `{${MARK},`, `%${MARK}*s`, `$.${MARK}`, `\\${MARK}`, `${MARK}&!|`, `0${MARK}`, `*${MARK}`];

/** Forms the list excludes because PostgreSQL quotes the argument (`$M`: the masked value). */
const QUOTING_FORMS = [
  "encode('x'::bytea, $M)",
  "jsonb_set('[1]', ARRAY[$M], '1')",
  "jsonb_insert('[1]', ARRAY[$M], '1')",
  "'[1]'::jsonb #- ARRAY[$M]",
  "('\\x' || $M)::bytea",
  "regexp_replace('a', 'a', 'b', $M)",
  "regexp_match('a', 'a', $M)",
  "regexp_matches('a', 'a', $M)",
  "regexp_like('a', 'a', $M)",
  "regexp_split_to_array('a', 'a', $M)",
  "regexp_count('a', 'a', 1, $M)",
  "regexp_substr('a', 'a', 1, 1, $M)",
  "regexp_instr('a', 'a', 1, 1, 0, $M)",
  "length('x'::bytea, $M)",
  "format('%*s', $M, 'x')",
  "to_tsquery($M)",
  '$M::int',
  '$M::regconfig',
];

const resource: Resource = { kind: 'postgres', name: 'evidence', labels: {} };
const masks: Decision['masks'] = { columns: [{ column: 'public.m.v', masker: { name: 'redact', args: [] }, rule: 'r' }], detectors: [] };

let cluster: Cluster;
let client: pg.Client;
let masker: GatewayResultMasker;
const notices: string[] = [];

beforeAll(async () => {
  cluster = await startCluster();
  client = new pg.Client({ connectionString: cluster.appUser.url });
  await client.connect();
  client.on('notice', (n) => notices.push(texts(n)));
  await client.query('CREATE TABLE m (id int, v text)');
  await client.query({ text: `INSERT INTO m SELECT i, v FROM unnest($1::text[]) WITH ORDINALITY AS u(v, i)`, values: [HOSTILE] });
  masker = createResultMasker({ catalogFor: () => ({ connection: { connectionString: cluster.appUser.url } }) });
});

afterAll(async () => {
  await masker?.close();
  await client?.end();
  await cluster?.stop();
});

/** The text fields of an ErrorResponse or NoticeResponse as node-postgres reports them. */
function texts(e: unknown): string {
  const m = e as Partial<pg.DatabaseError>;
  return [m.message, m.detail, m.hint, m.where, m.internalQuery, m.schema, m.table, m.column, m.dataType, m.constraint, m.routine].join(' | ');
}

/** Every text the server sent about the statement (error fields and notices), one row at a time. */
async function serverTexts(expr: string): Promise<string[]> {
  const out: string[] = [];
  for (const id of HOSTILE.keys()) {
    notices.length = 0;
    try {
      await client.query(`SELECT ${expr.replaceAll('$M', 'm.v')} FROM m WHERE id = ${id + 1}`);
    } catch (e) {
      out.push(texts(e));
    }
    out.push(...notices);
  }
  return out;
}

describe('functions.ts evidence (PostgreSQL 15)', () => {
  it('no listed function or operator quotes a masked argument in an error or notice', async () => {
    const probes = [...new Set([...ECHO_SAFE.values()].flatMap((e) => e.probes)), ...OPERATOR_PROBES];
    expect(probes.length).toBeGreaterThan(100);
    const quoted: string[] = [];
    for (const p of probes) for (const t of await serverTexts(p)) if (t.includes(MARK)) quoted.push(`${p}: ${t}`);
    expect(quoted).toEqual([]);
  });

  it('every excluded form does quote its argument on the server, and the masker refuses it', async () => {
    const notQuoting: string[] = [];
    const notRefused: string[] = [];
    for (const form of QUOTING_FORMS) {
      const texts = await serverTexts(form);
      if (!texts.some((t) => t.includes(MARK))) notQuoting.push(form);
      const sql = `SELECT ${form.replaceAll('$M', 'v')} FROM m`;
      const pre = await masker.precheck({ resource, statementText: sql, masks });
      if (pre.ok) notRefused.push(sql);
    }
    expect(notQuoting).toEqual([]);
    expect(notRefused).toEqual([]);
  });
});
