// The engine's public API (engine/index.ts) as the proxy and the CLI use it.

import { mkdir, mkdtemp, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { buildRequest } from './test-request.ts';
import { Evaluator } from './evaluator.ts';
import { celEnvironment } from '../stdlib/cel.ts';
import { combineDecisions, compilePolicy, defaultRegistry, loadPolicySources, type Decision } from './index.ts';
import type { CompiledPolicyIR } from './tree.ts';

const PROD = `package prod

rule readers {
  on postgres("prod-*")
  when group "reader"
  match sql select
  allow
}

rule pii {
  match sql select on tables ["customers"]
  mask column "customers.email" with hash
}

rule writes {
  when group "writer"
  match sql update
  approve by group "dba" within 10m
}

rule no_unbounded {
  match sql update, delete
  if \`!sql.has_where\`
  block "needs a WHERE"
}

test "readers see hashed emails" {
  identity { sub: "a", groups: ["reader"] }
  resource postgres("prod-main")
  sql "SELECT email FROM customers"
  expect mask
}
`;

describe('compilePolicy', () => {
  it('compiles a set and summarises its rules and tests', () => {
    const { policy, diagnostics } = compilePolicy([{ file: 'prod.hoop', text: PROD }]);
    expect(diagnostics).toEqual([]);
    expect(policy!.ruleCount).toBe(4);
    expect(policy!.rules.map((r) => [r.id, r.effects])).toEqual([
      ['prod.no_unbounded', ['block']],
      ['prod.pii', ['mask column']],
      ['prod.readers', ['allow']],
      ['prod.writes', ['approve']],
    ]);
    expect(policy!.tests.map((t) => [t.package, t.file, t.test.name.value])).toEqual([['prod', 'prod.hoop', 'readers see hashed emails']]);
  });

  it('refuses a set with errors and reports every one with its position', () => {
    const text = PROD.replace('with hash', 'with hsah').replace('`!sql.has_where`', '`sql.where`');
    const { policy, diagnostics } = compilePolicy([{ file: 'prod.hoop', text }]);
    expect(policy).toBeUndefined();
    expect(diagnostics.map((d) => `${d.code} ${d.span.file}:${d.span.startLine}:${d.span.startColumn} ${d.help ?? ''}`)).toEqual([
      'HOOP2003 prod.hoop:12:38 did you mean `hash`?',
      'HOOP3002 prod.hoop:23:11 ',
    ]);
  });

  it('reports an empty source list as HOOP5002', () => {
    expect(compilePolicy([]).diagnostics.map((d) => d.code)).toEqual(['HOOP5002']);
  });

  it('hashes the sources, independent of the order they are given in', () => {
    const a = { file: 'a.hoop', text: 'rule x { allow }\n' };
    const b = { file: 'b.hoop', text: 'rule y { match sql ddl block }\n' };
    const h1 = compilePolicy([a, b]).policy!.hash;
    expect(compilePolicy([b, a]).policy!.hash).toBe(h1);
    expect(compilePolicy([a, { ...b, text: b.text + ' ' }]).policy!.hash).not.toBe(h1);
    expect(h1).toMatch(/^[0-9a-f]{64}$/);
  });

  it('the compiled IR is plain data: a JSON round trip decides the same', () => {
    const { policy } = compilePolicy([{ file: 'prod.hoop', text: PROD }]);
    const copy = JSON.parse(JSON.stringify(policy!.ir)) as CompiledPolicyIR;
    const evaluator = new Evaluator(copy, celEnvironment(defaultRegistry()));
    for (const request of [
      { groups: ['reader'], sql: { kind: 'select' as const, reads: ['public.customers'] } },
      { groups: ['writer'], sql: { kind: 'update' as const, writes: ['public.t'], has_where: false } },
      { groups: ['writer'], sql: { kind: 'update' as const, writes: ['public.t'] } },
    ]) {
      const req = buildRequest(request);
      expect(evaluator.evaluate(req)).toEqual(policy!.evaluate(req));
    }
  });
});

describe('PreparedPolicy', () => {
  const { policy } = compilePolicy([{ file: 'prod.hoop', text: PROD }]);

  it('decides, with reasons that carry source spans', () => {
    const d = policy!.evaluate(buildRequest({ groups: ['reader'], sql: { kind: 'select', reads: ['public.customers'] } }));
    expect(d.verdict).toBe('mask');
    expect(d.masks.columns).toEqual([{ column: 'public.customers.email', masker: { name: 'hash', args: [] }, rule: 'prod.pii' }]);
    expect(d.reasons.map((r) => `${r.id}@${r.span.file}:${r.span.startLine}`)).toEqual(['prod.pii@prod.hoop:10', 'prod.readers@prod.hoop:3']);
  });

  it('never throws: a malformed request is a block that says why', () => {
    const broken = { identity: { sub: 'a', groups: ['reader'], claims: {} }, resource: { kind: 'postgres', name: 'prod-main', labels: {} } } as never;
    const d = policy!.evaluate(broken);
    expect(d.verdict).toBe('block');
    expect(d.message).toMatch(/^internal error while deciding/);
    expect(policy!.evaluateReference(broken).verdict).toBe('block');
    const odd = buildRequest({ resource: 'mysql:x' });
    expect(policy!.evaluate(odd).verdict).toBe('block');
  });

  it('keeps deciding correctly when the memo of merged tree nodes overflows', () => {
    const shellSet = compilePolicy([{ file: 's.hoop', text: 'rule ls { on ssh("box-*") match shell ["ls"] allow }\nrule any { when group "ops" allow }\n' }]).policy!;
    for (let i = 0; i < 20_000; i++) {
      const req = buildRequest({ groups: i % 3 === 0 ? ['ops'] : [], resource: `ssh:box-${i % 50}`, shell: { programs: [i % 7 === 0 ? 'ls' : `prog-${i}`] } });
      const d = shellSet.evaluate(req);
      expect(d.verdict).toBe(i % 3 === 0 || i % 7 === 0 ? 'allow' : 'block');
      if (i % 997 === 0) expect(d).toEqual(shellSet.evaluateReference(req));
    }
  });

  it('explains every rule: applied, or which selector or condition failed', () => {
    const e = policy!.explain(buildRequest({ groups: ['writer'], sql: { kind: 'update', writes: ['public.t'], has_where: true } }));
    expect(e.decision.verdict).toBe('approve');
    expect(e.rules.map((r) => [r.id, r.outcome.status, r.outcome.status === 'skipped' ? r.outcome.selector : ''])).toEqual([
      ['prod.no_unbounded', 'skipped', 'if'],
      ['prod.pii', 'skipped', 'match'],
      ['prod.readers', 'skipped', 'when'],
      ['prod.writes', 'applied', ''],
    ]);
    expect((e.facts as { sql: { has_where: boolean } }).sql.has_where).toBe(true);
  });
});

describe('loadPolicySources', () => {
  let dir: string;
  beforeAll(async () => {
    dir = await mkdtemp(join(tmpdir(), 'hoop-engine-'));
    await mkdir(join(dir, 'b', 'deep'), { recursive: true });
    await mkdir(join(dir, 'empty'));
    await writeFile(join(dir, 'b', 'deep', 'z.hoop'), 'rule z { allow }\n');
    await writeFile(join(dir, 'a.hoop'), 'rule a { allow }\n');
    await writeFile(join(dir, 'notes.md'), '# not a policy\n');
  });
  afterAll(async () => rm(dir, { recursive: true, force: true }));

  it('reads .hoop files below a folder, recursively and sorted', async () => {
    const { sources, diagnostics } = await loadPolicySources(dir);
    expect(diagnostics).toEqual([]);
    expect(sources.map((s) => s.file.endsWith('a.hoop') || s.file.endsWith(join('b', 'deep', 'z.hoop')))).toEqual([true, true]);
    expect(sources[0].file < sources[1].file).toBe(true);
    expect(sources[0].text).toBe('rule a { allow }\n');
  });

  it('reads a single file', async () => {
    const { sources } = await loadPolicySources(join(dir, 'a.hoop'));
    expect(sources).toHaveLength(1);
  });

  it('says HOOP5002 for a folder without policies and HOOP5003 for a missing path', async () => {
    expect((await loadPolicySources(join(dir, 'empty'))).diagnostics.map((d) => d.code)).toEqual(['HOOP5002']);
    expect((await loadPolicySources(join(dir, 'missing'))).diagnostics.map((d) => d.code)).toEqual(['HOOP5003']);
  });
});

describe('combineDecisions', () => {
  const { policy } = compilePolicy([{ file: 'prod.hoop', text: PROD }]);
  const decide = (r: Parameters<typeof buildRequest>[0]): Decision => policy!.evaluate(buildRequest(r));
  const allow = decide({ groups: ['reader'], sql: { kind: 'select', reads: ['public.orders'] } });
  const mask = decide({ groups: ['reader'], sql: { kind: 'select', reads: ['public.customers'] } });
  const approve = decide({ groups: ['writer'], sql: { kind: 'update', writes: ['public.t'] } });
  const block = decide({ groups: ['writer'], sql: { kind: 'update', writes: ['public.t'], has_where: false } });

  it('takes the most restrictive verdict', () => {
    expect(combineDecisions([allow, mask]).verdict).toBe('mask');
    expect(combineDecisions([mask, approve, allow]).verdict).toBe('approve');
    expect(combineDecisions([allow, block, approve]).verdict).toBe('block');
  });

  it('unions masks and reasons of the statements that decided', () => {
    const m = combineDecisions([allow, mask]);
    expect(m.reasons.map((r) => r.id)).toEqual(['prod.pii', 'prod.readers']);
    expect(m.masks.columns).toHaveLength(1);
    const a = combineDecisions([mask, approve]);
    expect(a.reasons.map((r) => r.id)).toEqual(['prod.writes']);
    expect(a.masks.columns.map((c) => c.column)).toEqual(['public.customers.email']);
    expect(a.approvers).toEqual(['dba']);
    expect(a.approvalWithinMs).toBe(600_000);
  });

  it('a block carries the first blocked statement\'s message and no masks', () => {
    const b = combineDecisions([mask, block]);
    expect(b.message).toBe('needs a WHERE');
    expect(b.masks).toEqual({ columns: [], detectors: [] });
    expect(b.reasons.map((r) => r.id)).toEqual(['prod.no_unbounded']);
  });

  it('nothing to decide is a block', () => {
    expect(combineDecisions([]).verdict).toBe('block');
  });
});

describe('needsEstimate: the gateway asks EXPLAIN only when a rule that may apply reads sql.estimate', () => {
  const { policy } = compilePolicy([{ file: 'c.hoop', text: `
rule writers { match sql update, delete allow }
rule big { on postgres("prod-*") when group "agents" match sql update if \`sql.has_where\` if \`sql.estimate.rows > 10000\` approve by group "dba" }
` }]);
  it('is true only where the rule could apply and its earlier conditions hold', () => {
    expect(policy!.estimates).toBe(true);
    const update = (over: Partial<Parameters<typeof buildRequest>[0]> = {}) => buildRequest({ groups: ['agents'], resource: 'postgres:prod-main', sql: { kind: 'update' }, ...over });
    expect(policy!.needsEstimate(update())).toBe(true);
    expect(policy!.needsEstimate(update({ sql: { kind: 'delete' } }))).toBe(false);
    expect(policy!.needsEstimate(update({ groups: [] }))).toBe(false);
    expect(policy!.needsEstimate(update({ resource: 'postgres:staging' }))).toBe(false);
    expect(policy!.needsEstimate(update({ sql: { kind: 'update', has_where: false } }))).toBe(false);
  });

  it('is false (and free) for a policy that never reads it', () => {
    const plain = compilePolicy([{ file: 'p.hoop', text: 'rule r { match sql select allow }' }]).policy!;
    expect(plain.estimates).toBe(false);
    expect(plain.needsEstimate(buildRequest({ sql: { kind: 'select' } }))).toBe(false);
  });
});
