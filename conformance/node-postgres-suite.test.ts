// How the node-postgres differential reads a file's output (the suite itself runs with
// `npm run conformance:node-postgres`; see docs/conformance.md).

import { describe, expect, it } from 'vitest';
import { failingTest, failureOf, mochaFailure } from './node-postgres-suite.ts';

const gatewayRun = `error-handling-tests.js
  re-using connections results in error callback ✔
  when query is parsing (node:14310) DeprecationWarning: Calling client.query() when the client is already executing a query is deprecated
(Use \`node --trace-deprecation ...\` to show where the warning was created)
✔
  when a query is binding ✔
  non-query error with callback Message: The expression evaluated to a falsy value:

  assert(error instanceof Error)

AssertionError [ERR_ASSERTION]: The expression evaluated to a falsy value:

  assert(error instanceof Error)

    at Client.<anonymous> (/tmp/node-postgres/packages/pg/test/integration/client/error-handling-tests.js:155:7)
`;

const timedOut = `error-handling-tests.js
  when query is parsing (node:13733) DeprecationWarning: Calling client.query() when the client is already executing a query is deprecated
(Use \`node --trace-deprecation ...\` to show where the warning was created)
✔
  connected, idle client error ✔
  cannot pass non-string values to query as text `;

describe('reading a node-postgres test file run', () => {
  it('names the test that failed and its first error line', () => {
    expect(failingTest(gatewayRun)).toBe('non-query error with callback');
    expect(failureOf(gatewayRun, false)).toBe('AssertionError [ERR_ASSERTION]: The expression evaluated to a falsy value:');
  });

  it('a test whose check mark follows a warning passed; a killed file names the test it was in', () => {
    expect(failingTest(timedOut)).toBe('cannot pass non-string values to query as text');
    expect(failureOf(timedOut, true)).toBe('timed out');
  });

  it("the suite runner's own FAILED! line", () => {
    const out = 'x.js\n  it sets search_path on connection FAILED!\n\nAssertionError [ERR_ASSERTION]: Expected values to be strictly equal:\n';
    expect(failingTest(out)).toBe('it sets search_path on connection');
    expect(failureOf(out, false)).toBe('AssertionError [ERR_ASSERTION]: Expected values to be strictly equal:');
  });
});

describe('a failure on the test\'s own line', () => {
  it('ends the name at the error', () => {
    const out = 'ssl-tests.js\n  can connect with ssl Error: The server does not support SSL connections\n    at x\n';
    expect(failingTest(out)).toBe('can connect with ssl');
    expect(failureOf(out, false)).toBe('Error: The server does not support SSL connections');
  });
});

describe("mocha's JSON report (pg-cursor, pg-pool)", () => {
  it('names the first failing test and counts the passes', () => {
    const report = JSON.stringify({
      stats: { passes: 9, failures: 1 },
      failures: [{ fullTitle: 'connection timeout should connect if timeout is passed', err: { message: "Cannot read properties of null (reading 'Client')\nmore" } }],
    });
    expect(mochaFailure(report)).toEqual({ test: 'connection timeout should connect if timeout is passed', failure: "Cannot read properties of null (reading 'Client')", passed: 9 });
    expect(mochaFailure(JSON.stringify({ stats: { passes: 3 }, failures: [] }))).toEqual({ test: '', failure: '', passed: 3 });
    expect(mochaFailure('not json')).toBeUndefined();
  });
});
