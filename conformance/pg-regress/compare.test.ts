// The regression differential's diff classification, on small hand-made outputs in the shape
// psql -a prints (the suite itself runs with `npm run conformance:pg-regress`).

import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, describe, expect, it } from 'vitest';
import { compareFiles, R_CONSEQUENCE, R_ERROR_MESSAGE, R_PATH, R_PATH_CONSEQUENCE, R_UNKNOWN_NO_HINT, R_UNKNOWN_RAN, R_UNKNOWN_SAME } from './compare.ts';

const dir = mkdtempSync(join(tmpdir(), 'hoop-pgr-test-'));
afterAll(() => rmSync(dir, { recursive: true, force: true }));

function compare(direct: string[], gateway: string[]) {
  writeFileSync(join(dir, 'd.out'), `${direct.join('\n')}\n`);
  writeFileSync(join(dir, 'g.out'), `${gateway.join('\n')}\n`);
  return compareFiles({ directFile: join(dir, 'd.out'), gatewayFile: join(dir, 'g.out'), directOutputDir: '/runs/direct', gatewayOutputDir: '/runs/gw', scratch: dir });
}

const syntaxError = ['SELEC 1;', 'ERROR:  syntax error at or near "SELEC"', 'LINE 1: SELEC 1;', '        ^'];
const refused = ['SELEC 1;', 'ERROR:  hoop: syntax error at or near "SELEC"', 'LINE 1: SELEC 1;', '        ^', 'DETAIL:  not forwarded: blocked: not allowed'];

describe('pg-regress differential classification', () => {
  it('identical outputs, and outputs that differ only by the run directory, are identical', () => {
    expect(compare(['SELECT 1;', ' 1'], ['SELECT 1;', ' 1']).identical).toBe(true);
    expect(compare(['ERROR:  could not open file "/runs/direct/results/x.data"'], ['ERROR:  could not open file "/runs/gw/results/x.data"']).identical).toBe(true);
  });

  it('a refusal with the server parser message after "hoop:" is one reason, counted per refusal', () => {
    const c = compare([...syntaxError, 'SELECT 2;', ...syntaxError], [...refused, 'SELECT 2;', ...refused]);
    expect(c.identical).toBe(false);
    expect(c.reasons).toEqual({ [R_UNKNOWN_SAME]: 2 });
  });

  it('a refusal missing the server HINT is told apart', () => {
    const c = compare([...syntaxError, 'HINT:  try harder.', 'SELECT 2;'], [...refused, 'SELECT 2;']);
    expect(c.reasons).toEqual({ [R_UNKNOWN_NO_HINT]: 1 });
  });

  it('a refusal carrying the server DETAIL before the gateway note is the same message', () => {
    const server = ['CREATE PUBLICATION p FOR t;', 'ERROR:  invalid publication object list', 'LINE 1: CREATE PUBLICATION p FOR t;', '                                 ^', 'DETAIL:  One of TABLE or TABLES IN SCHEMA must be specified.'];
    const gateway = [...server.slice(0, 1), 'ERROR:  hoop: invalid publication object list', ...server.slice(2), 'not forwarded: blocked: not allowed'];
    expect(compare(server, gateway).reasons).toEqual({ [R_UNKNOWN_SAME]: 1 });
  });

  it('refusing a statement the server runs, and what differs after it', () => {
    const direct = ['DO $$ BEGIN EXECUTE 1; END $$;', 'SELECT f();', ' f ', '---', ' 1'];
    const gateway = ['DO $$ BEGIN EXECUTE 1; END $$;', 'ERROR:  hoop: blocked: not allowed by the allow-all policy', 'DETAIL:  no rule allows this statement (default block)', 'SELECT f();', ' f ', '---', ' 2'];
    const c = compare(direct, gateway);
    expect(c.reasons).toEqual({ [R_UNKNOWN_RAN]: 1, [R_CONSEQUENCE]: 1 });
  });

  it('a refusal the gateway makes whatever the policy is not an unknown refusal', () => {
    const between = ['-- a', '-- b', '-- c'];
    const direct = ['CREATE TABLE t2 AS SELECT * FROM t;', ...between, 'SELECT count(*) FROM t2;', ' count ', '-------', '     3'];
    const gateway = [direct[0]!, 'ERROR:  hoop: blocked: the gateway cannot tell which tables unqualified names mean (function f may change search_path); SET search_path again or qualify the table names', ...between, 'SELECT count(*) FROM t2;', 'ERROR:  relation "t2" does not exist'];
    expect(compare(direct, gateway).reasons).toEqual({ [R_PATH]: 1, [R_PATH_CONSEQUENCE]: 1 });
  });

  it('any other difference keeps its own reason', () => {
    const c = compare(['SELECT x;', 'ERROR:  column "x" does not exist'], ['SELECT x;', 'ERROR:  column "y" does not exist']);
    expect(c.reasons).toEqual({ [R_ERROR_MESSAGE]: 1 });
  });
});
