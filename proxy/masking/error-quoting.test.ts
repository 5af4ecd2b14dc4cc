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

// Integer positions of listed functions (a masked integer column, `$I`): values whose digits are the marker.
const INT_MARK = '7331';
const HOSTILE_INTS = [-7331, 7331, 733100000, -733100000, 2147437331, -2147437331];
const INT_PROBES = [
  // (repeat/lpad/rpad are left out: a large count builds a string of that size; their only errors are fixed texts)
  "left('abc', $I)", "right('abc', $I)", "split_part('a,b', ',', $I)", "substr('abc', $I)",
  "substr('abc', $I, $I)", "substring('abc' from $I for $I)", "overlay('abc' placing 'x' from $I for $I)", 'nth_value(1, $I) OVER ()', 'ntile($I) OVER ()',
  'lag(1, $I) OVER ()', 'lead(1, $I, 0) OVER ()', 'array_position(ARRAY[1, 2], 1, $I)', 'to_hex($I)', 'abs($I)', 'sign($I)', 'sum($I)', 'avg($I)', '$I + $I', '$I * $I',
  '$I / ($I - $I + 1)', '$I % 0', '$I ^ $I', '$I << 40', "jsonb_build_array(1) -> $I", "jsonb_build_array(1) - $I", "'{\"a\":1}'::jsonb - $I",
];

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
  await client.query('CREATE TABLE mi (id int, n int)');
  await client.query({ text: `INSERT INTO mi SELECT i, n FROM unnest($1::int[]) WITH ORDINALITY AS u(n, i)`, values: [HOSTILE_INTS] });
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

  it('no listed function or operator quotes a masked integer argument', async () => {
    const quoted: string[] = [];
    for (const p of INT_PROBES) {
      for (const id of HOSTILE_INTS.keys()) {
        notices.length = 0;
        const out: string[] = [];
        try {
          await client.query(`SELECT ${p.replaceAll('$I', 'mi.n')} FROM mi WHERE id = ${id + 1}`);
        } catch (e) {
          out.push(texts(e));
        }
        out.push(...notices);
        for (const t of out) if (t.includes(INT_MARK)) quoted.push(`${p}: ${t}`);
      }
    }
    expect(quoted).toEqual([]);
    // The marker would be seen: a function outside the list quotes it.
    await expect(client.query('SELECT chr(n) FROM mi WHERE id = 5')).rejects.toThrow(INT_MARK);
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
