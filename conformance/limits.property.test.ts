// DESIGN.md "Limits", proved with fast-check over generated policy sets and requests
// (conformance/arbitraries/policy.ts, whose rules carry limits): a limit never grants; limits never
// change the verdict (nor its reasons, masks, approvers or message); the smallest limit of each
// kind wins; rule order and duplicates do not matter; adding a limit never loosens anything.
// The compiled tree and the reference interpreter agreeing on limits is semantics.property.test.ts's
// first property (both compare whole decisions).

import fc from 'fast-check';
import { describe, expect, it } from 'vitest';
import type { Effect, PolicyFile, Rule } from '../language/ast.ts';
import { combineDecisions, compileFiles, type Decision, type Limits, type PreparedPolicy } from '../engine/index.ts';
import type { Request } from '../stdlib/facts.ts';
import { limitEffectArb, limitsArb, policySetArb, requestArb, ruleShapeArb, safeConditionsArb, toRule } from './arbitraries/policy.ts';
import { propertyRuns } from './runs.ts';

const runs = propertyRuns();
const requestsArb = fc.array(requestArb, { minLength: 1, maxLength: 4 });
const RANK = { allow: 0, mask: 1, approve: 2, block: 3 } as const;

function compile(files: PolicyFile[]): PreparedPolicy {
  const out = compileFiles(files);
  if (!out.policy) throw new Error(`generated set did not compile: ${JSON.stringify(out.diagnostics)}`);
  return out.policy;
}

const isLimit = (e: Effect): boolean => e.kind === 'LimitRows' || e.kind === 'LimitTime' || e.kind === 'LimitRate';
const idOf = (f: PolicyFile, r: Rule): string => (f.package ? `${f.package.value}.${r.name.value}` : r.name.value);

/** The set without any limit (rules left with no effect go). */
function withoutLimits(files: PolicyFile[]): PolicyFile[] {
  return files.map((f) => ({
    ...f,
    rules: f.rules.map((r) => ({ ...r, effects: r.effects.filter((e) => !isLimit(e)) })).filter((r) => r.effects.length > 0),
  }));
}

/** Everything but the limits. */
function verdictPart(d: Decision): Omit<Decision, 'limits'> {
  const { limits: _limits, ...rest } = d;
  return rest;
}

/** The limit values without rule names: what a duplicated rule must not change. */
function values(l: Limits | undefined) {
  return {
    rows: l?.rows?.rows,
    time: l?.time?.ms,
    rate: [...new Set((l?.rate ?? []).map((r) => `${r.count}/${r.windowMs}`))].sort(),
  };
}

/** `after` restricts at least as much as `before`: rows and time no larger, every rate limit kept. */
function atLeastAsTight(after: Limits | undefined, before: Limits | undefined): void {
  if (before?.rows) expect(after?.rows?.rows).toBeLessThanOrEqual(before.rows.rows);
  if (before?.time) expect(after?.time?.ms).toBeLessThanOrEqual(before.time.ms);
  const kept = new Set((after?.rate ?? []).map((r) => `${r.rule}\u0000${r.count}/${r.windowMs}`));
  for (const r of before?.rate ?? []) {
    // The same rule may now carry a smaller count for the same window; never a larger one.
    const same = (after?.rate ?? []).filter((a) => a.rule === r.rule && a.windowMs === r.windowMs);
    expect(kept.has(`${r.rule}\u0000${r.count}/${r.windowMs}`) || same.some((a) => a.count < r.count)).toBe(true);
  }
}

/** The rules that applied to a request (the reference interpreter's per-rule outcomes). */
function applying(policy: PreparedPolicy, files: PolicyFile[], req: Request): { id: string; rule: Rule }[] {
  const byId = new Map<string, Rule>();
  for (const f of files) for (const r of f.rules) byId.set(idOf(f, r), r);
  return policy.explain(req).rules.filter((r) => r.outcome.status === 'applied').map((r) => ({ id: r.id, rule: byId.get(r.id)! }));
}

const withRule = (files: PolicyFile[], rule: Rule, at = 0): PolicyFile[] =>
  files.map((f, i) => (i === at % files.length ? { ...f, rules: [...f.rules, rule] } : f));

describe('limits (property-based)', () => {
  it('limits never grant and never change the verdict, reasons, masks, approvers or message', () => {
    fc.assert(
      fc.property(policySetArb, requestsArb, (files, requests) => {
        const limited = compile(files);
        const plain = compile(withoutLimits(files));
        const limitOnly = new Set(files.flatMap((f) => f.rules.filter((r) => r.effects.every(isLimit)).map((r) => idOf(f, r))));
        for (const req of requests) {
          const d = limited.evaluate(req);
          if (d.errors.some((e) => limitOnly.has(e.rule))) {
            // Like any rule, a limit rule whose condition fails at run time blocks (fail closed).
            expect(d.verdict).toBe('block');
            expect(d.limits).toBeUndefined();
            continue;
          }
          expect(verdictPart(d)).toEqual(verdictPart(plain.evaluate(req)));
          expect(plain.evaluate(req).limits).toBeUndefined();
          if (d.verdict === 'block') expect(d.limits).toBeUndefined();
        }
      }),
      { numRuns: runs },
    );
  });

  it('a set of only limits (and masks) blocks everything and carries no limit', () => {
    fc.assert(
      fc.property(policySetArb, requestsArb, (files, requests) => {
        const onlyLimits = files.map((f) => ({
          ...f,
          default: undefined,
          rules: f.rules.map((r) => ({ ...r, effects: r.effects.filter((e) => e.kind !== 'Allow' && e.kind !== 'Approve') })).filter((r) => r.effects.length > 0),
        }));
        const policy = compile(onlyLimits);
        for (const req of requests) {
          const d = policy.evaluate(req);
          expect(d.verdict).toBe('block');
          expect(d.limits).toBeUndefined();
        }
      }),
      { numRuns: runs },
    );
  });

  it('the smallest limit of each kind wins; every applying rule keeps its smallest rate per window', () => {
    fc.assert(
      fc.property(policySetArb, requestArb, (files, req) => {
        const policy = compile(files);
        const d = policy.evaluate(req);
        fc.pre(d.verdict !== 'block');
        const rules = applying(policy, files, req);
        const rows = rules.flatMap(({ id, rule }) => rule.effects.flatMap((e) => (e.kind === 'LimitRows' ? [{ v: e.rows.value, id }] : [])));
        const times = rules.flatMap(({ id, rule }) => rule.effects.flatMap((e) => (e.kind === 'LimitTime' ? [{ v: e.duration.ms, id }] : [])));
        const rates = rules.flatMap(({ id, rule }) => rule.effects.flatMap((e) => (e.kind === 'LimitRate' ? [{ count: e.count.value, windowMs: e.per.ms, id }] : [])));
        if (rows.length + times.length + rates.length === 0) {
          expect(d.limits).toBeUndefined();
          return;
        }
        const min = Math.min(...rows.map((r) => r.v));
        if (rows.length === 0) expect(d.limits?.rows).toBeUndefined();
        else expect(d.limits?.rows).toEqual({ rows: min, rule: rows.filter((r) => r.v === min).map((r) => r.id).sort()[0] });
        const shortest = Math.min(...times.map((t) => t.v));
        if (times.length === 0) expect(d.limits?.time).toBeUndefined();
        else expect(d.limits?.time).toEqual({ ms: shortest, rule: times.filter((t) => t.v === shortest).map((t) => t.id).sort()[0] });
        // Per rule and window: the smallest count; across rules, all of them.
        const want = new Map<string, { count: number; windowMs: number; rule: string }>();
        for (const r of rates) {
          const key = `${r.id}\u0000${r.windowMs}`;
          const had = want.get(key);
          if (!had || r.count < had.count) want.set(key, { count: r.count, windowMs: r.windowMs, rule: r.id });
        }
        const sort = (xs: { count: number; windowMs: number; rule: string }[]) =>
          [...xs].sort((a, b) => (a.rule < b.rule ? -1 : a.rule > b.rule ? 1 : a.windowMs - b.windowMs));
        expect(d.limits?.rate).toEqual(sort([...want.values()]));
        for (const r of d.limits?.rate ?? []) expect(rates.some((x) => x.id === r.rule && x.count === r.count && x.windowMs === r.windowMs)).toBe(true);
      }),
      { numRuns: runs },
    );
  });

  it('the order of limits within a rule and repeating a limit do not change the decision', () => {
    fc.assert(
      fc.property(policySetArb, requestsArb, fc.nat(), fc.nat(), (files, requests, pick, rot) => {
        const all = files.flatMap((f, fi) => f.rules.map((r, ri) => ({ fi, ri, r })));
        const { fi, ri, r } = all[pick % all.length];
        fc.pre(r.effects.some(isLimit));
        const ls = r.effects.filter(isLimit);
        const k = rot % ls.length;
        const reordered: Rule = { ...r, effects: [...r.effects.filter((e) => !isLimit(e)), ...ls.slice(k), ...ls.slice(0, k), ls[k]] };
        const changed = files.map((f, i) => (i === fi ? { ...f, rules: f.rules.map((x, j) => (j === ri ? reordered : x)) } : f));
        const a = compile(files);
        const b = compile(changed);
        for (const req of requests) expect(b.evaluate(req)).toEqual(a.evaluate(req));
      }),
      { numRuns: runs },
    );
  });

  it('a duplicated rule does not change the limit values', () => {
    fc.assert(
      fc.property(policySetArb, requestsArb, fc.nat(), fc.nat(), (files, requests, pick, where) => {
        const all = files.flatMap((f) => f.rules);
        const original = all[pick % all.length];
        const copy: Rule = { ...original, name: { ...original.name, value: `${original.name.value}_dup` } };
        const a = compile(files);
        const b = compile(withRule(files, copy, where));
        for (const req of requests) {
          const before = a.evaluate(req);
          const after = b.evaluate(req);
          expect(values(after.limits)).toEqual(values(before.limits));
          expect(after.verdict).toBe(before.verdict);
        }
      }),
      { numRuns: runs },
    );
  });

  it('adding a limit-only rule never loosens anything: same verdict, limits at least as tight', () => {
    fc.assert(
      fc.property(policySetArb, ruleShapeArb, safeConditionsArb, fc.array(limitEffectArb, { minLength: 1, maxLength: 3 }), requestsArb, fc.nat(), (files, shape, conditions, limits, requests, where) => {
        const onSsh = shape.on?.resourceKind === 'ssh' || shape.match?.kind === 'ShellMatch';
        const effects = limits.filter((e) => !(onSsh && e.kind === 'LimitRows'));
        fc.pre(effects.length > 0);
        const rule = toRule({ ...shape, conditions, effects }, 'added_limit');
        const before = compile(files);
        const after = compile(withRule(files, rule, where));
        for (const req of requests) {
          const b = before.evaluate(req);
          const a = after.evaluate(req);
          expect(verdictPart(a)).toEqual(verdictPart(b));
          atLeastAsTight(a.limits, b.limits);
        }
      }),
      { numRuns: runs },
    );
  });

  it('adding a limit to an existing rule never loosens anything', () => {
    fc.assert(
      fc.property(policySetArb, limitsArb, requestsArb, fc.nat(), (files, extra, requests, pick) => {
        const all = files.flatMap((f, fi) => f.rules.map((r, ri) => ({ fi, ri, r })));
        const { fi, ri, r } = all[pick % all.length];
        const onSsh = r.on?.resourceKind === 'ssh' || r.match?.kind === 'ShellMatch';
        const add = extra.filter((e) => !(onSsh && e.kind === 'LimitRows'));
        fc.pre(add.length > 0 && !r.effects.some((e) => e.kind === 'Block'));
        const changed = files.map((f, i) => (i === fi ? { ...f, rules: f.rules.map((x, j) => (j === ri ? { ...x, effects: [...x.effects, ...add] } : x)) } : f));
        const before = compile(files);
        const after = compile(changed);
        for (const req of requests) {
          const b = before.evaluate(req);
          const a = after.evaluate(req);
          expect(RANK[a.verdict]).toBe(RANK[b.verdict]);
          expect(verdictPart(a)).toEqual(verdictPart(b));
          atLeastAsTight(a.limits, b.limits);
        }
      }),
      { numRuns: runs },
    );
  });

  it('a message of several statements carries the tightest limits of those that may run', () => {
    fc.assert(
      fc.property(policySetArb, fc.array(requestArb, { minLength: 2, maxLength: 4 }), (files, requests) => {
        const policy = compile(files);
        const parts = requests.map((r) => policy.evaluate(r));
        const whole = combineDecisions(parts);
        if (whole.verdict === 'block') {
          expect(whole.limits).toBeUndefined();
          return;
        }
        const rows = parts.flatMap((d) => (d.limits?.rows ? [d.limits.rows.rows] : []));
        const times = parts.flatMap((d) => (d.limits?.time ? [d.limits.time.ms] : []));
        expect(whole.limits?.rows?.rows).toBe(rows.length ? Math.min(...rows) : undefined);
        expect(whole.limits?.time?.ms).toBe(times.length ? Math.min(...times) : undefined);
        const rates = new Set(parts.flatMap((d) => (d.limits?.rate ?? []).map((r) => JSON.stringify(r))));
        expect(new Set((whole.limits?.rate ?? []).map((r) => JSON.stringify(r)))).toEqual(rates);
      }),
      { numRuns: runs },
    );
  });
});
