// The typed AST of the .hoop language.
//
// Every node is a `kind`-discriminated object carrying a `span`. Spans are location only: two
// ASTs are "equal" when they are equal after `stripSpans` (see below), which is what the formatter's
// soundness check and the conformance properties compare.
//
// This module is the contract between `language/` (which builds it), `engine/` (which compiles and
// interprets it) and `cli/` (which formats and reports on it). It imports nothing.

/** A source location. Lines and columns are 1-based; offsets are 0-based, end exclusive. */
export interface Span {
  file: string;
  startOffset: number;
  endOffset: number;
  startLine: number;
  startColumn: number;
  endLine: number;
  endColumn: number;
}

/** Statement kinds by risk, worst first (DESIGN.md "Requests and facts"). */
export const SQL_KINDS = [
  'unknown', 'do', 'call', 'grant', 'ddl', 'truncate', 'delete', 'merge', 'update', 'insert',
  'copy_from', 'copy_to', 'select', 'set', 'transaction', 'explain', 'utility',
] as const;
export type SqlKind = (typeof SQL_KINDS)[number];

/** What `match sql` accepts: the statement kinds plus the `read` and `write` families. */
export const SQL_MATCH_KINDS = [...SQL_KINDS, 'read', 'write'] as const;
export type SqlMatchKind = (typeof SQL_MATCH_KINDS)[number];

export const RESOURCE_KINDS = ['postgres', 'ssh', 'any'] as const;
export type ResourceSelectorKind = (typeof RESOURCE_KINDS)[number];
export type ResourceKind = Exclude<ResourceSelectorKind, 'any'>;

export const VERDICTS = ['allow', 'mask', 'approve', 'block'] as const;
export type Verdict = (typeof VERDICTS)[number];

/** A string literal with its own span (for diagnostics that point inside a list). */
export interface StringLit {
  kind: 'String';
  value: string;
  span: Span;
}

/** A bare or dotted name (`readers_select`, `prod.db.readers_select`). */
export interface Name {
  kind: 'Name';
  value: string;
  span: Span;
}

// ---------------------------------------------------------------------------------------------
// Files

export interface PolicyFile {
  kind: 'PolicyFile';
  file: string;
  /** Dotted package name; `undefined` when the file has no `package` line (the root package ""). */
  package?: Name;
  default?: DefaultDecl;
  rules: Rule[];
  tests: TestCase[];
  /** Comments in source order, kept so the formatter can put them back. */
  comments: Comment[];
  span: Span;
}

export interface Comment {
  kind: 'Comment';
  /** Raw text including the `//` or `/* *\/` delimiters. */
  text: string;
  span: Span;
}

export interface DefaultDecl {
  kind: 'Default';
  effect: 'allow' | 'block';
  message?: StringLit;
  span: Span;
}

// ---------------------------------------------------------------------------------------------
// Rules

export interface Rule {
  kind: 'Rule';
  name: Name;
  on?: OnSelector;
  when?: WhenSelector;
  match?: MatchSelector;
  /** `if` conditions, all of which must hold, in source order. */
  conditions: Condition[];
  /** At least one (a rule with no effect is a diagnostic, and the rule is dropped). */
  effects: Effect[];
  span: Span;
}

/** `on postgres("prod-*", "staging")`; no globs means every resource of that kind. */
export interface OnSelector {
  kind: 'On';
  resourceKind: ResourceSelectorKind;
  globs: StringLit[];
  span: Span;
}

/**
 * `when group "g"` / `when groups ["a", "b"]` (any of) / `when subject "agent-*"` /
 * `when subjects [...]` / `when actor "alice@*"` (RFC 8693 act.sub). Values are globs for
 * subject and actor, exact names for groups.
 */
export interface WhenSelector {
  kind: 'When';
  attribute: 'group' | 'subject' | 'actor';
  values: StringLit[];
  span: Span;
}

export type MatchSelector = SqlMatch | ShellMatch | SshMatch | SftpMatch | ForwardMatch;

/** `match sql select, insert on tables ["public.customers"]`; empty kinds = any statement. */
export interface SqlMatch {
  kind: 'SqlMatch';
  statementKinds: { value: SqlMatchKind; span: Span }[];
  /** Globs over `schema.table`; an unqualified glob means schema `public`. */
  tables?: StringLit[];
  span: Span;
}

/** `match shell ["ls", "cat"]`: every program that would run must be in the list; `match shell any`: any known command. */
export interface ShellMatch {
  kind: 'ShellMatch';
  programs: StringLit[];
  /** `match shell any` (then `programs` is empty). */
  any?: boolean;
  span: Span;
}

/** `match ssh interactive`: a shell channel (with or without a PTY). */
export interface SshMatch {
  kind: 'SshMatch';
  what: 'interactive';
  span: Span;
}

/** What `match sftp` accepts: the SFTP ops plus `read` (read, list, stat) and `write` (every op that changes the file system). */
export const SFTP_MATCH_OPS = ['read', 'write', 'list', 'stat', 'remove', 'rename', 'mkdir', 'rmdir', 'symlink', 'setstat'] as const;
export type SftpMatchOp = (typeof SFTP_MATCH_OPS)[number];

/** `match sftp read, write on paths ["/var/log/**"]`; no ops = every op; paths are globs over normalised absolute paths. */
export interface SftpMatch {
  kind: 'SftpMatch';
  ops: { value: SftpMatchOp; span: Span }[];
  paths?: StringLit[];
  span: Span;
}

/** `match forward to ["db.internal:5432"]`: direct-tcpip forwards to `host:port` globs. */
export interface ForwardMatch {
  kind: 'ForwardMatch';
  targets: StringLit[];
  span: Span;
}

/** A CEL expression written between backticks. `source` is the text inside the backticks. */
export interface Condition {
  kind: 'Condition';
  source: string;
  /** Span of the CEL text itself (inside the backticks), so CEL errors map to file positions. */
  exprSpan: Span;
  span: Span;
}

// ---------------------------------------------------------------------------------------------
// Effects

export type Effect = AllowEffect | BlockEffect | ApproveEffect | MaskColumnEffect | MaskDetectEffect | LimitEffect;

export interface AllowEffect {
  kind: 'Allow';
  span: Span;
}

export interface BlockEffect {
  kind: 'Block';
  message?: StringLit;
  span: Span;
}

export interface Duration {
  kind: 'Duration';
  /** Milliseconds. */
  ms: number;
  /** As written (`15m`), for the formatter. */
  text: string;
  span: Span;
}

export const DEFAULT_APPROVAL_WITHIN_MS = 15 * 60 * 1000;

/**
 * `approve by group "dba" within 15m` (or `by groups ["a", "b"]`). `within` absent = 15m.
 * `approve by 2 of group "dba"`: a quorum of distinct approvers (absent = 1). `lasting 1h`: once
 * approved, the same identity's statements of the same fingerprint on the same resource run
 * without asking again for that long.
 */
export interface ApproveEffect {
  kind: 'Approve';
  groups: StringLit[];
  quorum?: NumberLit;
  within?: Duration;
  lasting?: Duration;
  span: Span;
}

/** Largest `approve by N of ...`. */
export const MAX_APPROVAL_QUORUM = 10;
/** Longest `lasting`. */
export const MAX_APPROVAL_LASTING_MS = 7 * 24 * 3_600_000;

/** `redact`, `null`, `email`, `last4`, `hash`, `partial(4)`. Names are checked by the engine. */
export interface MaskerRef {
  kind: 'Masker';
  name: Name;
  args: NumberLit[];
  span: Span;
}

export interface NumberLit {
  kind: 'Number';
  value: number;
  span: Span;
}

/** `credit_card`, `regex("...")`. Names are checked by the engine against the stdlib registry. */
export interface DetectorRef {
  kind: 'Detector';
  name: Name;
  args: StringLit[];
  span: Span;
}

/** `mask column "customers.email" with email`; column is `table.column` or `schema.table.column`. */
export interface MaskColumnEffect {
  kind: 'MaskColumn';
  column: StringLit;
  masker: MaskerRef;
  span: Span;
}

export interface MaskDetectEffect {
  kind: 'MaskDetect';
  detectors: DetectorRef[];
  masker: MaskerRef;
  span: Span;
}

/**
 * Limits restrict what an allowed (or approved, or masked) request may do; they never grant.
 * `limit rows 1000` (a result is cut after N rows), `limit time 30s` (the statement is cancelled
 * after the duration), `limit rate 10 per 1m` (per identity `sub` and rule, a sliding window).
 */
export type LimitEffect = LimitRowsEffect | LimitTimeEffect | LimitRateEffect;

export const LIMIT_KINDS = ['rows', 'time', 'rate'] as const;
export type LimitKind = (typeof LIMIT_KINDS)[number];

/** The largest `limit rows` (PostgreSQL's Execute row count is a signed 32-bit integer). */
export const MAX_LIMIT_ROWS = 2_147_483_647;
/** The largest `limit rate` count. */
export const MAX_LIMIT_RATE = 1_000_000;
/** The longest `limit time` and `limit rate` window: one day. */
export const MAX_LIMIT_DURATION_MS = 86_400_000;
/** The shortest `limit rate` window: one second. */
export const MIN_RATE_WINDOW_MS = 1000;

/** A duration in ms as the language writes it: the largest unit that divides it (`90s`, `2h`, `250ms`). */
export function formatDurationMs(ms: number): string {
  for (const [unit, size] of [['d', 86_400_000], ['h', 3_600_000], ['m', 60_000], ['s', 1000]] as const) {
    if (ms >= size && ms % size === 0) return `${ms / size}${unit}`;
  }
  return `${ms}ms`;
}

export interface LimitRowsEffect {
  kind: 'LimitRows';
  rows: NumberLit;
  span: Span;
}

export interface LimitTimeEffect {
  kind: 'LimitTime';
  duration: Duration;
  span: Span;
}

export interface LimitRateEffect {
  kind: 'LimitRate';
  count: NumberLit;
  per: Duration;
  span: Span;
}

// ---------------------------------------------------------------------------------------------
// Tests

/** A JSON-like literal used in test fixtures (`identity { sub: "a", groups: ["x"] }`). */
export type Literal =
  | { kind: 'String'; value: string; span: Span }
  | { kind: 'Number'; value: number; span: Span }
  | { kind: 'Bool'; value: boolean; span: Span }
  | { kind: 'Null'; span: Span }
  | { kind: 'List'; items: Literal[]; span: Span }
  | { kind: 'Object'; entries: ObjectEntry[]; span: Span };

export interface ObjectEntry {
  key: Name;
  value: Literal;
}

export interface TestCase {
  kind: 'Test';
  name: StringLit;
  /** `identity { sub: ..., groups: [...], actor: ..., claims: {...} }` */
  identity?: Extract<Literal, { kind: 'Object' }>;
  /** `resource postgres("prod-main")` (exactly one name, no globs). */
  resource?: { kind: 'TestResource'; resourceKind: ResourceKind; name: StringLit; span: Span };
  /** `context { time: "2026-01-01T10:00:00Z", client_addr: "10.0.0.1" }` */
  context?: Extract<Literal, { kind: 'Object' }>;
  /** `estimate { rows: 50000, cost: 1234.5 }`: the planner's estimate the test's SQL gets (`sql.estimate`). */
  estimate?: Extract<Literal, { kind: 'Object' }>;
  /** `sql "..."` (may hold several statements) or `shell "..."`. */
  input?: { kind: 'SqlInput' | 'ShellInput'; text: StringLit; span: Span };
  expects: Expectation[];
  span: Span;
}

export type Expectation =
  | { kind: 'ExpectVerdict'; verdict: Verdict; span: Span }
  | { kind: 'ExpectMaskColumn'; column: StringLit; span: Span }
  | { kind: 'ExpectApprovers'; groups: StringLit[]; /** `expect approve by 2 of group "dba"`: the decision's quorum too. */ quorum?: NumberLit; span: Span }
  | { kind: 'ExpectRules'; rules: Name[]; span: Span }
  | { kind: 'ExpectMessage'; message: StringLit; span: Span }
  /** `expect limit rows 100` / `expect limit time 30s` / `expect limit rate 10 per 1m`. */
  | { kind: 'ExpectLimit'; limit: LimitEffect; span: Span };

export type Node =
  | PolicyFile | DefaultDecl | Rule | OnSelector | WhenSelector | SqlMatch | ShellMatch | SshMatch | SftpMatch | ForwardMatch | Condition
  | Effect | MaskerRef | DetectorRef | TestCase | Expectation | Literal | Name | Duration | Comment;

/**
 * A deep copy without `span`/`exprSpan` fields and without comments: the value AST equality is defined on.
 */
export function stripSpans<T>(value: T): unknown {
  if (Array.isArray(value)) return value.map((v) => stripSpans(v));
  if (value !== null && typeof value === 'object') {
    const out: Record<string, unknown> = {};
    for (const [k, v] of Object.entries(value as Record<string, unknown>)) {
      if (k === 'span' || k === 'exprSpan' || k === 'comments' || k === 'file') continue;
      if (v === undefined) continue;
      out[k] = stripSpans(v);
    }
    return out;
  }
  return value;
}
