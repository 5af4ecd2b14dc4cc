// fast-check arbitraries for syntactically rich, diagnostic-free .hoop ASTs (with dummy spans).
//
// "Diagnostic-free" matters: the formatter property compares parse(format(ast)) with ast, so the
// generated file must satisfy every per-file check of language/cst-to-ast.ts (unique rule and
// test names, at least one effect, `block` alone, one `approve`, valid durations, columns,
// table globs, identity/context fields, ...). Names deliberately include keywords (`select`,
// `null`, `allow`, ...) because the grammar accepts them wherever it expects a name.

import fc from 'fast-check';
import {
  type ApproveEffect, type DefaultDecl, type DetectorRef, type Effect, type Expectation, type Literal,
  type MaskerRef, type MatchSelector, type Name, type ObjectEntry, type OnSelector, type PolicyFile,
  type Rule, type Span, type StringLit, type TestCase, type WhenSelector, RESOURCE_KINDS, SQL_MATCH_KINDS,
  VERDICTS, type LimitEffect, MAX_LIMIT_ROWS, MAX_LIMIT_RATE, MAX_LIMIT_DURATION_MS, MIN_RATE_WINDOW_MS,
} from '../../language/ast.ts';

export const DUMMY_SPAN: Span = {
  file: 'gen.hoop', startOffset: 0, endOffset: 0, startLine: 1, startColumn: 1, endLine: 1, endColumn: 1,
};
const span = DUMMY_SPAN;

const KEYWORD_NAMES = [
  'select', 'null', 'allow', 'block', 'email', 'rule', 'test', 'on', 'when', 'match', 'with', 'by', 'group',
  'groups', 'tables', 'sql', 'shell', 'expect', 'rules', 'message', 'true', 'false', 'default', 'package',
];

/** A bare name token: an identifier or any keyword. */
export const nameText: fc.Arbitrary<string> = fc.oneof(
  fc.stringMatching(/^[A-Za-z_][A-Za-z0-9_]{0,10}$/),
  fc.constantFrom(...KEYWORD_NAMES),
);

const name = (arb: fc.Arbitrary<string> = nameText): fc.Arbitrary<Name> => arb.map((value) => ({ kind: 'Name', value, span }));

/** Any text, including quotes, backslashes, control characters, non-BMP characters, `//` and `/*`. */
export const anyText: fc.Arbitrary<string> = fc.oneof(
  fc.string({ unit: 'binary', maxLength: 16 }),
  fc.string({ unit: 'binary-ascii', maxLength: 16 }),
  fc.constantFrom('', '"', '\\', '\\d{9}', '// not a comment', '/* nor this */', '`', 'é\u2028\t\n'),
);
const nonEmptyText = anyText.filter((s) => s !== '');

const str = (arb: fc.Arbitrary<string> = anyText): fc.Arbitrary<StringLit> => arb.map((value) => ({ kind: 'String', value, span }));

/** A glob part without dots (for table globs), never empty. */
const globPart = fc.stringMatching(/^[a-z_*?][a-z0-9_*?-]{0,8}$/);
const tableGlob = fc.oneof(globPart, fc.tuple(globPart, globPart).map(([s, t]) => `${s}.${t}`));
const column = fc.oneof(
  fc.tuple(globPart, globPart).map(([t, c]) => `${t}.${c}`),
  fc.tuple(globPart, globPart, globPart).map(([s, t, c]) => `${s}.${t}.${c}`),
);
const program = nonEmptyText.filter((s) => !s.includes('/'));

const uniqueBy = <T>(arb: fc.Arbitrary<T>, key: (t: T) => string, max: number) =>
  fc.uniqueArray(arb, { selector: key, maxLength: max });

const onSelector: fc.Arbitrary<OnSelector> = fc.record({
  resourceKind: fc.constantFrom(...RESOURCE_KINDS),
  globs: fc.array(str(nonEmptyText), { maxLength: 3 }),
}).map((o) => ({ kind: 'On', ...o, span }));

const whenSelector: fc.Arbitrary<WhenSelector> = fc.record({
  attribute: fc.constantFrom('group' as const, 'subject' as const, 'actor' as const),
  values: fc.array(str(nonEmptyText), { minLength: 1, maxLength: 3 }),
}).map((w) => ({ kind: 'When', ...w, span }));

const matchSelector: fc.Arbitrary<MatchSelector> = fc.oneof(
  fc.record({
    kinds: fc.uniqueArray(fc.constantFrom(...SQL_MATCH_KINDS), { maxLength: 4 }),
    tables: fc.option(fc.array(str(tableGlob), { minLength: 1, maxLength: 3 }), { nil: undefined }),
  }).map(({ kinds, tables }): MatchSelector => {
    const m: MatchSelector = { kind: 'SqlMatch', statementKinds: kinds.map((value) => ({ value, span })), span };
    if (tables) m.tables = tables;
    return m;
  }),
  fc.array(str(program), { minLength: 1, maxLength: 4 }).map((programs): MatchSelector => ({ kind: 'ShellMatch', programs, span })),
);

const celSource = fc.oneof(
  fc.constantFrom('!sql.has_where', 'size(shell.redirects) == 0', 'identity.claims.env == "prod"', 'a ||\n  b', ''),
  fc.string({ unit: 'binary', maxLength: 24 }),
).filter((s) => !s.includes('`'));

const masker: fc.Arbitrary<MaskerRef> = fc.record({
  name: name(fc.oneof(fc.constantFrom('redact', 'null', 'email', 'last4', 'hash', 'partial'), nameText)),
  args: fc.array(fc.nat({ max: 10_000 }).map((value) => ({ kind: 'Number' as const, value, span })), { maxLength: 2 }),
}).map((m) => ({ kind: 'Masker', ...m, span }));

const detector: fc.Arbitrary<DetectorRef> = fc.record({
  name: name(fc.oneof(fc.constantFrom('email', 'credit_card', 'us_ssn', 'phone', 'iban', 'jwt', 'api_key', 'regex'), nameText)),
  args: fc.array(str(), { maxLength: 2 }),
}).map((d) => ({ kind: 'Detector', ...d, span }));

const UNITS: Record<string, number> = { s: 1000, m: 60_000, h: 3_600_000, d: 86_400_000 };
const approve: fc.Arbitrary<ApproveEffect> = fc.record({
  groups: fc.array(str(nonEmptyText), { minLength: 1, maxLength: 3 }),
  within: fc.option(fc.tuple(fc.integer({ min: 1, max: 9999 }), fc.constantFrom('s', 'm', 'h', 'd')), { nil: undefined }),
  quorum: fc.option(fc.integer({ min: 1, max: 10 }), { nil: undefined }),
  lasting: fc.option(fc.tuple(fc.integer({ min: 1, max: 7 }), fc.constantFrom('m', 'h', 'd')), { nil: undefined }),
}).map(({ groups, within, quorum, lasting }) => {
  const e: ApproveEffect = { kind: 'Approve', groups, span };
  if (quorum !== undefined) e.quorum = { kind: 'Number', value: quorum, span };
  if (within) e.within = { kind: 'Duration', ms: within[0] * UNITS[within[1]], text: `${within[0]}${within[1]}`, span };
  if (lasting) e.lasting = { kind: 'Duration', ms: lasting[0] * UNITS[lasting[1]], text: `${lasting[0]}${lasting[1]}`, span };
  return e;
});

const maskEffect: fc.Arbitrary<Effect> = fc.oneof(
  fc.record({ column: str(column), masker }).map((m): Effect => ({ kind: 'MaskColumn', ...m, span })),
  fc.record({ detectors: fc.array(detector, { minLength: 1, maxLength: 3 }), masker }).map((m): Effect => ({ kind: 'MaskDetect', ...m, span })),
);

/** A duration of `n` units within [min, max] ms, written as the formatter keeps it (`250ms`, `30s`). */
const UNITS_WITH_MS: Record<string, number> = { ms: 1, ...UNITS };
const boundedDuration = (min: number, max: number) =>
  fc.constantFrom(...Object.keys(UNITS_WITH_MS).filter((u) => Math.ceil(min / UNITS_WITH_MS[u]) <= Math.floor(max / UNITS_WITH_MS[u])))
    .chain((unit) => fc.integer({ min: Math.max(1, Math.ceil(min / UNITS_WITH_MS[unit])), max: Math.floor(max / UNITS_WITH_MS[unit]) })
      .map((n) => ({ kind: 'Duration' as const, ms: n * UNITS_WITH_MS[unit], text: `${n}${unit}`, span })));
const count = (max: number) => fc.integer({ min: 1, max }).map((value) => ({ kind: 'Number' as const, value, span }));

const limitRows = count(MAX_LIMIT_ROWS).map((rows): LimitEffect => ({ kind: 'LimitRows', rows, span }));
const limitTime = boundedDuration(1, MAX_LIMIT_DURATION_MS).map((duration): LimitEffect => ({ kind: 'LimitTime', duration, span }));
const limitRate = fc.record({ count: count(MAX_LIMIT_RATE), per: boundedDuration(MIN_RATE_WINDOW_MS, MAX_LIMIT_DURATION_MS) })
  .map(({ count: c, per }): LimitEffect => ({ kind: 'LimitRate', count: c, per, span }));
export const limitEffect: fc.Arbitrary<LimitEffect> = fc.oneof(limitRows, limitTime, limitRate);

/** At most one `limit rows`, one `limit time`, and rate limits with distinct windows (repeats warn). */
const limits: fc.Arbitrary<LimitEffect[]> = fc.record({
  rows: fc.option(limitRows, { nil: undefined }),
  time: fc.option(limitTime, { nil: undefined }),
  rates: fc.uniqueArray(limitRate, { selector: (r) => (r as Extract<LimitEffect, { kind: 'LimitRate' }>).per.ms, maxLength: 2 }),
}).map(({ rows, time, rates }) => [...(rows ? [rows] : []), ...(time ? [time] : []), ...rates]);

/** Effect lists the per-file checks accept: `block` alone, or at most one grant plus masks and limits. */
const effects: fc.Arbitrary<Effect[]> = fc.oneof(
  fc.option(str(), { nil: undefined }).map((message): Effect[] => [message ? { kind: 'Block', message, span } : { kind: 'Block', span }]),
  fc.tuple(
    fc.constantFrom('allow', 'approve', 'none'),
    approve,
    fc.array(maskEffect, { maxLength: 3 }),
    limits,
    fc.nat(),
    fc.nat(),
  ).map(([grant, ap, masks, ls, pos, lpos]) => {
    const g: Effect[] = grant === 'allow' ? [{ kind: 'Allow', span }] : grant === 'approve' ? [ap] : [];
    const out: Effect[] = [...masks];
    out.splice(pos % (out.length + 1), 0, ...g);
    for (const [i, l] of ls.entries()) out.splice((lpos + i) % (out.length + 1), 0, l);
    return out;
  }).filter((es) => es.length > 0),
);

const rule = (ruleName: string): fc.Arbitrary<Rule> =>
  fc.record({
    on: fc.option(onSelector, { nil: undefined }),
    when: fc.option(whenSelector, { nil: undefined }),
    match: fc.option(matchSelector, { nil: undefined }),
    conditions: fc.array(celSource.map((source) => ({ kind: 'Condition' as const, source, exprSpan: span, span })), { maxLength: 2 }),
    effects,
  })
    .filter(({ on, match }) => !(on?.resourceKind === 'postgres' && match?.kind === 'ShellMatch') && !(on?.resourceKind === 'ssh' && match?.kind === 'SqlMatch'))
    .filter(({ on, match, effects: es }) => !((on?.resourceKind === 'ssh' || match?.kind === 'ShellMatch') && es.some((e) => e.kind === 'LimitRows')))
    .map((r) => {
      const out: Rule = { kind: 'Rule', name: { kind: 'Name', value: ruleName, span }, conditions: r.conditions, effects: r.effects, span };
      if (r.on) out.on = r.on;
      if (r.when) out.when = r.when;
      if (r.match) out.match = r.match;
      return out;
    });

// ---------------------------------------------------------------------------------------------
// Test literals

const numberValue = fc.oneof(
  fc.integer({ min: -1_000_000, max: 1_000_000 }),
  fc.double({ noNaN: true, noDefaultInfinity: true }).filter((d) => !Object.is(d, -0)),
);

export const literal: fc.Arbitrary<Literal> = fc.letrec<{ lit: Literal }>((tie) => ({
  lit: fc.oneof(
    { depthSize: 'small', withCrossShrink: true },
    str(),
    numberValue.map((value): Literal => ({ kind: 'Number', value, span })),
    fc.boolean().map((value): Literal => ({ kind: 'Bool', value, span })),
    fc.constant<Literal>({ kind: 'Null', span }),
    fc.array(tie('lit'), { maxLength: 3 }).map((items): Literal => ({ kind: 'List', items, span })),
    uniqueBy(fc.record({ key: name(fc.oneof(nameText, anyText)), value: tie('lit') }), (e) => e.key.value, 3)
      .map((entries): Literal => ({ kind: 'Object', entries, span })),
  ),
})).lit;

type ObjectLit = Extract<Literal, { kind: 'Object' }>;
const obj = (entries: ObjectEntry[]): ObjectLit => ({ kind: 'Object', entries, span });
const entry = (key: string, value: Literal): ObjectEntry => ({ key: { kind: 'Name', value: key, span }, value });
const strLit = (value: string): Literal => ({ kind: 'String', value, span });

const identity: fc.Arbitrary<ObjectLit> = fc.record(
  {
    sub: anyText.map(strLit),
    issuer: anyText.map(strLit),
    groups: fc.array(str(), { maxLength: 3 }).map((items): Literal => ({ kind: 'List', items, span })),
    actor: anyText.map(strLit),
    claims: uniqueBy(fc.record({ key: name(fc.oneof(nameText, anyText)), value: literal }), (e) => e.key.value, 3).map(obj),
    token_id: anyText.map(strLit),
  },
  { requiredKeys: [] },
).map((r) => obj(Object.entries(r).map(([k, v]) => entry(k, v as Literal))));

const context: fc.Arbitrary<ObjectLit> = fc.record(
  {
    time: fc.date({ min: new Date('2000-01-01T00:00:00Z'), max: new Date('2100-01-01T00:00:00Z'), noInvalidDate: true }).map((d) => strLit(d.toISOString())),
    client_addr: fc.ipV4().map(strLit),
    session_id: anyText.map(strLit),
  },
  { requiredKeys: [] },
).map((r) => obj(Object.entries(r).map(([k, v]) => entry(k, v as Literal))));

const testCase = (testName: string, ruleNames: string[], pkg: string | undefined): fc.Arbitrary<TestCase> =>
  fc.record({
    identity: fc.option(identity, { nil: undefined }),
    resourceKind: fc.option(fc.constantFrom('postgres' as const, 'ssh' as const), { nil: undefined }),
    resourceName: anyText,
    context: fc.option(context, { nil: undefined }),
    estimate: fc.option(fc.record({ rows: fc.nat(), cost: fc.double({ min: 0, max: 1e9, noNaN: true }).filter((d) => !Object.is(d, -0)) }, { requiredKeys: [] }), { nil: undefined }),
    inputText: anyText,
    shellInput: fc.boolean(),
    verdict: fc.option(fc.constantFrom(...VERDICTS), { nil: undefined }),
    message: fc.option(anyText, { nil: undefined }),
    rules: fc.option(fc.subarray(ruleNames), { nil: undefined }),
    qualifyRules: fc.boolean(),
    columns: fc.array(column, { maxLength: 2 }),
    approvers: fc.array(fc.array(str(nonEmptyText), { minLength: 1, maxLength: 2 }), { maxLength: 2 }),
    expectRows: fc.option(limitRows, { nil: undefined }),
    expectTime: fc.option(limitTime, { nil: undefined }),
    expectRates: fc.array(limitRate, { maxLength: 2 }),
    order: fc.nat(),
  }).map((r) => {
    const shell = r.resourceKind === 'ssh' || (r.resourceKind === undefined && r.shellInput);
    const expects: Expectation[] = [];
    if (r.verdict) expects.push({ kind: 'ExpectVerdict', verdict: r.verdict, span });
    for (const c of r.columns) expects.push({ kind: 'ExpectMaskColumn', column: { kind: 'String', value: c, span }, span });
    for (const groups of r.approvers) expects.push({ kind: 'ExpectApprovers', groups, span });
    if (r.rules) {
      const rules = r.rules.map((n) => ({ kind: 'Name' as const, value: r.qualifyRules && pkg ? `${pkg}.${n}` : n, span }));
      expects.push({ kind: 'ExpectRules', rules, span });
    }
    if (r.message !== undefined) expects.push({ kind: 'ExpectMessage', message: { kind: 'String', value: r.message, span }, span });
    for (const limit of [r.expectRows, r.expectTime, ...r.expectRates]) if (limit) expects.push({ kind: 'ExpectLimit', limit, span });
    if (expects.length === 0) expects.push({ kind: 'ExpectVerdict', verdict: 'block', span });
    // Rotate so expectation kinds appear in every order.
    const k = r.order % expects.length;
    const rotated = [...expects.slice(k), ...expects.slice(0, k)];
    const t: TestCase = {
      kind: 'Test',
      name: { kind: 'String', value: testName, span },
      input: { kind: shell ? 'ShellInput' : 'SqlInput', text: { kind: 'String', value: r.inputText, span }, span },
      expects: rotated,
      span,
    };
    if (r.identity) t.identity = r.identity;
    if (r.context) t.context = r.context;
    if (r.estimate) t.estimate = obj(Object.entries(r.estimate).map(([k, v]) => entry(k, { kind: 'Number', value: v, span })));
    if (r.resourceKind) t.resource = { kind: 'TestResource', resourceKind: r.resourceKind, name: { kind: 'String', value: r.resourceName, span }, span };
    return t;
  });

const packageName = fc.array(nameText, { minLength: 1, maxLength: 3 }).map((parts) => parts.join('.'));

const defaultDecl: fc.Arbitrary<DefaultDecl> = fc.oneof(
  fc.constant<DefaultDecl>({ kind: 'Default', effect: 'allow', span }),
  fc.option(str(), { nil: undefined }).map((message): DefaultDecl => (message ? { kind: 'Default', effect: 'block', message, span } : { kind: 'Default', effect: 'block', span })),
);

/** A whole file: optional package and default, up to `maxRules` rules and a few tests. */
export function policyFileArb(maxRules = 6): fc.Arbitrary<PolicyFile> {
  return fc.record({
    pkg: fc.option(packageName, { nil: undefined }),
    def: fc.option(defaultDecl, { nil: undefined }),
    ruleNames: fc.uniqueArray(nameText, { maxLength: maxRules }),
    testNames: fc.uniqueArray(anyText, { maxLength: 3 }),
  }).chain(({ pkg, def, ruleNames, testNames }) =>
    fc.record({
      rules: fc.tuple(...ruleNames.map((n) => rule(n))),
      tests: fc.tuple(...testNames.map((n) => testCase(n, ruleNames, pkg))),
    }).map(({ rules, tests }) => {
      const f: PolicyFile = { kind: 'PolicyFile', file: 'gen.hoop', rules, tests, comments: [], span };
      if (pkg) f.package = { kind: 'Name', value: pkg, span };
      if (def) f.default = def;
      return f;
    }),
  );
}
