// fast-check generators of small policy sets (as ASTs) and of requests that exercise them.
//
// The vocabulary is deliberately small — three groups, four resources, a handful of tables,
// programs and CEL conditions — so generated requests hit generated rules often and every
// selector, effect and verdict path is reached within a few hundred runs. Every name, glob and
// condition here is valid, so every generated set compiles; the conditions include one that fails
// at run time whenever the token lacks a `team` claim, to exercise fail-closed evaluation.

import fc from 'fast-check';
import type {
  Condition, DefaultDecl, Effect, MatchSelector, OnSelector, PolicyFile, ResourceSelectorKind, Rule, Span, SqlMatchKind,
  StringLit, WhenSelector,
} from '../../language/ast.ts';
import type { Request, ShellAction, SqlAction, SqlKind } from '../../stdlib/facts.ts';

export const GROUPS = ['a', 'b', 'c'];
export const RESOURCE_NAMES = ['prod-main', 'prod-2', 'staging', 'dev'];
const NAME_GLOBS = ['prod-*', 'staging', '*', 'dev', 'p?od-main', 'prod-main'];
const SUBJECT_GLOBS = ['agent-*', 'ci-?', 'agent-1'];
const ACTOR_GLOBS = ['alice@*', 'bob'];
const MATCH_KINDS: SqlMatchKind[] = ['select', 'insert', 'update', 'delete', 'ddl', 'unknown', 'read', 'write', 'copy_to'];
const TABLE_GLOBS = ['customers', 'public.orders', 'hr.*', '*.customers'];
const PROGRAMS = ['ls', 'cat', 'rm', 'grep'];
const COLUMNS = ['customers.email', 'public.customers.card', 'hr.people.ssn'];

/** Conditions that never fail at run time. */
export const SAFE_CONDITIONS = [
  '!sql.has_where',
  'sql.limit > 100',
  'identity.sub == "agent-1"',
  'size(shell.redirects) == 0',
  '"a" in identity.groups',
  're2_matches(resource.name, "^prod")',
  'true',
  'false',
];
/** Fails at run time unless the token has a `team` claim. */
export const FAILING_CONDITION = 'identity.claims.team == "data"';
/** Fails at run time on every generated request (no token has this claim). */
export const ALWAYS_FAILING_CONDITION = 'identity.claims.never_present == "x"';

export const REQUEST_SUBJECTS = ['agent-1', 'agent-2', 'ci-1', 'ci-12', 'x'];
const REQUEST_TABLES = ['public.customers', 'public.orders', 'hr.people', 'crm.customers'];
const REQUEST_KINDS: SqlKind[] = ['select', 'insert', 'update', 'delete', 'ddl', 'unknown', 'copy_to', 'truncate', 'set'];

let offset = 0;
/** A synthetic, unique span (spans only need to be distinct and stable per node). */
export function span(file = 'gen.hoop'): Span {
  const start = offset++;
  return { file, startOffset: start, endOffset: start + 1, startLine: 1, startColumn: start + 1, endLine: 1, endColumn: start + 2 };
}

const str = (value: string): StringLit => ({ kind: 'String', value, span: span() });
const subset = <T>(items: readonly T[], min = 1, max = 2) => fc.uniqueArray(fc.constantFrom(...items), { minLength: min, maxLength: max });

const onArb: fc.Arbitrary<OnSelector | undefined> = fc.option(
  fc.record({ kind: fc.constantFrom<ResourceSelectorKind>('postgres', 'ssh', 'any'), globs: subset(NAME_GLOBS, 0, 2) })
    .map(({ kind, globs }) => ({ kind: 'On' as const, resourceKind: kind, globs: globs.map(str), span: span() })),
  { nil: undefined, freq: 2 },
);

const whenArb: fc.Arbitrary<WhenSelector | undefined> = fc.option(
  fc.oneof(
    subset(GROUPS).map((values) => ({ attribute: 'group' as const, values })),
    subset(SUBJECT_GLOBS).map((values) => ({ attribute: 'subject' as const, values })),
    subset(ACTOR_GLOBS).map((values) => ({ attribute: 'actor' as const, values })),
  ).map(({ attribute, values }) => ({ kind: 'When' as const, attribute, values: values.map(str), span: span() })),
  { nil: undefined, freq: 2 },
);

const matchArb: fc.Arbitrary<MatchSelector | undefined> = fc.option(
  fc.oneof(
    fc.record({ kinds: subset(MATCH_KINDS, 0, 3), tables: fc.option(subset(TABLE_GLOBS), { nil: undefined }) }).map(({ kinds, tables }) => ({
      kind: 'SqlMatch' as const,
      statementKinds: kinds.map((value) => ({ value, span: span() })),
      tables: tables?.map(str),
      span: span(),
    })),
    subset(PROGRAMS, 0, 3).map((programs) => ({ kind: 'ShellMatch' as const, programs: programs.map(str), span: span() })),
  ),
  { nil: undefined, freq: 3 },
);

const condition = (source: string): Condition => ({ kind: 'Condition', source, exprSpan: span(), span: span() });
const conditionsArb = fc.oneof(fc.constant([]), fc.array(fc.constantFrom(...SAFE_CONDITIONS, FAILING_CONDITION), { maxLength: 2 })).map((cs) => cs.map(condition));
export const safeConditionsArb = fc.oneof(fc.constant([]), fc.array(fc.constantFrom(...SAFE_CONDITIONS), { maxLength: 2 })).map((cs) => cs.map(condition));

const masker = (name: string, args: number[] = []) => ({ kind: 'Masker' as const, name: { kind: 'Name' as const, value: name, span: span() }, args: args.map((value) => ({ kind: 'Number' as const, value, span: span() })), span: span() });
const maskColumn = fc.constantFrom(...COLUMNS).chain((column) =>
  fc.constantFrom<[string, number[]]>(['email', []], ['last4', []], ['partial', [2]]).map(([m, args]): Effect => ({ kind: 'MaskColumn', column: str(column), masker: masker(m, args), span: span() })),
);
const maskDetect = fc.constantFrom('credit_card', 'email').map((d): Effect => ({
  kind: 'MaskDetect',
  detectors: [{ kind: 'Detector', name: { kind: 'Name', value: d, span: span() }, args: [], span: span() }],
  masker: masker('redact'),
  span: span(),
}));
const allow = (): Effect => ({ kind: 'Allow', span: span() });
const block = (message?: string): Effect => ({ kind: 'Block', message: message === undefined ? undefined : str(message), span: span() });
const approve = fc.record({
  groups: subset(['dba', 'sre', 'lead']),
  within: fc.option(fc.constantFrom(60_000, 300_000), { nil: undefined }),
  quorum: fc.option(fc.constantFrom(1, 2, 3), { nil: undefined }),
  lasting: fc.option(fc.constantFrom(600_000, 3_600_000), { nil: undefined }),
}).map(({ groups, within, quorum, lasting }): Effect => ({
    kind: 'Approve',
    groups: groups.map(str),
    within: within === undefined ? undefined : { kind: 'Duration', ms: within, text: `${within / 60_000}m`, span: span() },
    ...(quorum === undefined ? {} : { quorum: { kind: 'Number' as const, value: quorum, span: span() } }),
    ...(lasting === undefined ? {} : { lasting: { kind: 'Duration' as const, ms: lasting, text: `${lasting / 60_000}m`, span: span() } }),
    span: span(),
  }));

const duration = (ms: number) => ({ kind: 'Duration' as const, ms, text: ms % 1000 === 0 ? `${ms / 1000}s` : `${ms}ms`, span: span() });
const number = (value: number) => ({ kind: 'Number' as const, value, span: span() });
/** Limit effects over a small vocabulary, so equal and different values meet often. */
export const limitEffectArb: fc.Arbitrary<Effect> = fc.oneof(
  fc.constantFrom(10, 100, 1000).map((rows): Effect => ({ kind: 'LimitRows', rows: number(rows), span: span() })),
  fc.constantFrom(200, 30_000).map((ms): Effect => ({ kind: 'LimitTime', duration: duration(ms), span: span() })),
  fc.constantFrom<[number, number]>([10, 1000], [5, 1000], [100, 60_000]).map(([count, ms]): Effect => ({ kind: 'LimitRate', count: number(count), per: duration(ms), span: span() })),
);
/** Zero to three limits (repeats within a rule included: only the smallest may count). */
export const limitsArb: fc.Arbitrary<Effect[]> = fc.oneof(
  { weight: 2, arbitrary: fc.constant<Effect[]>([]) },
  { weight: 1, arbitrary: fc.array(limitEffectArb, { minLength: 1, maxLength: 3 }) },
);

const grantingEffectsArb: fc.Arbitrary<Effect[]> = fc.oneof(
  fc.constant(null).map(() => [allow()]),
  approve.map((e) => [e]),
  fc.tuple(approve, maskColumn).map((es) => es),
  maskColumn.map((e) => [e]),
  maskDetect.map((e) => [e]),
  maskColumn.map((e) => [allow(), e]),
);

/** One rule's effects: the combinations the parser accepts without an error (limits never beside `block`). */
export const effectsArb: fc.Arbitrary<Effect[]> = fc.oneof(
  { weight: 6, arbitrary: fc.tuple(grantingEffectsArb, limitsArb).map(([es, ls]) => [...es, ...ls]) },
  { weight: 1, arbitrary: fc.option(fc.constantFrom('stop', 'no'), { nil: undefined }).map((m) => [block(m)]) },
  { weight: 1, arbitrary: fc.array(limitEffectArb, { minLength: 1, maxLength: 2 }) },
);

export interface RuleShape {
  on?: OnSelector;
  when?: WhenSelector;
  match?: MatchSelector;
  conditions: Condition[];
  effects: Effect[];
}

export const ruleShapeArb: fc.Arbitrary<RuleShape> = fc.record({ on: onArb, when: whenArb, match: matchArb, conditions: conditionsArb, effects: effectsArb })
  .filter(({ on, match }) => !(on?.resourceKind === 'postgres' && match?.kind === 'ShellMatch') && !(on?.resourceKind === 'ssh' && match?.kind === 'SqlMatch'))
  // `limit rows` in a rule that only matches ssh requests is refused by the parser (HOOP2019).
  .filter(({ on, match, effects }) => !((on?.resourceKind === 'ssh' || match?.kind === 'ShellMatch') && effects.some((e) => e.kind === 'LimitRows')));

export function toRule(shape: RuleShape, name: string): Rule {
  return { kind: 'Rule', name: { kind: 'Name', value: name, span: span() }, ...shape, span: span() };
}

export interface PolicySetShape {
  files: PolicyFile[];
}

const PACKAGES = [undefined, 'p1', 'p2.db'];

/** 1–3 files holding 1–10 rules (names unique across the set), each file maybe with a default. */
export const policySetArb: fc.Arbitrary<PolicyFile[]> = fc.record({
  rules: fc.array(ruleShapeArb, { minLength: 1, maxLength: 10 }),
  fileCount: fc.integer({ min: 1, max: 3 }),
  placement: fc.array(fc.nat(), { minLength: 10, maxLength: 10 }),
  packages: fc.array(fc.constantFrom(...PACKAGES), { minLength: 3, maxLength: 3 }),
  defs: fc.array(fc.constantFrom<DefaultDecl['effect'] | undefined>(undefined, undefined, 'block', 'allow'), { minLength: 3, maxLength: 3 }),
  defMessages: fc.array(fc.option(fc.constantFrom('denied by default', 'ask #data'), { nil: undefined }), { minLength: 3, maxLength: 3 }),
}).map(({ rules, fileCount, placement, packages, defs, defMessages }) => {
  const files: PolicyFile[] = Array.from({ length: fileCount }, (_, i) => ({
    kind: 'PolicyFile',
    file: `f${i}.hoop`,
    package: packages[i] === undefined ? undefined : { kind: 'Name', value: packages[i]!, span: span() },
    default: defs[i] ? { kind: 'Default', effect: defs[i]!, message: defs[i] === 'block' && defMessages[i] !== undefined ? str(defMessages[i]!) : undefined, span: span() } : undefined,
    rules: [],
    tests: [],
    comments: [],
    span: span(),
  }));
  rules.forEach((shape, i) => files[placement[i] % fileCount].rules.push(toRule(shape, `r${i}`)));
  return files;
});

function sqlAction(kind: SqlKind, reads: string[], writes: string[], has_where: boolean, limit: number | null): SqlAction {
  return { type: 'sql', kind, effects: [kind], reads, writes, columns: [], functions: [], has_where, limit, text: '', normalized: '', fingerprint: '' };
}

function shellAction(kind: 'command' | 'unknown', programs: string[], redirects: string[]): ShellAction {
  return { type: 'shell', kind, programs, invocations: programs.map((program) => ({ program, args: [] })), args: [], redirects, dynamic: kind === 'unknown', interpreters: [], text: programs.join(' | ') };
}

const sqlArb = fc.record({
  kind: fc.constantFrom(...REQUEST_KINDS),
  reads: subset(REQUEST_TABLES, 0, 2),
  writes: subset(REQUEST_TABLES, 0, 1),
  has_where: fc.boolean(),
  limit: fc.option(fc.constantFrom(10, 1000), { nil: null }),
}).map(({ kind, reads, writes, has_where, limit }) => sqlAction(kind, reads, writes, has_where, limit));

const shellArb = fc.record({
  kind: fc.constantFrom<'command' | 'unknown'>('command', 'command', 'command', 'unknown'),
  programs: subset(PROGRAMS, 0, 3),
  redirects: fc.constantFrom<string[]>([], ['/tmp/out']),
}).map(({ kind, programs, redirects }) => shellAction(kind, programs, redirects));

/** A request over the same vocabulary; SQL actions go to postgres, shell commands to ssh. */
export const requestArb: fc.Arbitrary<Request> = fc.record({
  sub: fc.constantFrom(...REQUEST_SUBJECTS),
  groups: subset(GROUPS, 0, 2),
  actor: fc.option(fc.constantFrom('alice@example.com', 'bob', 'carol'), { nil: undefined }),
  team: fc.boolean(),
  name: fc.constantFrom(...RESOURCE_NAMES, 'PROD-main'),
  action: fc.oneof({ weight: 3, arbitrary: sqlArb }, { weight: 1, arbitrary: shellArb }),
}).map(({ sub, groups, actor, team, name, action }) => ({
  identity: { sub, groups, actor, claims: team ? { team: 'data' } : {} },
  resource: { kind: action.type === 'sql' ? ('postgres' as const) : ('ssh' as const), name, labels: {} },
  action,
  context: { time: '2026-01-01T10:00:00Z', client_addr: '127.0.0.1', session_id: 's' },
}));

export { allow as allowEffect, block as blockEffect, condition as conditionOf };
