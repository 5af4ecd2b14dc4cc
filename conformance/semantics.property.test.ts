// The semantics of DESIGN.md ("Semantics (normative)"), proved with fast-check over generated
// policy sets and requests (conformance/arbitraries/policy.ts). Each property runs
// propertyRuns() cases (2,000 by default; HOOP_PROPERTY_RUNS raises it).

import fc from 'fast-check';
import { describe, expect, it } from 'vitest';
import type { PolicyFile, Rule } from '../language/ast.ts';
import { SQL_KINDS } from '../language/ast.ts';
import type { Request } from '../stdlib/facts.ts';
import { combineDecisions, compileFiles, type Decision, type PreparedPolicy } from '../engine/index.ts';
import { DEFAULT_BLOCK_MESSAGE } from '../engine/tree.ts';
import {
  ALWAYS_FAILING_CONDITION, allowEffect, blockEffect, conditionOf, policySetArb, requestArb, ruleShapeArb, safeConditionsArb, toRule,
} from './arbitraries/policy.ts';
import { policyFileArb } from './arbitraries/ast.ts';
import { propertyRuns } from './runs.ts';

const runs = propertyRuns();
const requestsArb = fc.array(requestArb, { minLength: 1, maxLength: 4 });
const RANK = { allow: 0, mask: 1, approve: 2, block: 3 } as const;

function compile(files: PolicyFile[]): PreparedPolicy {
  const out = compileFiles(files);
  if (!out.policy) throw new Error(`generated set did not compile: ${JSON.stringify(out.diagnostics)}`);
  return out.policy;
}

/** The parts of a decision that do not depend on rule names. */
function nameFree(d: Decision) {
  return {
    verdict: d.verdict,
    approvers: d.approvers,
    within: d.approvalWithinMs,
    quorum: d.approvalQuorum,
    lasting: d.approvalLastingMs,
    columns: [...new Set(d.masks.columns.map((c) => `${c.column}=${c.masker.name}(${c.masker.args})`))].sort(),
    detectors: [...new Set(d.masks.detectors.map((m) => JSON.stringify([m.detectors, m.masker])))].sort(),
  };
}

const withRule = (files: PolicyFile[], rule: Rule, at = 0): PolicyFile[] =>
  files.map((f, i) => (i === at % files.length ? { ...f, rules: [...f.rules, rule] } : f));

const has = (rule: Rule, kind: string): boolean => rule.effects.some((e) => e.kind === kind);
const masks = (rule: Rule): boolean => has(rule, 'MaskColumn') || has(rule, 'MaskDetect');

/** Rules by id, with their reference outcome for a request. */
function outcomes(policy: PreparedPolicy, files: PolicyFile[], req: Request) {
  const rules = new Map<string, Rule>();
  for (const f of files) for (const r of f.rules) rules.set(f.package ? `${f.package.value}.${r.name.value}` : r.name.value, r);
  const applied: string[] = [];
  const errored: string[] = [];
  for (const r of policy.explain(req).rules) {
    if (r.outcome.status === 'applied') applied.push(r.id);
    if (r.outcome.status === 'error') errored.push(r.id);
  }
  return { rules, applied, errored };
}

describe('semantics (property-based)', () => {
  it('the compiled decision tree and the reference interpreter agree', () => {
    fc.assert(
      fc.property(policySetArb, requestsArb, (files, requests) => {
        const policy = compile(files);
        for (const req of requests) expect(policy.evaluate(req)).toEqual(policy.evaluateReference(req));
      }),
      { numRuns: runs },
    );
  });

  it('rule order and file order do not matter', () => {
    fc.assert(
      fc.property(policySetArb, requestsArb, fc.array(fc.double({ noNaN: true }), { minLength: 32, maxLength: 32 }), (files, requests, keys) => {
        let k = 0;
        const key = new Map<unknown, number>();
        const shuffle = <T>(items: T[]): T[] => {
          for (const item of items) key.set(item, keys[k++ % keys.length]);
          return [...items].sort((a, b) => key.get(a)! - key.get(b)!);
        };
        // Files keep their names; only the order they are given in and the order of their rules change.
        const shuffled = shuffle(files.map((f) => ({ ...f, rules: shuffle(f.rules) })));
        const a = compile(files);
        const b = compile(shuffled);
        for (const req of requests) expect(b.evaluate(req)).toEqual(a.evaluate(req));
      }),
      { numRuns: runs },
    );
  });

  it('a duplicated rule does not change the verdict, masks or approvers', () => {
    fc.assert(
      fc.property(policySetArb, requestsArb, fc.nat(), fc.nat(), (files, requests, pick, where) => {
        const all = files.flatMap((f) => f.rules);
        const original = all[pick % all.length];
        const copy: Rule = { ...original, name: { ...original.name, value: `${original.name.value}_dup` } };
        const a = compile(files);
        const b = compile(withRule(files, copy, where));
        for (const req of requests) expect(nameFree(b.evaluate(req))).toEqual(nameFree(a.evaluate(req)));
      }),
      { numRuns: runs },
    );
  });

  it('block dominates: a block rule that applies makes the verdict block', () => {
    fc.assert(
      fc.property(policySetArb, requestArb, fc.nat(), (files, req, pick) => {
        const before = compile(files);
        const { rules, applied } = outcomes(before, files, req);
        fc.pre(applied.length > 0);
        const target = rules.get(applied[pick % applied.length])!;
        // Same selectors and conditions (which held), effect `block`.
        const blocker = toRule({ on: target.on, when: target.when, match: target.match, conditions: target.conditions, effects: [blockEffect('dominant')] }, 'zz_blocker');
        const d = compile(withRule(files, blocker)).evaluate(req);
        expect(d.verdict).toBe('block');
        expect(d.reasons.map((r) => r.rule)).toContain('zz_blocker');
        expect(d.masks).toEqual({ columns: [], detectors: [] });
        expect(d.approvers).toEqual([]);
      }),
      { numRuns: runs },
    );
  });

  it('when nothing grants or blocks, the default decides (masks still apply to a default allow)', () => {
    fc.assert(
      fc.property(policySetArb, requestArb, (files, req) => {
        const policy = compile(files);
        const { rules, applied, errored } = outcomes(policy, files, req);
        const deciding = applied.filter((id) => ['Allow', 'Approve', 'Block'].some((k) => has(rules.get(id)!, k)));
        fc.pre(deciding.length === 0 && errored.length === 0);
        const d = policy.evaluate(req);
        expect(d.defaulted).toBe(true);
        // The set's default: block if any file says block, allow only if all that declare one say allow.
        const sorted = [...files].sort((x, y) => (x.file < y.file ? -1 : 1));
        const declared = sorted.find((f) => f.default?.effect === 'block')?.default ?? sorted.find((f) => f.default)?.default;
        if (declared?.effect === 'allow') {
          const masking = applied.filter((id) => masks(rules.get(id)!)).sort();
          expect(d.verdict).toBe(masking.length > 0 ? 'mask' : 'allow');
          expect(d.reasons.map((r) => r.id)).toEqual(masking);
        } else {
          expect(d.verdict).toBe('block');
          expect(d.message).toBe(declared?.message?.value ?? DEFAULT_BLOCK_MESSAGE);
          expect(d.reasons).toEqual([]);
        }
      }),
      { numRuns: runs },
    );
  });

  it('mask never grants: without allow and approve rules a default-block set blocks everything', () => {
    fc.assert(
      fc.property(policySetArb, requestsArb, (files, requests) => {
        // Drop every granting effect (rules left without effects go) and the `default allow`.
        const maskOnly = files.map((f) => ({
          ...f,
          default: undefined,
          rules: f.rules
            .map((r) => ({ ...r, effects: r.effects.filter((e) => e.kind !== 'Allow' && e.kind !== 'Approve') }))
            .filter((r) => r.effects.length > 0),
        }));
        const policy = compile(maskOnly);
        for (const req of requests) {
          const d = policy.evaluate(req);
          expect(d.verdict).toBe('block');
          expect(d.masks).toEqual({ columns: [], detectors: [] });
        }
      }),
      { numRuns: runs },
    );
  });

  it('adding a block rule never loosens a verdict', () => {
    fc.assert(
      fc.property(policySetArb, ruleShapeArb, safeConditionsArb, requestsArb, fc.nat(), (files, shape, conditions, requests, where) => {
        const rule = toRule({ ...shape, conditions, effects: [blockEffect()] }, 'added_block');
        const before = compile(files);
        const after = compile(withRule(files, rule, where));
        for (const req of requests) expect(RANK[after.evaluate(req).verdict]).toBeGreaterThanOrEqual(RANK[before.evaluate(req).verdict]);
      }),
      { numRuns: runs },
    );
  });

  it('adding an allow rule never tightens a verdict', () => {
    fc.assert(
      fc.property(policySetArb, ruleShapeArb, safeConditionsArb, requestsArb, fc.nat(), (files, shape, conditions, requests, where) => {
        const rule = toRule({ ...shape, conditions, effects: [allowEffect()] }, 'added_allow');
        const before = compile(files);
        const after = compile(withRule(files, rule, where));
        for (const req of requests) expect(RANK[after.evaluate(req).verdict]).toBeLessThanOrEqual(RANK[before.evaluate(req).verdict]);
      }),
      { numRuns: runs },
    );
  });

  it('reasons are exactly the applying rules of the winning effect, and removing them changes the decision', () => {
    fc.assert(
      fc.property(policySetArb, requestArb, (files, req) => {
        const policy = compile(files);
        const d = policy.evaluate(req);
        const { rules, applied, errored } = outcomes(policy, files, req);
        const pick = (test: (r: Rule) => boolean) => applied.filter((id) => test(rules.get(id)!));
        let expected: string[];
        if (d.verdict === 'block') expected = d.defaulted ? [] : [...pick((r) => has(r, 'Block')), ...errored];
        else if (d.verdict === 'approve') expected = pick((r) => has(r, 'Approve'));
        else if (d.verdict === 'mask') expected = pick((r) => (!d.defaulted && has(r, 'Allow')) || masks(r));
        else expected = pick((r) => has(r, 'Allow'));
        expect(d.reasons.map((r) => r.id)).toEqual(expected.sort());

        if (d.reasons.length === 0) return;
        const removed = new Set(d.reasons.map((r) => r.id));
        const without = files.map((f) => ({ ...f, rules: f.rules.filter((r) => !removed.has(f.package ? `${f.package.value}.${r.name.value}` : r.name.value)) }));
        const after = compile(without).evaluate(req);
        expect(after.verdict !== d.verdict || (after.defaulted && !d.defaulted)).toBe(true);
      }),
      { numRuns: runs },
    );
  });

  it('a condition that fails at run time turns only its own rule into a block', () => {
    fc.assert(
      fc.property(policySetArb, requestArb, fc.nat(), (files, req, pick) => {
        const all = files.flatMap((f, fi) => f.rules.map((r, ri) => ({ fi, ri, r })));
        const { fi, ri, r } = all[pick % all.length];
        const replace = (rule: Rule) => files.map((f, i) => (i === fi ? { ...f, rules: f.rules.map((x, j) => (j === ri ? rule : x)) } : f));
        // The rule with a condition that always fails first, versus the same selectors with `block`.
        const failing = replace({ ...r, conditions: [conditionOf(ALWAYS_FAILING_CONDITION), ...r.conditions] });
        const blocking = replace({ ...r, conditions: [], effects: [blockEffect()] });
        const a = compile(failing).evaluate(req);
        const b = compile(blocking).evaluate(req);
        expect(a.verdict).toBe(b.verdict);
        expect(a.reasons).toEqual(b.reasons);
        expect(nameFree(a)).toEqual(nameFree(b));
        const id = (files[fi].package ? `${files[fi].package!.value}.` : '') + r.name.value;
        const selected = b.reasons.some((x) => x.id === id);
        expect(a.errors.some((e) => e.rule === id)).toBe(selected);
        expect(a.errors.filter((e) => e.rule !== id)).toEqual(b.errors);
      }),
      { numRuns: runs },
    );
  });
  it('a message of several statements is as restrictive as its most restrictive statement', () => {
    fc.assert(
      fc.property(policySetArb, fc.array(requestArb, { minLength: 1, maxLength: 4 }), (files, requests) => {
        const policy = compile(files);
        const parts = requests.map((r) => policy.evaluate(r));
        const whole = combineDecisions(parts);
        expect(RANK[whole.verdict]).toBe(Math.max(...parts.map((d) => RANK[d.verdict])));
        if (whole.verdict === 'block') {
          expect(whole.message).toBe(parts.find((d) => d.verdict === 'block')!.message);
          expect(whole.masks).toEqual({ columns: [], detectors: [] });
        } else {
          const columns = new Set(whole.masks.columns.map((c) => JSON.stringify(c)));
          for (const d of parts) for (const c of d.masks.columns) expect(columns.has(JSON.stringify(c))).toBe(true);
        }
        const winners = parts.filter((d) => d.verdict === whole.verdict || (whole.verdict === 'mask' && d.verdict === 'allow'));
        expect(whole.reasons.map((r) => r.id)).toEqual([...new Set(winners.flatMap((d) => d.reasons.map((r) => r.id)))].sort());
      }),
      { numRuns: runs },
    );
  });
  it('over the whole syntax (any names and globs), tree = reference', () => {
    // Requests are built from the strings the file itself uses, so odd globs and names get hit.
    const requestFor = (file: PolicyFile, pick: number[]): Request => {
      const strings = file.rules.flatMap((r) => [
        ...(r.on?.globs ?? []), ...(r.when?.values ?? []),
        ...(r.match?.kind === 'SqlMatch' ? r.match.tables ?? [] : r.match?.kind === 'ShellMatch' ? r.match.programs : []),
      ]).map((s) => s.value);
      const at = (i: number, fallback: string) => (strings.length > 0 ? strings[pick[i] % strings.length] : fallback);
      const shell = pick[0] % 3 === 0;
      const kind = SQL_KINDS[pick[1] % SQL_KINDS.length];
      return {
        identity: { sub: at(2, 'agent'), groups: [at(3, 'g'), at(4, 'h')], actor: pick[5] % 2 ? at(5, 'a') : undefined, claims: {} },
        resource: { kind: shell ? 'ssh' : 'postgres', name: at(6, 'prod'), labels: {} },
        action: shell
          ? { type: 'shell', kind: pick[7] % 5 === 0 ? 'unknown' : 'command', programs: [at(7, 'ls'), at(8, 'cat')], invocations: [], args: [], redirects: [], dynamic: false, interpreters: [], text: '' }
          : { type: 'sql', kind, effects: [kind], reads: [at(9, 't'), `public.${at(10, 't')}`], writes: [], columns: [], functions: [], has_where: pick[11] % 2 === 0, limit: null, text: '', normalized: '', fingerprint: '' },
        context: { time: '2026-01-01T10:00:00Z', client_addr: '', session_id: '' },
      };
    };
    fc.assert(
      fc.property(policyFileArb(), fc.array(fc.array(fc.nat(), { minLength: 12, maxLength: 12 }), { minLength: 1, maxLength: 3 }), (raw, picks) => {
        // Keep the odd names and globs, but make maskers, detectors and conditions valid so most
        // generated files compile and the comparison has rules to work on.
        const file: PolicyFile = {
          ...raw,
          rules: raw.rules.map((r) => ({
            ...r,
            conditions: r.conditions.filter((c) => c.source === '!sql.has_where' || c.source === 'size(shell.redirects) == 0'),
            effects: r.effects.map((e) =>
              e.kind === 'MaskColumn' ? { ...e, masker: { ...e.masker, name: { ...e.masker.name, value: 'redact' }, args: [] } }
              : e.kind === 'MaskDetect' ? { ...e, masker: { ...e.masker, name: { ...e.masker.name, value: 'hash' }, args: [] }, detectors: e.detectors.map((d) => ({ ...d, name: { ...d.name, value: 'email' }, args: [] })) }
              : e),
          })),
        };
        const out = compileFiles([file]);
        expect(out.diagnostics.filter((d) => d.severity === 'error')).toEqual([]);
        for (const pick of picks) {
          const req = requestFor(file, pick);
          expect(out.policy!.evaluate(req)).toEqual(out.policy!.evaluateReference(req));
        }
      }),
      { numRuns: runs },
    );
  });
});
