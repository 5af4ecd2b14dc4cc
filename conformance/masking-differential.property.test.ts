// The generative masking differential (issue 14, "find the rest yourselves"): fast-check builds
// SELECTs from a grammar (conformance/arbitraries/masking-sql.ts) over a table whose masked
// columns hold sentinels, runs each through the real gateway (column masks plus the content
// detectors) against a real PostgreSQL 15, once in the simple protocol and once in the extended
// protocol (text or binary results), and fails if a fragment of any sentinel appears in any byte
// the gateway sent for it: rows, row descriptions, notices, errors, COPY data. A refusal is not a
// leak. Each case runs under one of two policies: the mask rule on every statement, or scoped
// with `on tables ["public.people"]` as in the README. A third gateway scopes the mask rule to
// reads (`match sql read`) and allows every write, and each generated SELECT is run as the writes
// that read it: RETURNING, a copy into a clear table (INSERT ... SELECT, CREATE TABLE AS, then a
// read of the copy), and row writes whose constraint errors quote the rows. One cluster, three
// gateways and long sessions serve the whole file.
//
// HOOP_PROPERTY_RUNS=20000 runs it longer; HOOP_MASKING_DIFF_EXCLUDED=1 also generates the
// constructs listed in EXCLUDED (holes other changes are closing); HOOP_DIFF_SURVEY=1 reports
// every leaking case at the end instead of stopping at the first.

import fc from 'fast-check';
import pg from 'pg';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { createResultMasker, type GatewayResultMasker } from '../proxy/masking/index.ts';
import { RawClient } from '../proxy/postgres/raw-client.ts';
import { startTestGateway, type TestGateway } from '../proxy/postgres/test-support.ts';
import { startCluster, type Cluster } from '../testing/pg-cluster.ts';
import { findLeak, includeExcluded, leakNeedles, MASK_RULES, MASKED_READER_KINDS as KINDS, MASKED_READER_POLICY as POLICY, maskingGrammar, PEOPLE, SETUP_SQL } from './arbitraries/masking-sql.ts';
import { propertyRuns, propertyTimeout } from './runs.ts';
import { WireSession, type Protocol } from './wire-session.ts';

// The README's shape: the mask rule scoped to reads of the table (`on tables`), which must see
// the reads through views, the inheritance child, statistics views (issue 14 item 6).
const SCOPED_POLICY = POLICY.replace(`match sql ${KINDS}${MASK_RULES}`, `match sql ${KINDS} on tables ["public.people"]${MASK_RULES}`);
type PolicyName = 'unscoped' | 'on tables';
// Masks for reads only, every write allowed: the policy a team writes to let agents change data
// but not see it (stdlib/sql/read-view.ts decides writes that read as reads too).
const ALL_KINDS = 'unknown, do, call, grant, ddl, truncate, delete, merge, update, insert, copy_from, copy_to, select, set, transaction, explain, utility';
const READS_POLICY = `package t
default block "not allowed"

rule everyone {
  match sql ${ALL_KINDS}
  allow
}

rule mask_people_reads {
  match sql read${MASK_RULES}
}
`;

/**
 * A generated SELECT as the writes that read it, each a list of statements run in order on one
 * session (every byte the gateway sends for any of them is checked). Writes run in a transaction
 * that is rolled back; the copy is made in autocommit, since a masked read inside the
 * transaction that created the table is refused whatever it reads.
 */
function writesThatRead(sql: string): string[][] {
  return [
    ['BEGIN', `INSERT INTO sink (v) SELECT row_to_json(q)::text FROM (${sql}) q RETURNING v`, 'ROLLBACK'],
    ['BEGIN', `UPDATE people SET score = score WHERE EXISTS (${sql}) RETURNING *`, 'ROLLBACK'],
    // NOT NULL: the error quotes the whole failing row.
    ['BEGIN', `UPDATE people SET name = NULL WHERE EXISTS (${sql})`, 'ROLLBACK'],
    ['BEGIN', `DELETE FROM orders WHERE EXISTS (${sql}) RETURNING *, (SELECT row_to_json(p)::text FROM people p WHERE p.id = orders.person_id)`, 'ROLLBACK'],
    ['DROP TABLE IF EXISTS gen_copy', `CREATE TABLE gen_copy AS ${sql}`, 'SELECT * FROM gen_copy', 'DROP TABLE IF EXISTS gen_copy'],
  ];
}

const needles = leakNeedles();
let cluster: Cluster;
let gw: TestGateway;
let gwScoped: TestGateway;
let gwReads: TestGateway;
let readsSessions: Record<'simple' | 'extended', WireSession>;
let masker: GatewayResultMasker;
let sessionsOf: Record<PolicyName, Record<'simple' | 'extended', WireSession>>;
let sessions: Record<'simple' | 'extended', WireSession>;

beforeAll(async () => {
  cluster = await startCluster();
  // A generated cross join must not hold a case for long.
  cluster.psql(`ALTER ROLE ${cluster.appUser.user} SET statement_timeout = '5s'`);
  const setup = new pg.Client({ connectionString: cluster.appUser.url });
  await setup.connect();
  await setup.query(SETUP_SQL);
  await setup.query('CREATE TABLE sink (v text)');
  await setup.end();
  masker = createResultMasker({ catalogFor: () => ({ connection: { connectionString: cluster.appUser.url } }), hashKey: 'differential-key' });
  gw = await startTestGateway(cluster, POLICY, { masker });
  gwScoped = await startTestGateway(cluster, SCOPED_POLICY, { masker }, 'prod-scoped');
  const sessionsFor = async (g: TestGateway): Promise<Record<'simple' | 'extended', WireSession>> => {
    const token = await g.token({ ttlMs: 3_000_000 });
    const login = (): Promise<RawClient> => RawClient.login(g.gateway.postgresPort, token, g.resourceName);
    return { simple: new WireSession(login), extended: new WireSession(login) };
  };
  gwReads = await startTestGateway(cluster, READS_POLICY, { masker }, 'prod-reads');
  sessionsOf = { unscoped: await sessionsFor(gw), 'on tables': await sessionsFor(gwScoped) };
  readsSessions = await sessionsFor(gwReads);
  sessions = sessionsOf.unscoped;
}, 120_000);

afterAll(async () => {
  for (const s of Object.values(sessionsOf ?? {})) {
    s.simple.close();
    s.extended.close();
  }
  readsSessions?.simple.close();
  readsSessions?.extended.close();
  await gwReads?.close();
  await gwScoped?.close();
  await gw?.close();
  await masker?.close();
  await cluster?.stop();
});

describe('the leak oracle', () => {
  it('has sentinels whose fragments are each of one value only', () => {
    const owners = new Map<string, string>();
    for (const p of PEOPLE) {
      for (const [what, word] of [['local', p.local], ['secret', p.secret], ['nick', p.nick], ['tag', p.tags[0]], ['tag', p.tags[1]]] as const) {
        for (let i = 0; i + 4 <= word.length; i++) {
          const f = word.slice(i, i + 4);
          for (const g of [f, [...f].reverse().join('')]) {
            const key = `${p.id} ${what} ${word}`;
            expect(owners.get(g) ?? key, `${g} is in ${owners.get(g)} and ${key}`).toBe(key);
            owners.set(g, key);
          }
        }
      }
    }
  });

  it('is not fooled by the grammar itself: no generated statement spells a fragment (EXPLAIN and errors echo the text)', () => {
    for (const sql of fc.sample(maskingGrammar({ excluded: true }).statement, { numRuns: 3000 })) {
      expect(findLeak(Buffer.from(sql), needles), sql).toBeUndefined();
    }
  });

  it('sees every sentinel in a direct read and none in the clear columns or a masked read through the gateway', async () => {
    const direct = new pg.Client({ connectionString: cluster.appUser.url });
    await direct.connect();
    try {
      for (const col of ['email', 'ssn', 'card', 'secret', 'profile', 'tags', 'salary']) {
        const r = await direct.query({ text: `SELECT ${col}::text AS v FROM people ORDER BY id`, rowMode: 'array' });
        for (const [v] of r.rows as [string][]) expect(findLeak(Buffer.from(v), needles), `${col}: ${v}`).toBeDefined();
      }
      const clear = await direct.query({ text: 'SELECT p.id, p.name, p.score, o.* FROM people p JOIN orders o ON o.person_id = p.id', rowMode: 'array' });
      expect(findLeak(Buffer.from(JSON.stringify(clear.rows)), needles)).toBeUndefined();
    } finally {
      await direct.end();
    }
    // A materialized view filled by a user function that reads people: its rows are people's data
    // under any scope (the README's `on tables` shape once let them through in clear).
    for (const policy of ['unscoped', 'on tables'] as const) {
      const r = await sessionsOf[policy].simple.run('SELECT * FROM mv_fn');
      expect(r.error?.C, policy).toBe('42501');
      expect(findLeak(r.bytes, needles), policy).toBeUndefined();
    }
    const viaGateway = await sessions.simple.run('SELECT * FROM people ORDER BY id');
    expect(viaGateway.error).toBeUndefined();
    expect(viaGateway.messages.filter((m) => m.name === 'dataRow')).toHaveLength(PEOPLE.length);
    expect(findLeak(viaGateway.bytes, needles)).toBeUndefined();
    expect(viaGateway.bytes.includes(Buffer.from(`${PEOPLE[0]!.local[0]}***@example.org`))).toBe(true);
  });
});

describe('generated SELECTs through the gateway', () => {
  it(
    'never send a fragment of a masked value, in either protocol',
    async () => {
      const grammar = maskingGrammar({ excluded: includeExcluded() });
      const stats = { cases: 0, ran: 0, refused: 0, failed: 0 };
      // HOOP_DIFF_SURVEY=1: collect every leaking case instead of stopping (and shrinking) at the first.
      const survey = process.env.HOOP_DIFF_SURVEY === '1';
      const found: string[] = [];
      await fc.assert(
        fc.asyncProperty(grammar.statement, fc.constantFrom<Protocol>('extended-text', 'extended-binary', 'extended-chunked'), fc.constantFrom<PolicyName>('unscoped', 'on tables'), async (sql, extended, policy) => {
          stats.cases++;
          for (const [name, protocol] of [['simple', 'simple'], ['extended', extended]] as const) {
            const r = await sessionsOf[policy][name].run(sql, protocol);
            const leak = findLeak(r.bytes, needles);
            if (leak) {
              const text = r.bytes.toString('latin1');
              const at = text.toLowerCase().indexOf(leak.fragment);
              const report = `${protocol}, ${policy} policy: ${leak.what} (${JSON.stringify(leak.fragment)}) was sent for\n  ${sql}\n  ...${JSON.stringify(text.slice(Math.max(0, at - 60), at + 60))}...`;
              if (!survey) throw new Error(report);
              found.push(report);
            }
            if (name === 'simple') {
              if (!r.error) stats.ran++;
              else if (r.error.C === '42501') stats.refused++;
              else stats.failed++;
            }
          }
        }),
        { numRuns: propertyRuns() },
      );
      if (found.length) console.log(`masking differential found ${found.length} leaks:\n\n${found.join('\n\n')}`);
      expect(found).toEqual([]);
      // The grammar must mostly produce statements that run: a leak test of errors only proves little.
      console.log(`masking differential: ${stats.cases} cases, ran ${stats.ran}, refused ${stats.refused}, failed upstream ${stats.failed}`);
      expect(stats.ran).toBeGreaterThan(stats.cases * 0.25);
    },
    propertyTimeout(150),
  );
});

describe('generated SELECTs as writes that read, under a mask rule scoped to reads', () => {
  it(
    'never send a fragment of a masked value: RETURNING, copies into clear tables and the errors of row writes',
    async () => {
      const grammar = maskingGrammar({ excluded: includeExcluded() });
      const stats = { cases: 0, ran: 0, refused: 0 };
      // How often each form's write ran (not refused, not failed upstream), in the simple protocol.
      const ranByForm = writesThatRead('SELECT 1').map(() => 0);
      await fc.assert(
        fc.asyncProperty(grammar.statement, fc.constantFrom<Protocol>('extended-text', 'extended-binary'), async (sql, extended) => {
          stats.cases++;
          for (const [name, protocol] of [['simple', 'simple'], ['extended', extended]] as const) {
            for (const [f, form] of writesThatRead(sql).entries()) {
              for (const statement of form) {
                const r = await readsSessions[name].run(statement, protocol);
                const leak = findLeak(r.bytes, needles);
                if (leak) {
                  const text = r.bytes.toString('latin1');
                  const at = text.toLowerCase().indexOf(leak.fragment);
                  throw new Error(`${protocol}: ${leak.what} (${JSON.stringify(leak.fragment)}) was sent for\n  ${statement}\n  (form: ${form.join(' / ')})\n  ...${JSON.stringify(text.slice(Math.max(0, at - 60), at + 60))}...`);
                }
                if (name === 'simple' && statement === form[1]) {
                  if (!r.error) {
                    stats.ran++;
                    ranByForm[f]!++;
                  } else if (r.error.C === '42501') stats.refused++;
                }
              }
            }
          }
        }),
        // Each case is ten statements or more in each protocol.
        { numRuns: Math.ceil(propertyRuns() / 10) },
      );
      console.log(`writes-that-read differential: ${stats.cases} cases, ${stats.ran} writes ran (by form: ${ranByForm.join(', ')}), ${stats.refused} refused`);
      // A leak test of refusals only proves little: every form's write must run in some cases, and
      // writes must run in a good share of them (seen: 177 and 256 of 200 cases' five writes).
      for (const [f, n] of ranByForm.entries()) expect(n, `form ${f} never ran`).toBeGreaterThan(0);
      expect(stats.ran).toBeGreaterThan(stats.cases / 2);
    },
    propertyTimeout(1500),
  );
});
