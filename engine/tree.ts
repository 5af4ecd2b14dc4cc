// The compiled policy's intermediate representation: a table of lowered rules plus a decision
// tree over them. Everything here is plain data (JSON-serialisable; no functions, no Maps), so a
// compiled policy can be printed, diffed and cached; `evaluator.ts` links it into runtime
// structures (Maps, compiled globs, CEL programs) once.
//
// Tree levels, from the root (DESIGN.md "The engine compiles rules into a decision tree"):
//   1. resource kind (`postgres` / `ssh`; rules `on any` or without `on` sit under both),
//   2. resource name: exact names in a table, globs in a list, rules without names under `any`,
//   3. action: SQL statement kind (`read`/`write` expanded), "any SQL kind", shell program
//      (indexed under each listed program), "any action" for rules without `match`; under a
//      SQL kind, the tables of `on tables [...]` when they are literal names,
//   4. identity group (`when group(s)`); everything else under `rest`,
// and at the leaves, rule indices whose remaining checks (subject/actor globs, table globs, the
// "every program listed" test, CEL conditions) are residuals evaluated per request.
// A rule may sit at several leaves; the evaluator visits each candidate once.

import type { ResourceKind, ResourceSelectorKind, Span, SqlKind } from '../language/ast.ts';
import type { DetectorSpec, MaskerSpec } from './response.ts';
import type { SftpOp } from '../stdlib/facts.ts';

export const TREE_VERSION = 4;

/** A rule after checking and lowering: the engine's view of it. Index = position in id order. */
export interface LoweredRule {
  index: number;
  /** `package.name` (or `name` in the root package); rules are sorted by it. */
  id: string;
  rule: string;
  package: string;
  span: Span;
  on: { kind: ResourceSelectorKind; globs: string[] } | null;
  when: { attribute: 'group' | 'subject' | 'actor'; values: string[] } | null;
  match: SqlMatchIR | ShellMatchIR | SshMatchIR | SftpMatchIR | ForwardMatchIR | null;
  /** CEL sources, all of which must hold, evaluated in order. */
  conditions: { source: string; span: Span }[];
  effects: EffectsIR;
}

export interface SqlMatchIR {
  type: 'sql';
  /** Concrete kinds (`read`/`write` expanded); null = every kind except `unknown`. */
  kinds: SqlKind[] | null;
  /** Schema-qualified table globs; null = any table. */
  tables: string[] | null;
}

/** The rule's tables when all of them are literal names (then the tree indexes them), else null. */
export function literalTables(match: SqlMatchIR): string[] | null {
  if (match.tables === null || match.tables.length === 0) return null;
  return match.tables.every((t) => !t.includes('*') && !t.includes('?')) ? match.tables : null;
}

export interface ShellMatchIR {
  type: 'shell';
  programs: string[];
  /** `match shell any`: every command that is not `unknown` (programs is empty). */
  any?: boolean;
}

/** `match ssh interactive`. */
export interface SshMatchIR {
  type: 'ssh';
  what: 'interactive';
}

/** `match sftp ...`: concrete ops (`read`/`write` expanded; null = every op) and path globs (null = any path). */
export interface SftpMatchIR {
  type: 'sftp';
  ops: SftpOp[] | null;
  paths: string[] | null;
}

/** `match forward to [...]`: `host:port` globs. */
export interface ForwardMatchIR {
  type: 'forward';
  targets: string[];
}

export interface EffectsIR {
  allow: boolean;
  block: boolean;
  blockMessage?: string;
  /** Merged `approve` effects of the rule: union of groups, shortest `within`. */
  approve: { groups: string[]; withinMs: number; /** 1 unless `N of` */ quorum: number; /** null: not lasting */ lastingMs: number | null } | null;
  /** Normalised `schema.table.column`. */
  columnMasks: { column: string; masker: MaskerSpec }[];
  detectorMasks: { detectors: DetectorSpec[]; masker: MaskerSpec }[];
  /** The rule's limits merged (smallest rows, shortest time, smallest count per window); null = none. */
  limits: LimitsIR | null;
}

export interface LimitsIR {
  rows: number | null;
  timeMs: number | null;
  /** Sorted by window; one entry per window. */
  rates: { count: number; windowMs: number }[];
}

/** Level 4: candidates by identity group; `rest` holds rules without a group selector. */
export interface IdentityNode {
  groups: Record<string, number[]>;
  rest: number[];
}

/**
 * Level 3b, SQL only: candidates by table. A rule whose `on tables` list is all literal names sits
 * under each of them (and needs no table check at the leaf); rules without tables, or with a glob
 * among them, sit under `other`.
 */
export interface TableNode {
  tables: Record<string, IdentityNode>;
  other: IdentityNode | null;
}

/** Level 3: candidates by action. */
export interface ActionNode {
  /** `match sql` rules naming the kind (incl. `unknown` when named). */
  sqlKinds: Partial<Record<SqlKind, TableNode>>;
  /** `match sql` rules without kinds: every SQL kind except `unknown`. */
  sqlAnyKind: TableNode | null;
  /** `match shell` rules, under each program they list (looked up by the action's first program). */
  shellPrograms: Record<string, IdentityNode>;
  /** Every `match shell` rule (for a command that runs no program at all). */
  shellAll: IdentityNode | null;
  /** `match shell any` rules: every known command. */
  shellAny: IdentityNode | null;
  /** `match ssh`, `match sftp` and `match forward` rules (their details are residuals). */
  ssh: IdentityNode | null;
  /** Rules without `match`: every action except `unknown`. */
  anyAction: IdentityNode | null;
}

/** Level 2: candidates by resource name. */
export interface ResourceNode {
  exact: Record<string, ActionNode>;
  globs: { glob: string; node: ActionNode }[];
  /** Rules with no name glob (`on postgres`, `on any`, or no `on`). */
  any: ActionNode | null;
}

export interface DecisionTree {
  version: typeof TREE_VERSION;
  /** Level 1. */
  resources: Record<ResourceKind, ResourceNode>;
}

export interface DefaultIR {
  effect: 'allow' | 'block';
  message?: string;
  span?: Span;
}

/** A whole compiled policy set, as data. */
export interface CompiledPolicyIR {
  version: typeof TREE_VERSION;
  rules: LoweredRule[];
  default: DefaultIR;
  tree: DecisionTree;
}

export const DEFAULT_BLOCK_MESSAGE = 'no rule allows this request';
