// The generative write differential (issue 14, "find the rest yourselves"): fast-check builds
// statements (conformance/arbitraries/write-sql.ts) that try to change state in disguise, and runs
// each through the real gateway under the read-only policy (READ_ONLY) against a real PostgreSQL
// 15, in the simple or the extended protocol, inside a transaction of its own or in autocommit.
// The oracle, taken directly around each statement:
// - `txid_current_if_assigned()` in the statement's own transaction (after a savepoint rollback
//   when the statement failed): the server assigns a transaction id to anything that writes;
// - the locks the session holds while that transaction is still open (beyond its virtualxid and
//   the AccessShareLocks of reading);
// - the database's state (conformance/write-state.ts: rows of all tables, sequences, catalog
//   objects, large objects, prepared transactions, other backends' locks including session
//   advisory locks, whether a throwaway backend still lives), before and after;
// - the session's settings (pg_settings, current_user), which only a statement with a `set` or
//   `transaction` effect may change, and never the identity or text settings.
// Any change is a failure, whatever the gateway answered (a refused statement must not run at all).
//
// HOOP_PROPERTY_RUNS=20000 runs it longer; HOOP_WRITE_DIFF_EXCLUDED=1 also generates the
// constructs listed in WRITE_EXCLUDED; HOOP_DIFF_SURVEY=1 reports every failing case at the end
// instead of stopping at the first.

import fc from 'fast-check';
import pg from 'pg';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { RawClient } from '../proxy/postgres/raw-client.ts';
import { READ_ONLY, startTestGateway, type TestGateway } from '../proxy/postgres/test-support.ts';
import { loadSqlClassifier } from '../stdlib/sql/index.ts';
import { IDENTITY_SETTINGS, TEXT_SETTINGS } from '../stdlib/sql/functions.ts';
import { startCluster, type Cluster } from '../testing/pg-cluster.ts';
import { FASTPATH, FASTPATH_CALLS, includeWriteExcluded, SETUP_SQL, writeGrammar } from './arbitraries/write-sql.ts';
import { propertyRuns, propertyTimeout } from './runs.ts';
import { WireSession, type StatementResult } from './wire-session.ts';
import { createHash } from 'node:crypto';
import { diffLines, openWriteOracle, SESSION_STATE_HASH_SQL, SESSION_STATE_SQL, type WriteOracle } from './write-state.ts';

let cluster: Cluster;
let gw: TestGateway;
let oracle: WriteOracle;
let direct: pg.Client;
let throwawayPid: number;
let session: WireSession;
let classifier: Awaited<ReturnType<typeof loadSqlClassifier>>;
/** OIDs of the functions the FunctionCall cases call, by regprocedure text. */
const functionOids = new Map<string, number>();

// Settings no allowed statement may change: who the session is and how the server reads text.
// search_path is followed by the gateway (issue 14 item 17), so a `set` may change it.
const GUARDED_SETTINGS = new Set([...IDENTITY_SETTINGS, ...TEXT_SETTINGS.keys()].filter((n) => n !== 'search_path'));

beforeAll(async () => {
  // No autovacuum (it would change rows' visibility info and locks under the oracle's feet);
  // prepared transactions enabled so that PREPARE TRANSACTION is a real possibility.
  cluster = await startCluster({ config: ['autovacuum = off', 'max_prepared_transactions = 4'] });
  cluster.psql(`ALTER ROLE ${cluster.appUser.user} SET statement_timeout = '5s'`);
  const setup = new pg.Client({ connectionString: cluster.appUser.url });
  await setup.connect();
  await setup.query(SETUP_SQL);
  await setup.end();
  oracle = await openWriteOracle(cluster);
  ({ direct, throwawayPid } = oracle);
  for (const call of FASTPATH_CALLS) {
    const proc = FASTPATH.exec(`\\fastpath ${call}`)![1]!;
    functionOids.set(proc, Number((await direct.query<{ oid: string }>('SELECT $1::regprocedure::oid AS oid', [proc])).rows[0]!.oid));
  }
  gw = await startTestGateway(cluster, READ_ONLY);
  const token = await gw.token({ ttlMs: 3_000_000 });
  session = new WireSession(() => RawClient.login(gw.gateway.postgresPort, token, gw.resourceName));
  classifier = await loadSqlClassifier();
}, 120_000);

afterAll(async () => {
  session?.close();
  await oracle?.close();
  await gw?.close();
  await cluster?.stop();
});

const dbState = (): Promise<string> => oracle.state();

/** Runs a harness statement through the gateway; it must succeed. */
async function must(sql: string): Promise<StatementResult> {
  const r = await session.run(sql);
  if (r.error) throw new Error(`harness statement ${sql} failed: ${r.error.M}`);
  return r;
}

function firstValue(r: StatementResult): string | null {
  const row = r.messages.find((m) => m.name === 'dataRow');
  const v = row && row.name === 'dataRow' ? row.values[0] : null;
  return v ? v.toString('utf8') : null;
}

function status(r: StatementResult): string {
  const rfq = [...r.messages].reverse().find((m) => m.name === 'readyForQuery');
  return rfq && rfq.name === 'readyForQuery' ? rfq.status : '?';
}

const md5 = (s: string): string => createHash('md5').update(s, 'utf8').digest('hex');

let backendPid = 0;
let lastState: string | undefined;
let settings = '';

/** (Re)connects when needed and reads the session's pid and settings. */
async function ready(): Promise<void> {
  if (session.open && backendPid) return;
  // A new session has no prepared statements. (They outlive cases otherwise: a DEALLOCATE the
  // extended protocol could not run, disguised as two statements, leaves its name to the next case.)
  preparedBodies.clear();
  backendPid = Number(firstValue(await must('SELECT pg_backend_pid()')));
  settings = firstValue(await must(SESSION_STATE_SQL)) ?? '';
}

type Mode = 'transaction' | 'autocommit';

// EXPLAIN without ANALYZE plans the statement, and planning a write locks its target as the write
// would (RowExclusiveLock, or RowShareLock for FOR UPDATE) until the transaction ends. It writes
// nothing, so those two modes are not counted for a text that holds an EXPLAIN (its other
// statements, if they wrote, would have been refused and show otherwise).
const PLANNING_LOCK = /^lock relation \S+ .* (RowExclusiveLock|RowShareLock)$/;
const explainOnly = (sql: string): boolean => classifier.classify(sql).some((a) => a.kind === 'explain');

/**
 * What the session's SQL PREPAREs hold, by name (from the server's answers to PREPARE and
 * DEALLOCATE): `EXECUTE p` runs its prepared statement, so the settings it may change are those of
 * the body (the gateway decides it with the body's facts).
 */
const preparedBodies = new Map<string, string>();
// Anywhere in the text: the generator puts comments, blanks and other statements around it.
const PREPARE_AS = /\bPREPARE(?:\s|\/\*.*?\*\/)+("[^"]+"|\w+)\s+AS\s+([\s\S]*?)[\s;]*$/i;
const EXECUTE_NAME = /\bEXECUTE(?:\s|\/\*.*?\*\/)+("[^"]+"|\w+)/gi;
const DEALLOCATE_NAME = /\bDEALLOCATE(?:\s|\/\*.*?\*\/)+(?:PREPARE\s+)?("[^"]+"|\w+)/i;
const nameOf = (n: string): string => (n.startsWith('"') ? n.slice(1, -1) : n.toLowerCase());
/** The texts an EXECUTE in `sql` may run (the bodies of the case's PREPAREs it names), else `sql`. */
function executedBodies(sql: string): string[] {
  const bodies = [...sql.matchAll(EXECUTE_NAME)].flatMap((m) => preparedBodies.get(nameOf(m[1]!)) ?? []);
  return [sql, ...bodies];
}

/** Runs one statement under the oracle; returns what changed (empty: nothing). */
async function observe(sql: string, protocol: 'simple' | 'extended-text', mode: Mode): Promise<{ problems: string[]; result: StatementResult }> {
  await ready();
  const problems: string[] = [];
  // The state after the previous statement is the state before this one: the harness's own
  // statements between them (the tail below, RESET ALL) change none of it. An effect that shows
  // late (a terminated backend exits after the call returns) is then still caught, one statement on.
  const before = lastState ?? (await dbState());
  if (mode === 'transaction') await must('BEGIN; SAVEPOINT hoop_diff');
  const fastpath = FASTPATH.exec(sql);
  const result = fastpath ? await session.functionCall(functionOids.get(fastpath[1]!)!, fastpath[2] === undefined ? [] : fastpath[2].split('|')) : await session.run(sql, protocol);
  const prepared = PREPARE_AS.exec(sql);
  if (prepared && !result.error) preparedBodies.set(nameOf(prepared[1]!), prepared[2]!);
  const deallocated = DEALLOCATE_NAME.exec(sql);
  if (deallocated && !result.error) {
    if (deallocated[1]!.toUpperCase() === 'ALL') preparedBodies.clear();
    else preparedBodies.delete(nameOf(deallocated[1]!));
  }
  let settingsHash: string | null = null;
  if (!session.open) {
    backendPid = 0;
  } else {
    const st = status(result);
    if (st !== 'I') {
      const locks = (await direct.query<{ l: string }>('SELECT hoop_oracle.locks_of($1) AS l', [backendPid])).rows[0]!.l
        .split('\n')
        .filter((l) => l && !(explainOnly(sql) && PLANNING_LOCK.test(l)))
        .join('\n');
      if (locks) problems.push(`locks held while the statement's transaction is open:\n${locks}`);
    }
    // One message: back out of a failed statement, read the transaction id, end the transaction,
    // read the session's settings (after the end: SET LOCAL is gone, SET stays).
    const undo = st === 'E' ? (mode === 'transaction' ? 'ROLLBACK TO SAVEPOINT hoop_diff; ' : 'ROLLBACK; ') : '';
    const readXid = st === 'T' || (st === 'E' && mode === 'transaction');
    const tail = `${undo}${readXid ? 'SELECT txid_current_if_assigned(); COMMIT; ' : ''}${SESSION_STATE_HASH_SQL}`;
    const r = await must(tail);
    const rows = r.messages.flatMap((m) => (m.name === 'dataRow' ? [m.values[0] ? m.values[0].toString('utf8') : null] : []));
    if (readXid && rows[0] !== null) problems.push(`a transaction id was assigned (${rows[0]})`);
    settingsHash = rows[rows.length - 1] ?? null;
  }
  const after = await dbState();
  lastState = after;
  if (after !== before) problems.push(`the database changed:\n${diffLines(before, after).join('\n')}`);
  if (session.open && settingsHash !== md5(settings)) {
    const now = firstValue(await must(SESSION_STATE_SQL)) ?? '';
    const changed = diffLines(settings, now);
    const names = new Set(changed.map((l) => l.slice(2).split('=')[0]!.toLowerCase()));
    const mayChange = executedBodies(sql).some((t) => classifier.classify(t).some((a) => a.effects.some((e) => e === 'set' || e === 'transaction')));
    const guarded = [...names].filter((n) => GUARDED_SETTINGS.has(n) || n.includes(' '));
    if (!mayChange || guarded.length) problems.push(`the session's settings changed:\n${changed.join('\n')}`);
    // Back to the defaults so the next case starts from the same session.
    await must('RESET ALL');
    settings = firstValue(await must(SESSION_STATE_SQL)) ?? '';
  }
  return { problems, result };
}

describe('the write oracle', () => {
  it('sees a write, a sequence step, an advisory lock, a large object and a setting through a direct connection', async () => {
    const probe = new pg.Client({ connectionString: cluster.appUser.url });
    await probe.connect();
    try {
      const before = await dbState();
      await probe.query("BEGIN; INSERT INTO t2 (note) VALUES ('probe')");
      expect((await probe.query('SELECT txid_current_if_assigned() AS x')).rows[0].x).not.toBeNull();
      await probe.query('ROLLBACK');
      await probe.query("SELECT nextval('s')");
      const diff = diffLines(before, await dbState()).join('\n');
      expect(diff).toContain('rows s =');
      // The rolled-back INSERT took a transaction id: the cluster's next one moved.
      expect(diff).toContain('next transaction id');
      const b2 = await dbState();
      await probe.query('SELECT pg_advisory_lock(99)');
      expect(diffLines(b2, await dbState()).join('\n')).toContain('advisory');
      await probe.query('SELECT pg_advisory_unlock_all()');
      const b3 = await dbState();
      await probe.query('SELECT lo_creat(-1)');
      expect(diffLines(b3, await dbState()).join('\n')).toContain('large objects');
    } finally {
      await probe.end();
    }
    // Through the gateway, reads change nothing and writes are refused (also as FunctionCalls).
    for (const [sql, refused] of [['SELECT * FROM t', false], ['DELETE FROM t', true], ['\\fastpath md5(text) ABC', false], ['\\fastpath nextval(regclass) s', true], ['\\fastpath public.lower(integer) 1', true]] as const) {
      const { problems, result } = await observe(sql, 'simple', 'transaction');
      expect(problems, sql).toEqual([]);
      expect(result.error?.C, sql).toBe(refused ? '42501' : undefined);
      if (!refused) expect(result.messages.some((m) => m.name === 'dataRow' || m.name === 'functionCallResponse'), sql).toBe(true);
    }
  });
});

describe('generated statements under a read-only policy', () => {
  it(
    'change nothing: no transaction id, no lock, no row, sequence, object or setting',
    async () => {
      const grammar = writeGrammar({ throwawayPid, excluded: includeWriteExcluded() });
      const stats = { cases: 0, statements: 0, ran: 0, refused: 0, failed: 0 };
      // HOOP_DIFF_SURVEY=1: collect every failing case instead of stopping (and shrinking) at the first.
      const survey = process.env.HOOP_DIFF_SURVEY === '1';
      const found: string[] = [];
      await fc.assert(
        fc.asyncProperty(grammar.statements, fc.constantFrom<'simple' | 'extended-text'>('simple', 'extended-text'), fc.constantFrom<Mode>('transaction', 'autocommit'), async (statements, protocol, mode) => {
          stats.cases++;
          for (const sql of statements) {
            stats.statements++;
            const { problems, result } = await observe(sql, protocol, mode);
            if (!result.error) stats.ran++;
            else if (result.error.C === '42501') stats.refused++;
            else stats.failed++;
            if (problems.length) {
              // Start the next (shrinking) case from a fresh session and a fresh state.
              session.close();
              backendPid = 0;
              lastState = undefined;
              const answer = result.error ? `${result.error.C} ${result.error.M}` : 'ran';
              const report = `${protocol}, ${mode}: ${JSON.stringify(sql)} (case ${JSON.stringify(statements)}) -> ${answer}\n${problems.join('\n')}`;
              if (!survey) throw new Error(report);
              found.push(report);
              return;
            }
          }
        }),
        { numRuns: propertyRuns() },
      );
      if (found.length) console.log(`write differential found ${found.length} failing cases:\n\n${found.join('\n\n')}`);
      expect(found).toEqual([]);
      console.log(`write differential: ${stats.cases} cases, ${stats.statements} statements: ran ${stats.ran}, refused ${stats.refused}, failed upstream ${stats.failed}`);
      expect(stats.refused).toBeGreaterThan(stats.statements * 0.3);
    },
    propertyTimeout(300),
  );
});
