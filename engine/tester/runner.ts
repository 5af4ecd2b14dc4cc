// `hoop policy test`: runs the `test` blocks of a compiled policy set through the public engine API
// (as OPA's tester runs test rules through `rego`), one result per test, plus the coverage trace.
//
// The classifiers are passed in (engine only knows stdlib's interfaces): a test's `sql` input is
// classified into one request per statement and the verdict is the most restrictive of theirs.

import type { Expectation, Literal, Span, TestCase } from '../../language/ast.ts';
import { qualify, resolveRuleName } from '../../language/check-set.ts';
import { withEstimate, type Action, type Identity, type Request, type RequestContext, type Resource, type ShellClassifier, type SqlAction, type SqlClassifier } from '../../stdlib/facts.ts';
import { combineDecisions, withReadView } from '../combine.ts';
import type { ReadView } from '../../stdlib/sql/read-view.ts';
import type { PolicyTest, PreparedPolicy } from '../index.ts';
import { limitText } from '../../language/formatter.ts';
import { formatDurationMs } from '../../language/ast.ts';
import { normaliseColumn } from '../names.ts';
import type { Decision, Explanation } from '../response.ts';

export interface Classifiers {
  sql: SqlClassifier;
  shell: ShellClassifier;
  /**
   * The read a SQL statement contains, decided as well as the statement so that mask rules scoped
   * to reads apply to it as the gateway applies them (stdlib/sql/read-view.ts `readViewWith`).
   */
  readView?: (action: SqlAction) => ReadView | undefined;
}

export interface ExpectationFailure {
  /** What the test said, as written (`expect block`). */
  expected: string;
  /** What the engine answered. */
  actual: string;
  span: Span;
}

export type TestOutcome = 'pass' | 'fail' | 'error';

export interface TestResult {
  name: string;
  package: string;
  file: string;
  span: Span;
  outcome: TestOutcome;
  failures: ExpectationFailure[];
  /** Set when the test could not run (no input, no resource). */
  error?: string;
  decision?: Decision;
  /** Per statement: the explanation of its decision (for failed tests and -v). */
  explanations: Explanation[];
  durationMs: number;
}

export interface RunOptions {
  /** Only tests whose name matches (`--run`). */
  filter?: (name: string) => boolean;
}

export interface RunResult {
  results: TestResult[];
  coverage: CoverageTrace;
}

/** Rule ids that applied in some test, and (rule id, effect) pairs that determined some verdict. */
export interface CoverageTrace {
  applied: Set<string>;
  decided: Set<string>;
}

/** The fixed context tests run in unless they give one (deterministic: tests must not depend on the clock). */
export const TEST_CONTEXT: RequestContext = { time: '2026-01-01T12:00:00Z', client_addr: '127.0.0.1', session_id: 'test' };

export function runTests(policy: PreparedPolicy, classifiers: Classifiers, options: RunOptions = {}): RunResult {
  const coverage: CoverageTrace = { applied: new Set(), decided: new Set() };
  const ruleIds = new Set(policy.rules.map((r) => r.id));
  const results: TestResult[] = [];
  for (const t of policy.tests) {
    if (options.filter && !options.filter(t.test.name.value)) continue;
    results.push(runOne(policy, t, classifiers, ruleIds, coverage));
  }
  return { results, coverage };
}

function runOne(policy: PreparedPolicy, t: PolicyTest, classifiers: Classifiers, ruleIds: ReadonlySet<string>, coverage: CoverageTrace): TestResult {
  const started = performance.now();
  const base = { name: t.test.name.value, package: t.package, file: t.file, span: t.test.span, explanations: [] as Explanation[] };
  const built = buildRequests(t.test, classifiers);
  if (!built.ok) {
    return { ...base, outcome: 'error', failures: [], error: built.error, durationMs: performance.now() - started };
  }
  const explanations = built.requests.map((r) => explainAsGateway(policy, r, classifiers));
  const decision = combineDecisions(explanations.map((e) => e.decision));
  for (const e of explanations) {
    for (const r of e.rules) if (r.outcome.status === 'applied') coverage.applied.add(r.id);
    for (const reason of e.decision.reasons) coverage.decided.add(reason.id);
    // A limit-only rule is never a reason; its effect was exercised when its limit is in the decision.
    const limits = e.decision.limits;
    if (limits) {
      if (limits.rows) coverage.decided.add(limits.rows.rule);
      if (limits.time) coverage.decided.add(limits.time.rule);
      for (const r of limits.rate) coverage.decided.add(r.rule);
    }
  }
  const failures = t.test.expects.flatMap((x) => check(x, decision, t.package, ruleIds));
  return {
    ...base,
    outcome: failures.length === 0 ? 'pass' : 'fail',
    failures,
    decision,
    explanations,
    durationMs: performance.now() - started,
  };
}

/**
 * `policy.explain(request)` with the decision the gateway makes: a SQL statement that reads is also
 * decided as the read it contains (`Classifiers.readView`, proxy/enforcement/decide.ts), so the
 * verdict and masks shown are the ones the statement would run with.
 */
export function explainAsGateway(policy: PreparedPolicy, request: Request, classifiers: Pick<Classifiers, 'readView'>): Explanation {
  const e = policy.explain(request);
  const read = request.action.type === 'sql' ? classifiers.readView?.(request.action) : undefined;
  const decision = withReadView(e.decision, read, (action) => policy.evaluate({ ...request, action }), policy.tableScopes);
  return decision === e.decision ? e : { ...e, decision };
}

type Built = { ok: true; requests: Request[] } | { ok: false; error: string };

/** The requests a test stands for: one per SQL statement, or one shell command line. */
export function buildRequests(test: TestCase, classifiers: Classifiers): Built {
  if (!test.input) return { ok: false, error: 'the test has no `sql` or `shell` input' };
  if (!test.resource) return { ok: false, error: 'the test has no `resource`' };
  const identity = toIdentity(test.identity ? literalValue(test.identity) : {});
  const resource: Resource = { kind: test.resource.resourceKind, name: test.resource.name.value, labels: {} };
  const ctx = { ...TEST_CONTEXT, ...stringFields(test.context ? literalValue(test.context) : {}) };
  let actions: Action[];
  if (test.input.kind === 'SqlInput') {
    if (resource.kind !== 'postgres') return { ok: false, error: `a \`sql\` input needs a postgres resource, not ${resource.kind}` };
    actions = classifiers.sql.classify(test.input.text.value);
    if (actions.length === 0) return { ok: false, error: 'the `sql` input holds no statement' };
    // `estimate { rows, cost }` stands for the upstream's EXPLAIN (sql.estimate); without it a
    // condition that reads sql.estimate errors, as it does in the gateway when EXPLAIN fails.
    if (test.estimate) {
      const e = literalValue(test.estimate) as { rows?: unknown; cost?: unknown };
      const estimate = { rows: typeof e.rows === 'number' ? e.rows : 0, cost: typeof e.cost === 'number' ? e.cost : 0 };
      actions = actions.map((a) => (a.type === 'sql' ? withEstimate(a, estimate) : a));
    } else {
      actions = actions.map((a) => (a.type === 'sql' ? withEstimate(a, { error: 'the test gives no `estimate { rows: N, cost: C }`' }) : a));
    }
  } else {
    if (resource.kind !== 'ssh') return { ok: false, error: `a \`shell\` input needs an ssh resource, not ${resource.kind}` };
    actions = [classifiers.shell.classify(test.input.text.value)];
  }
  return { ok: true, requests: actions.map((action) => ({ identity, resource, action, context: ctx })) };
}

function check(x: Expectation, d: Decision, pkg: string, ruleIds: ReadonlySet<string>): ExpectationFailure[] {
  const fail = (expected: string, actual: string): ExpectationFailure[] => [{ expected, actual, span: x.span }];
  switch (x.kind) {
    case 'ExpectVerdict':
      return d.verdict === x.verdict ? [] : fail(`verdict ${x.verdict}`, `verdict ${d.verdict}${d.message ? ` ("${d.message}")` : ''}`);
    case 'ExpectMaskColumn': {
      const want = normaliseColumn(x.column.value) ?? x.column.value;
      const have = d.masks.columns.map((c) => c.column);
      return have.includes(want) ? [] : fail(`mask column "${x.column.value}"`, have.length ? `masked columns ${have.join(', ')}` : 'no column masks');
    }
    case 'ExpectApprovers': {
      const want = x.groups.map((g) => g.value);
      const missing = want.filter((g) => !d.approvers.includes(g));
      const quorum = d.approvalQuorum ?? 1;
      // Without `N of`, any quorum passes (`expect approve by group "dba"` keeps working).
      if (d.verdict === 'approve' && missing.length === 0 && (x.quorum === undefined || x.quorum.value === quorum)) return [];
      const wanted = `approve by ${x.quorum ? `${x.quorum.value} of ` : ''}${want.map((g) => `"${g}"`).join(', ')}`;
      return fail(wanted, d.verdict === 'approve' ? `approvers ${quorum > 1 ? `${quorum} of ` : ''}${d.approvers.join(', ') || '(none)'}` : `verdict ${d.verdict}`);
    }
    case 'ExpectRules': {
      const want = x.rules.map((n) => resolveRuleName(n.value, pkg, ruleIds) ?? qualify(pkg, n.value)).sort();
      const have = [...new Set(d.reasons.map((r) => r.id))].sort();
      const same = want.length === have.length && want.every((w, i) => w === have[i]);
      return same ? [] : fail(`rules [${want.join(', ')}]`, `rules [${have.join(', ')}]`);
    }
    case 'ExpectMessage':
      return d.message === x.message.value ? [] : fail(`message "${x.message.value}"`, d.message === undefined ? 'no message' : `message "${d.message}"`);
    case 'ExpectLimit': {
      const want = limitText(x.limit);
      const l = d.limits;
      const blocked = d.verdict === 'block' ? ` (verdict block${d.message ? `: "${d.message}"` : ''})` : '';
      if (x.limit.kind === 'LimitRows') {
        if (l?.rows?.rows === x.limit.rows.value) return [];
        return fail(want, l?.rows ? `limit rows ${l.rows.rows} (by ${l.rows.rule})` : `no row limit${blocked}`);
      }
      if (x.limit.kind === 'LimitTime') {
        if (l?.time?.ms === x.limit.duration.ms) return [];
        return fail(want, l?.time ? `limit time ${formatDurationMs(l.time.ms)} (by ${l.time.rule})` : `no time limit${blocked}`);
      }
      const { count, per } = x.limit;
      if (l?.rate.some((r) => r.count === count.value && r.windowMs === per.ms)) return [];
      return fail(want, l && l.rate.length > 0 ? l.rate.map((r) => `limit rate ${r.count} per ${formatDurationMs(r.windowMs)} (by ${r.rule})`).join(', ') : `no rate limit${blocked}`);
    }
  }
}

/** A test literal as a plain JS value. */
export function literalValue(l: Literal): unknown {
  switch (l.kind) {
    case 'String':
    case 'Number':
    case 'Bool':
      return l.value;
    case 'Null':
      return null;
    case 'List':
      return l.items.map(literalValue);
    case 'Object':
      return Object.fromEntries(l.entries.map((e) => [e.key.value, literalValue(e.value)]));
  }
}

function toIdentity(v: unknown): Identity {
  const o = (v && typeof v === 'object' ? v : {}) as Record<string, unknown>;
  const claims = (o.claims && typeof o.claims === 'object' ? o.claims : {}) as Record<string, unknown>;
  const groups = Array.isArray(o.groups) ? o.groups.filter((g): g is string => typeof g === 'string') : [];
  const sub = typeof o.sub === 'string' ? o.sub : '';
  // `actors` is the RFC 8693 chain, outermost first; `actor` its first entry (either may be given).
  const listed = Array.isArray(o.actors) ? o.actors.filter((a): a is string => typeof a === 'string') : undefined;
  const actor = typeof o.actor === 'string' ? o.actor : listed?.[0];
  const actors = listed ?? (actor !== undefined ? [actor] : undefined);
  return {
    sub,
    groups,
    actor,
    ...(actors ? { actors } : {}),
    ...(typeof o.client_id === 'string' ? { client_id: o.client_id } : {}),
    claims: { sub, groups, ...claims },
    token_id: typeof o.token_id === 'string' ? o.token_id : undefined,
    issuer: typeof o.issuer === 'string' ? o.issuer : undefined,
  };
}

function stringFields(v: unknown): Partial<RequestContext> {
  const o = (v && typeof v === 'object' ? v : {}) as Record<string, unknown>;
  const out: Partial<RequestContext> = {};
  for (const k of ['time', 'client_addr', 'session_id'] as const) if (typeof o[k] === 'string') out[k] = o[k] as string;
  return out;
}
