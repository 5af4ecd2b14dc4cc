// The generative differentials through the MCP front door: the same grammars that attack the
// PostgreSQL wire (masking-sql.ts and write-sql.ts), sent as the `query` tool's `sql` by the MCP
// SDK's own client over Streamable HTTP to the whole gateway (`runGateway`, as `hoop gateway` runs
// it) in front of a real PostgreSQL 15. A front door is judged by its weakest path: an agent that
// finds the wire closed tries the tool call.
// - Masking: no fragment of a masked value in anything the tool returns (content text, structured
//   rows, column names, error texts), under the readers' policy with every column of `people`
//   masked.
// - Writes: under the read-only policy, the database's state (conformance/write-state.ts: rows of
//   all tables, sequences, catalog objects, large objects, prepared transactions, other backends'
//   locks, whether a throwaway backend still lives) is the same after every call as before it,
//   whatever the tool answered. A tool call runs in autocommit on a pooled connection that is
//   reset afterwards, so the state is the oracle (no transaction id or session setting outlives a
//   call).
// Fewer cases than the wire's differentials: the statements are the same grammar's, what this adds
// is the path. HOOP_PROPERTY_RUNS raises both, as everywhere.

import fc from 'fast-check';
import pg from 'pg';
import type { Client } from '@modelcontextprotocol/sdk/client/index.js';
import type { CallToolResult } from '@modelcontextprotocol/sdk/types.js';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { startMcpGateway, type McpGateway } from '../proxy/mcp/mcp.test-support.ts';
import { READ_ONLY } from '../proxy/postgres/test-support.ts';
import { startCluster, type Cluster } from '../testing/pg-cluster.ts';
import { findLeak, includeExcluded, leakNeedles, MASKED_READER_POLICY, maskingGrammar, PEOPLE, SETUP_SQL as MASKING_SETUP_SQL } from './arbitraries/masking-sql.ts';
import { FASTPATH, includeWriteExcluded, SETUP_SQL as WRITE_SETUP_SQL, writeGrammar } from './arbitraries/write-sql.ts';
import { propertyRuns, propertyTimeout } from './runs.ts';
import { diffLines, openWriteOracle, type WriteOracle } from './write-state.ts';

const RUNS = Math.ceil(propertyRuns() / 4);
const needles = leakNeedles();

let cluster: Cluster;
let masking: McpGateway;
let readOnly: McpGateway;
let maskingClient: Client;
let readOnlyClient: Client;
let oracle: WriteOracle;

beforeAll(async () => {
  // As the wire's write differential: no autovacuum under the oracle, prepared transactions possible.
  cluster = await startCluster({ config: ['autovacuum = off', 'max_prepared_transactions = 4'] });
  cluster.psql(`ALTER ROLE ${cluster.appUser.user} SET statement_timeout = '5s'`);
  const setup = new pg.Client({ connectionString: cluster.appUser.url });
  await setup.connect();
  await setup.query(MASKING_SETUP_SQL);
  await setup.query(WRITE_SETUP_SQL);
  await setup.end();
  oracle = await openWriteOracle(cluster);
  masking = await startMcpGateway(cluster, MASKED_READER_POLICY, (c) => {
    c.masking = { hashKey: 'mcp-differential-key' };
  });
  readOnly = await startMcpGateway(cluster, READ_ONLY);
  maskingClient = await masking.http(await masking.token({ ttlMs: 3_000_000 }));
  readOnlyClient = await readOnly.http(await readOnly.token({ ttlMs: 3_000_000 }));
}, 120_000);

afterAll(async () => {
  await masking?.close();
  await readOnly?.close();
  await oracle?.close();
  await cluster?.stop();
});

type Outcome = 'ran' | 'refused' | 'failed';

/** One `query` call; what it returned, as the agent gets it, and how it ended. */
async function query(client: Client, sql: string): Promise<{ sent: string; outcome: Outcome; result: CallToolResult }> {
  const result = (await client.callTool({ name: 'query', arguments: { resource: 'prod-main', sql } })) as CallToolResult;
  const reason = (result.structuredContent as { error?: { reason?: string } } | undefined)?.error?.reason;
  const outcome: Outcome = !result.isError ? 'ran' : reason === 'upstream_error' ? 'failed' : 'refused';
  return { sent: JSON.stringify(result), outcome, result };
}

const dbState = (): Promise<string> => oracle.state();

describe('the MCP oracles', () => {
  it('see a masked read masked, a direct read in clear, and a write refused with the state unchanged', async () => {
    const masked = await query(maskingClient, 'SELECT * FROM people ORDER BY id');
    expect(masked.outcome).toBe('ran');
    expect(findLeak(Buffer.from(masked.sent), needles)).toBeUndefined();
    expect(masked.sent).toContain(`${PEOPLE[0]!.local[0]}***@example.org`);
    // The needles do find the values when they are there (JSON-escaped as the tool sends them).
    const clear = await oracle.direct.query({ text: 'SELECT * FROM people ORDER BY id', rowMode: 'array' });
    expect(findLeak(Buffer.from(JSON.stringify(JSON.stringify(clear.rows))), needles)).toBeDefined();

    const before = await dbState();
    const write = await query(readOnlyClient, "INSERT INTO t2 (note) VALUES ('through mcp')");
    expect(write.outcome).toBe('refused');
    expect(diffLines(before, await dbState())).toEqual([]);
    // And the state oracle sees what a write through a direct connection does.
    await oracle.direct.query("SELECT nextval('s')");
    expect(diffLines(before, await dbState()).join('\n')).toContain('rows s =');
  });
});

describe('generated SELECTs as query tool calls', () => {
  it(
    'never return a fragment of a masked value',
    async () => {
      const grammar = maskingGrammar({ excluded: includeExcluded() });
      const stats = { cases: 0, ran: 0, refused: 0, failed: 0 };
      await fc.assert(
        fc.asyncProperty(grammar.statement, async (sql) => {
          stats.cases++;
          const r = await query(maskingClient, sql);
          stats[r.outcome]++;
          const leak = findLeak(Buffer.from(r.sent), needles);
          if (leak) {
            const at = r.sent.toLowerCase().indexOf(leak.fragment);
            throw new Error(`MCP query: ${leak.what} (${JSON.stringify(leak.fragment)}) was returned for\n  ${sql}\n  ...${JSON.stringify(r.sent.slice(Math.max(0, at - 60), at + 60))}...`);
          }
        }),
        { numRuns: RUNS },
      );
      console.log(`MCP masking differential: ${stats.cases} cases, ran ${stats.ran}, refused ${stats.refused}, failed upstream ${stats.failed}`);
      // A leak test of errors only proves little.
      expect(stats.ran).toBeGreaterThan(stats.cases * 0.25);
    },
    propertyTimeout(150),
  );
});

describe('generated statements as query tool calls under a read-only policy', () => {
  it(
    'change nothing in the database, whatever the tool answered',
    async () => {
      const grammar = writeGrammar({ throwawayPid: oracle.throwawayPid, excluded: includeWriteExcluded() });
      const stats = { cases: 0, statements: 0, ran: 0, refused: 0, failed: 0 };
      let before = await dbState();
      await fc.assert(
        fc.asyncProperty(grammar.statements, async (statements) => {
          stats.cases++;
          // A FunctionCall is a wire message; a tool call has no such thing.
          for (const sql of statements.filter((s) => !FASTPATH.test(s))) {
            stats.statements++;
            const r = await query(readOnlyClient, sql);
            stats[r.outcome]++;
            const after = await dbState();
            if (after !== before) {
              const answer = r.result.isError ? 'a tool error' : 'a result';
              throw new Error(`MCP query ${JSON.stringify(sql)} (case ${JSON.stringify(statements)}) answered ${answer} and the database changed:\n${diffLines(before, after).join('\n')}\n${r.sent.slice(0, 400)}`);
            }
            before = after;
          }
        }),
        { numRuns: RUNS },
      );
      console.log(`MCP write differential: ${stats.cases} cases, ${stats.statements} statements: ran ${stats.ran}, refused ${stats.refused}, failed upstream ${stats.failed}`);
      expect(stats.refused).toBeGreaterThan(stats.statements * 0.3);
    },
    propertyTimeout(300),
  );
});
