import { mkdtempSync, readFileSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { describe, expect, it } from 'vitest';
import { runCli } from '../testing.ts';

const examples = 'examples/policies';

function tempPolicy(files: Record<string, string>): string {
  const dir = mkdtempSync(join(tmpdir(), 'hoop-cli-'));
  for (const [name, text] of Object.entries(files)) writeFileSync(join(dir, name), text);
  return dir;
}

const threeErrors = `package t

rule a {
  match sql selct
  allow
}

rule b {
  on postgress("x")
  mask column "customers.email" with emial
  allow
}
`;

const failing = `package t
rule readers {
  when group "reader"
  match sql select
  allow
}
rule no_deletes {
  match sql delete
  block "no deletes"
}
test "reader may delete" {
  identity { sub: "a", groups: ["reader"] }
  resource postgres("db")
  sql "DELETE FROM t WHERE id = 1"
  expect allow
}
test "reader reads" {
  identity { sub: "a", groups: ["reader"] }
  resource postgres("db")
  sql "SELECT 1"
  expect allow
  expect rules [readers]
}
`;

describe('hoop policy check', () => {
  it('accepts the examples and summarises them', async () => {
    const r = await runCli(['policy', 'check', examples]);
    expect(r.code).toBe(0);
    expect(r.out).toMatch(/^ok: 6 file\(s\), 18 rule\(s\), \d+ test\(s\)/);
  });

  it('reports every error with file:line:col and exits 2', async () => {
    const dir = tempPolicy({ 'bad.hoop': threeErrors });
    const r = await runCli(['policy', 'check', dir]);
    expect(r.code).toBe(2);
    expect(r.err).toContain('bad.hoop:4:13: error[HOOP2001]: unknown statement kind `selct`');
    expect(r.err).toContain('bad.hoop:9:6: error[HOOP2002]');
    expect(r.err).toContain('bad.hoop:10:38: error[HOOP2003]');
    expect(r.err).toContain('did you mean `email`?');
    expect(r.err).toContain('3 errors');
  });

  it('prints diagnostics as JSON on request', async () => {
    const dir = tempPolicy({ 'bad.hoop': threeErrors });
    const r = await runCli(['policy', 'check', dir, '--error-format', 'json']);
    expect(r.code).toBe(2);
    const parsed = JSON.parse(r.out) as { diagnostics: { code: string }[] };
    expect(parsed.diagnostics.map((d) => d.code)).toEqual(['HOOP2001', 'HOOP2002', 'HOOP2003']);
  });
});

describe('hoop policy fmt', () => {
  it('--check flags a file that is not canonical and --write fixes it', async () => {
    const dir = tempPolicy({ 'p.hoop': 'rule   r{match sql select\nallow}\n' });
    const check = await runCli(['policy', 'fmt', '--check', dir]);
    expect(check.code).toBe(1);
    expect(check.out).toContain('p.hoop');
    const write = await runCli(['policy', 'fmt', '--write', dir]);
    expect(write.code).toBe(0);
    expect(readFileSync(join(dir, 'p.hoop'), 'utf8')).toBe('rule r {\n  match sql select\n  allow\n}\n');
    expect((await runCli(['policy', 'fmt', '--check', dir])).code).toBe(0);
  });

  it('keeps the examples canonical', async () => {
    expect((await runCli(['policy', 'fmt', '--check', examples])).code).toBe(0);
  });
});

describe('hoop policy test', () => {
  it('passes on the examples with full coverage', async () => {
    const r = await runCli(['policy', 'test', examples, '--coverage', '--threshold', '100']);
    expect(r.err).toBe('');
    expect(r.out).toMatch(/^\d+ passed, 0 failed$/m);
    expect(r.out).toContain('coverage: 100%');
    expect(r.code).toBe(0);
  });

  it('shows expected and actual verdicts and the explanation of a failure, exit 1', async () => {
    const dir = tempPolicy({ 'p_test.hoop': failing });
    const r = await runCli(['policy', 'test', dir]);
    expect(r.code).toBe(1);
    expect(r.out).toContain('FAIL  reader may delete');
    expect(r.out).toMatch(/p_test\.hoop:15:3: expected verdict allow, got verdict block \("no deletes"\)/);
    expect(r.out).toMatch(/t\.readers\s+skipped at match/);
    expect(r.out).toContain('1 passed, 1 failed');
  });

  it('tests give the RFC 8693 chain and the client id as identity.actors and identity.client_id', async () => {
    const dir = tempPolicy({
      'p_test.hoop': `package t
rule for_alice {
  match sql delete
  if \`"alice" in identity.actors && identity.client_id == "agents-app"\`
  allow
}
test "the agent acting for alice through a planner may delete" {
  identity { sub: "agent-7", groups: [], actors: ["planner", "alice"], client_id: "agents-app" }
  resource postgres("prod-main")
  sql "DELETE FROM t WHERE id = 1"
  expect allow
}
test "actor alone is a chain of one" {
  identity { sub: "agent-7", groups: [], actor: "alice", client_id: "agents-app" }
  resource postgres("prod-main")
  sql "DELETE FROM t WHERE id = 1"
  expect allow
}
test "someone else's chain may not" {
  identity { sub: "agent-7", groups: [], actors: ["planner", "bob"], client_id: "agents-app" }
  resource postgres("prod-main")
  sql "DELETE FROM t WHERE id = 1"
  expect block
}
test "actors must be strings" {
  identity { sub: "agent-7", actors: "alice" }
  sql "DELETE FROM t WHERE id = 1"
  expect block
}
`,
    });
    const r = await runCli(['policy', 'test', dir]);
    expect(r.out + r.err).toContain('identity field `actors` must be a list of strings');
    expect(r.code).toBe(2);
    writeFileSync(join(dir, 'p_test.hoop'), readFileSync(join(dir, 'p_test.hoop'), 'utf8').replace(/test "actors must be strings"[^]*$/, ''));
    const ok = await runCli(['policy', 'test', dir]);
    expect(ok.out).toContain('3 passed, 0 failed');
    expect(ok.code).toBe(0);
  });

  it('quorum approvals: expect approve by group still passes, expect approve by N of checks the quorum', async () => {
    const dir = tempPolicy({
      'p_test.hoop': `package t
rule ddl {
  match sql ddl
  approve by 2 of group "dba" within 30m lasting 1h
}
test "group only" {
  identity { sub: "a", groups: [] }
  resource postgres("prod-main")
  sql "CREATE TABLE x (id int)"
  expect approve by group "dba"
}
test "with the quorum" {
  identity { sub: "a", groups: [] }
  resource postgres("prod-main")
  sql "CREATE TABLE x (id int)"
  expect approve by 2 of group "dba"
}
test "wrong quorum" {
  identity { sub: "a", groups: [] }
  resource postgres("prod-main")
  sql "CREATE TABLE x (id int)"
  expect approve by 3 of group "dba"
}
`,
    });
    const r = await runCli(['policy', 'test', dir]);
    expect(r.out).toContain('2 passed, 1 failed');
    expect(r.out).toContain('expected approve by 3 of "dba", got approvers 2 of dba');
    expect(r.code).toBe(1);
  });

  it('filters tests with --run and lists passing ones with -v', async () => {
    const dir = tempPolicy({ 'p_test.hoop': failing });
    const r = await runCli(['policy', 'test', dir, '--run', '^reader reads$', '-v']);
    expect(r.code).toBe(0);
    expect(r.out).toContain('PASS  reader reads');
    expect(r.out).not.toContain('reader may delete');
  });

  it('reports uncovered rules and fails below the threshold', async () => {
    const dir = tempPolicy({ 'p_test.hoop': failing });
    const r = await runCli(['policy', 'test', dir, '--run', 'reads', '--threshold', '90', '--format', 'json']);
    expect(r.code).toBe(1);
    const j = JSON.parse(r.out) as { summary: { passed: number }; coverage: { percent: number; rules: { id: string; covered: boolean }[] } };
    expect(j.summary.passed).toBe(1);
    expect(j.coverage.percent).toBe(50);
    expect(j.coverage.rules.find((x) => x.id === 't.no_deletes')?.covered).toBe(false);
  });

  it('writes JUnit XML and GitHub annotations', async () => {
    const dir = tempPolicy({ 'p_test.hoop': failing });
    const junit = await runCli(['policy', 'test', dir, '--format', 'junit']);
    expect(junit.out).toContain('<testsuites name="hoop policy test" tests="2" failures="1" errors="0">');
    expect(junit.out).toContain('<failure message="expected verdict allow, got verdict block (&quot;no deletes&quot;)">');
    const gh = await runCli(['policy', 'test', dir, '--format', 'github']);
    expect(gh.out).toMatch(/^::error file=.*p_test\.hoop,line=15,col=3,title=hoop test failed%3A reader may delete::expected verdict allow/m);
  });

  it('exits 2 when the policy does not compile', async () => {
    const dir = tempPolicy({ 'bad.hoop': threeErrors });
    expect((await runCli(['policy', 'test', dir])).code).toBe(2);
  });
});

describe('hoop policy eval', () => {
  it('decides each statement and the message as a whole', async () => {
    const r = await runCli(['policy', 'eval', examples, '--sub', 'agent-7', '--groups', 'data-reader', '--resource', 'postgres:prod-main', '--sql', 'SELECT email FROM customers; DELETE FROM orders']);
    expect(r.code).toBe(0);
    expect(r.out).toContain('statement 1: SELECT email FROM customers');
    expect(r.out).toContain('verdict mask');
    expect(r.out).toContain('overall: block: UPDATE/DELETE without WHERE is not allowed');
  });

  it('--explain shows the facts and every rule; --json is machine-readable', async () => {
    const args = ['policy', 'eval', '--policy', examples, '--sub', 'a', '--groups', 'data-reader', '--resource', 'postgres:prod-main', '--sql', 'WITH d AS (DELETE FROM orders WHERE id = 1 RETURNING *) SELECT * FROM d'];
    const human = await runCli([...args, '--explain']);
    expect(human.out).toContain('"kind":"delete"');
    expect(human.out).toMatch(/prod\.db\.readers_select\s+skipped at match/);
    const json = await runCli([...args, '--json']);
    const j = JSON.parse(json.out) as { decision: { verdict: string; approvers: string[] } };
    expect(j.decision.verdict).toBe('approve');
    expect(j.decision.approvers).toEqual(['dba']);
  });

  it('decides a write that reads as the gateway does: RETURNING gets the masks of the read rules', async () => {
    // prod.db.mask_customer_pii masks customers.email for `match sql select`; a dba's UPDATE is
    // allowed by prod.db.dba_changes, and what it returns is masked.
    const r = await runCli(['policy', 'eval', examples, '--sub', 'd', '--groups', 'dba', '--resource', 'postgres:prod-main', '--sql', 'UPDATE customers SET tier = tier WHERE id = 1 RETURNING email', '--json']);
    expect(r.code).toBe(0);
    const j = JSON.parse(r.out) as { decision: { verdict: string; masks: { columns: { column: string }[] } } };
    expect(j.decision.verdict).toBe('mask');
    expect(j.decision.masks.columns.map((c) => c.column)).toContain('public.customers.email');
    // Without RETURNING, nothing comes back: the verdict is the write's own.
    const plain = await runCli(['policy', 'eval', examples, '--sub', 'd', '--groups', 'dba', '--resource', 'postgres:prod-main', '--sql', 'UPDATE orders SET status = status WHERE id = 1']);
    expect(plain.out).toContain('verdict allow');
  });

  it('rejects a malformed resource with exit 2', async () => {
    const r = await runCli(['policy', 'eval', examples, '--sub', 'a', '--resource', 'prod-main', '--sql', 'SELECT 1']);
    expect(r.code).toBe(2);
    expect(r.err).toContain('--resource must look like postgres:NAME');
  });
});

const limited = `package t
rule readers {
  when group "reader"
  match sql select
  allow
  limit rows 1000
}
rule cap_agents {
  when subject "agent-*"
  limit rows 500
  limit time 2s
  limit rate 10 per 1m
}
test "agents are capped" {
  identity { sub: "agent-1", groups: ["reader"] }
  resource postgres("db")
  sql "SELECT 1"
  expect allow
  expect rules [readers]
  expect limit rows 500
  expect limit time 2s
  expect limit rate 10 per 1m
}
test "wrong limits" {
  identity { sub: "ci-1", groups: ["reader"] }
  resource postgres("db")
  sql "SELECT 1"
  expect limit rows 500
  expect limit time 2s
  expect limit rate 10 per 1m
}
`;

describe('limits in tests and eval', () => {
  it('expect limit passes when the decision carries that limit and says what it carried when not', async () => {
    const dir = tempPolicy({ 'l.hoop': limited });
    const r = await runCli(['policy', 'test', dir]);
    expect(r.code).toBe(1);
    expect(r.out).toContain('1 passed, 1 failed');
    expect(r.out).toContain('expected limit rows 500, got limit rows 1000 (by t.readers)');
    expect(r.out).toContain('expected limit time 2s, got no time limit');
    expect(r.out).toContain('expected limit rate 10 per 1m, got no rate limit');
  });

  it('policy eval --explain names the rule that set each limit', async () => {
    const dir = tempPolicy({ 'l.hoop': limited });
    const r = await runCli(['policy', 'eval', dir, '--sub', 'agent-1', '--groups', 'reader', '--resource', 'postgres:db', '--sql', 'SELECT 1', '--explain']);
    expect(r.code).toBe(0);
    expect(r.out).toContain('limits rows 500 (by t.cap_agents), time 2s (by t.cap_agents), rate 10 per 1m (by t.cap_agents)');
    const json = await runCli(['policy', 'eval', dir, '--sub', 'agent-1', '--groups', 'reader', '--resource', 'postgres:db', '--sql', 'SELECT 1', '--json']);
    const j = JSON.parse(json.out) as { decision: { limits: unknown } };
    expect(j.decision.limits).toEqual({ rows: { rows: 500, rule: 't.cap_agents' }, time: { ms: 2000, rule: 't.cap_agents' }, rate: [{ count: 10, windowMs: 60000, rule: 't.cap_agents' }] });
  });

  it('policy fmt keeps limits as written', async () => {
    const dir = tempPolicy({ 'l.hoop': 'rule r {\n  allow\n    limit   rate 10   per 1m\n limit time 250ms\n}\n' });
    const r = await runCli(['policy', 'fmt', '--write', dir]);
    expect(r.code).toBe(0);
    expect(readFileSync(join(dir, 'l.hoop'), 'utf8')).toBe('rule r {\n  allow\n  limit rate 10 per 1m\n  limit time 250ms\n}\n');
  });
});
