// The fast evaluator: links a CompiledPolicyIR into runtime structures once (Maps, compiled globs,
// CEL programs, frozen Reason values), then answers each request by walking the decision tree to
// a handful of candidate rules and checking only their residuals.
//
// Per request: two Map lookups and an array index (or a third lookup for a shell command) reach
// the merged node for (resource kind, resource name, action key), memoised on first use; then one
// lookup per identity group, and per table for SQL. Candidates are de-duplicated with epoch stamps
// in a reused typed array, so nothing is allocated on the way except the Decision itself (and the
// CEL activation, built only when a candidate has a condition). `evaluate` never throws: an internal
// failure is a block (fail closed), and a condition that fails at run time blocks only its rule.

import { SQL_KINDS } from '../language/ast.ts';
import type { Request } from '../stdlib/facts.ts';
import { celActivation, type CelActivation, type CelEnvironment, type CelProgram } from '../stdlib/cel.ts';
import { compileGlob, type GlobMatcher } from '../stdlib/glob.ts';
import { decide, effectFlags, emptyMasks, reasonOf } from './decide.ts';
import { sshMismatch, type SshLikeMatch } from './ssh-match.ts';
import type { Decision, Reason } from './response.ts';
import { literalTables, type ActionNode, type CompiledPolicyIR, type IdentityNode, type LoweredRule, type ResourceNode, type TableNode } from './tree.ts';

interface LinkedIdentity {
  groups: Map<string, number[]>;
  rest: number[];
}

interface LinkedTables {
  tables: Map<string, LinkedIdentity>;
  other: LinkedIdentity | null;
}

interface LinkedAction {
  sqlKinds: Map<string, LinkedTables>;
  sqlAnyKind: LinkedTables | null;
  shellPrograms: Map<string, LinkedIdentity>;
  shellAll: LinkedIdentity | null;
  shellAny: LinkedIdentity | null;
  ssh: LinkedIdentity | null;
  anyAction: LinkedIdentity | null;
}

interface LinkedResource {
  exact: Map<string, LinkedAction>;
  globs: { match: GlobMatcher; node: LinkedAction }[];
  any: LinkedAction | null;
}

/** What remains to check for a candidate rule once the tree has selected it. */
interface Residual {
  /** `when subject/actor` globs (group membership is settled by the tree). */
  who: 'subject' | 'actor' | null;
  whoGlobs: GlobMatcher[];
  tables: GlobMatcher[] | null;
  programs: Set<string> | null;
  /** `match ssh`, `match sftp`, `match forward`. */
  ssh: SshLikeMatch | null;
  conditions: CelProgram[];
  /** Index of the first condition that reads `sql.estimate`, or -1. */
  estimateAt: number;
}

/** Whether a condition reads the cost facts (a mention is enough: asking for an estimate nobody reads only costs time). */
export function readsEstimate(source: string): boolean {
  return /\bestimate\b/.test(source);
}

/** Memoised merged nodes of one resource: SQL by statement kind rank, shell by first program. */
interface MergedEntry {
  sql: (Merged | undefined)[];
  shell: Map<string, Merged>;
}

/** Every candidate path for one (resource, action key), merged: by group, and by table for SQL. */
interface Merged {
  identity: LinkedIdentity;
  byTable: Map<string, LinkedIdentity>;
}

const KIND_RANK = new Map<string, number>(SQL_KINDS.map((kind, rank) => [kind, rank]));

/** How many resources and shell action keys keep memoised merged nodes. */
const MERGED_CACHE_LIMIT = 8192;

const EMPTY: LinkedIdentity = { groups: new Map(), rest: [] };
const NO_TABLES: Map<string, LinkedIdentity> = new Map();

export class Evaluator {
  readonly #rules: readonly LoweredRule[];
  readonly #reasons: readonly Reason[];
  readonly #residuals: (Residual | null)[];
  readonly #flags: Uint8Array;
  readonly #resources: Map<string, LinkedResource>;
  readonly #ir: CompiledPolicyIR;
  readonly #merged = new Map<string, Map<string, MergedEntry>>();
  #mergedSize = 0;
  readonly #stamps: Uint32Array;
  readonly #candidates: Int32Array;
  readonly #applied: Int32Array;
  #epoch = 0;
  #count = 0;
  /** Some rule's condition reads `sql.estimate`. */
  readonly estimates: boolean;

  constructor(ir: CompiledPolicyIR, cel: CelEnvironment) {
    this.#ir = ir;
    this.#rules = ir.rules;
    this.#reasons = ir.rules.map(reasonOf);
    this.#residuals = ir.rules.map((rule) => residualOf(rule, cel));
    this.#flags = Uint8Array.from(ir.rules, effectFlags);
    this.#resources = new Map(Object.entries(ir.tree.resources).map(([kind, node]) => [kind, linkResource(node)]));
    this.#stamps = new Uint32Array(ir.rules.length);
    this.#candidates = new Int32Array(ir.rules.length);
    this.#applied = new Int32Array(ir.rules.length);
    this.estimates = this.#residuals.some((r) => r !== null && r.estimateAt >= 0);
  }

  /**
   * Whether a rule that may apply to this request reads `sql.estimate`: its selectors hold and the
   * conditions before the one that reads it are true. The gateway asks the upstream's EXPLAIN only
   * then. Never throws (an internal failure answers true: the estimate is asked, nothing is skipped).
   */
  needsEstimate(req: Request): boolean {
    if (!this.estimates || req.action.type !== 'sql') return false;
    try {
      const count = this.#collect(req);
      let activation: CelActivation | undefined;
      for (let c = 0; c < count; c++) {
        const residual = this.#residuals[this.#candidates[c]!];
        if (residual === null || residual.estimateAt < 0 || !matchesResidual(residual, req)) continue;
        let before = true;
        for (let i = 0; i < residual.estimateAt && before; i++) {
          activation ??= celActivation(req);
          before = residual.conditions[i]!(activation) === true;
        }
        if (before) return true;
      }
      return false;
    } catch {
      return true;
    }
  }

  evaluate(req: Request): Decision {
    try {
      return this.#evaluate(req);
    } catch (error) {
      // A malformed request or a broken invariant: deny, and say so.
      return {
        verdict: 'block',
        masks: emptyMasks(),
        approvers: [],
        message: `internal error while deciding: ${error instanceof Error ? error.message : String(error)}`,
        reasons: [],
        defaulted: false,
        errors: [{ rule: '', message: error instanceof Error ? error.message : String(error) }],
      };
    }
  }

  #evaluate(req: Request): Decision {
    const count = this.#collect(req);
    const candidates = this.#candidates;
    sortPrefix(candidates, count);
    const applied = this.#applied;
    let appliedCount = 0;
    let errored: number[] | undefined;
    let errorText: string[] | undefined;
    let activation: CelActivation | undefined;
    for (let c = 0; c < count; c++) {
      const index = candidates[c];
      const residual = this.#residuals[index];
      if (residual === null) {
        // The tree settled everything this rule asks (no globs on who, tables, programs or CEL).
        applied[appliedCount++] = index;
        continue;
      }
      if (!matchesResidual(residual, req)) continue;
      let ok = true;
      for (const program of residual.conditions) {
        activation ??= celActivation(req);
        const result = program(activation);
        if (result === true) continue;
        ok = false;
        if (result !== false) {
          (errored ??= []).push(index);
          (errorText ??= []).push(result.error);
        }
        break;
      }
      if (ok) applied[appliedCount++] = index;
    }
    return decide(this.#rules, this.#flags, this.#reasons, applied, appliedCount, errored ?? [], errorText ?? [], this.#ir.default);
  }

  /** Fill #candidates with the de-duplicated rule indices the tree selects; returns how many. */
  #collect(req: Request): number {
    if (++this.#epoch === 0xffffffff) {
      this.#stamps.fill(0);
      this.#epoch = 1;
    }
    this.#count = 0;
    const merged = this.#mergedFor(req);
    const groups = req.identity.groups;
    this.#visit(merged.identity, groups);
    const action = req.action;
    if (merged.byTable.size > 0 && action.type === 'sql') {
      for (const table of action.reads) this.#visit(merged.byTable.get(table), groups);
      for (const table of action.writes) this.#visit(merged.byTable.get(table), groups);
    }
    return this.#count;
  }

  #visit(node: LinkedIdentity | undefined, groups: readonly string[]): void {
    if (node === undefined) return;
    if (node.groups.size > 0) {
      for (let g = 0; g < groups.length; g++) {
        const list = node.groups.get(groups[g]);
        if (list) this.#take(list);
      }
    }
    if (node.rest.length > 0) this.#take(node.rest);
  }

  /**
   * The identity-level node for the request's resource and action: the union of every tree path
   * that can match them (exact name, matching globs, nameless rules; the action's kind or first
   * program, "any kind", "any action"), merged once and memoised per (resource kind, resource
   * name, action key). The memo is bounded: past MERGED_CACHE_LIMIT entries it starts over.
   */
  #mergedFor(req: Request): Merged {
    const { kind, name } = req.resource;
    let byName = this.#merged.get(kind);
    if (!byName) {
      if (!this.#resources.has(kind)) throw new Error(`unknown resource kind ${JSON.stringify(kind)}`);
      byName = new Map();
      this.#merged.set(kind, byName);
    }
    let entry = byName.get(name);
    if (!entry) {
      this.#countMemo();
      entry = { sql: new Array<Merged | undefined>(SQL_KINDS.length), shell: new Map() };
      byName.set(name, entry);
    }
    const action = req.action;
    if (action.type === 'sql') {
      const rank = KIND_RANK.get(action.kind);
      if (rank === undefined) throw new Error(`unknown statement kind ${JSON.stringify(action.kind)}`);
      return (entry.sql[rank] ??= this.#merge(req));
    }
    let key: string;
    if (action.type === 'shell') key = action.kind === 'unknown' ? '\u0000unknown' : action.programs.length > 0 ? `\u0001${action.programs[0]}` : '\u0000none';
    else if (action.type === 'sftp' || action.type === 'ssh') key = `\u0002${action.type}${action.kind === 'unknown' ? ':unknown' : ''}`;
    else throw new Error(`unknown action type ${JSON.stringify((action as { type?: unknown }).type)}`);
    let merged = entry.shell.get(key);
    if (!merged) {
      this.#countMemo();
      merged = this.#merge(req);
      entry.shell.set(key, merged);
    }
    return merged;
  }

  /**
   * Count one more memo entry; past the limit, forget every memoised entry's contents (names and
   * programs come from requests, so the memo must not grow without bound). Entries already
   * fetched by the caller stay usable.
   */
  #countMemo(): void {
    if (++this.#mergedSize <= MERGED_CACHE_LIMIT) return;
    for (const names of this.#merged.values()) {
      for (const entry of names.values()) {
        entry.sql.fill(undefined);
        entry.shell.clear();
      }
      names.clear();
    }
    this.#mergedSize = 1;
  }

  /** Every tree path the request can take, merged (see Merged). */
  #merge(req: Request): Merged {
    const plain: LinkedIdentity[] = [];
    const tabled: LinkedTables[] = [];
    const action = req.action;
    for (const node of this.#actionNodes(req.resource.kind, req.resource.name)) {
      if (action.type === 'sql') {
        const byKind = node.sqlKinds.get(action.kind);
        if (byKind) tabled.push(byKind);
        if (action.kind !== 'unknown') {
          if (node.sqlAnyKind) tabled.push(node.sqlAnyKind);
          if (node.anyAction) plain.push(node.anyAction);
        }
      } else if (action.type === 'shell' && action.kind !== 'unknown') {
        const byProgram = action.programs.length > 0 ? node.shellPrograms.get(action.programs[0]) : node.shellAll;
        if (byProgram) plain.push(byProgram);
        if (node.shellAny) plain.push(node.shellAny);
        if (node.anyAction) plain.push(node.anyAction);
      } else if ((action.type === 'sftp' || action.type === 'ssh') && action.kind !== 'unknown') {
        if (node.ssh) plain.push(node.ssh);
        if (node.anyAction) plain.push(node.anyAction);
      }
    }
    for (const t of tabled) if (t.other) plain.push(t.other);
    const perTable = new Map<string, LinkedIdentity[]>();
    for (const t of tabled) {
      for (const [table, node] of t.tables) {
        const list = perTable.get(table);
        if (list) list.push(node);
        else perTable.set(table, [node]);
      }
    }
    const byTable = perTable.size === 0 ? NO_TABLES : new Map([...perTable].map(([table, nodes]) => [table, mergeIdentities(nodes)]));
    return { identity: mergeIdentities(plain), byTable };
  }

  #take(list: readonly number[]): void {
    const stamps = this.#stamps;
    const epoch = this.#epoch;
    const out = this.#candidates;
    let n = this.#count;
    for (let i = 0; i < list.length; i++) {
      const index = list[i];
      if (stamps[index] !== epoch) {
        stamps[index] = epoch;
        out[n++] = index;
      }
    }
    this.#count = n;
  }

  #actionNodes(kind: string, name: string): LinkedAction[] {
    const resource = this.#resources.get(kind);
    if (!resource) throw new Error(`unknown resource kind ${JSON.stringify(kind)}`);
    const nodes: LinkedAction[] = [];
    const exact = resource.exact.get(name);
    if (exact) nodes.push(exact);
    for (const { match, node } of resource.globs) if (match(name)) nodes.push(node);
    if (resource.any) nodes.push(resource.any);
    return nodes;
  }
}

/** Union of identity nodes: per group and for `rest`, sorted duplicate-free rule indices. */
function mergeIdentities(nodes: readonly LinkedIdentity[]): LinkedIdentity {
  if (nodes.length === 0) return EMPTY;
  if (nodes.length === 1) return nodes[0];
  const groups = new Map<string, number[]>();
  const rest: number[] = [];
  for (const node of nodes) {
    for (const [group, list] of node.groups) {
      const into = groups.get(group);
      if (into) into.push(...list);
      else groups.set(group, [...list]);
    }
    rest.push(...node.rest);
  }
  const tidy = (list: number[]): number[] => [...new Set(list)].sort((a, b) => a - b);
  for (const [group, list] of groups) groups.set(group, tidy(list));
  return { groups, rest: tidy(rest) };
}

function sortPrefix(a: Int32Array, n: number): void {
  if (n > 64) {
    a.subarray(0, n).sort();
    return;
  }
  for (let i = 1; i < n; i++) {
    const v = a[i];
    let j = i - 1;
    while (j >= 0 && a[j] > v) {
      a[j + 1] = a[j];
      j--;
    }
    a[j + 1] = v;
  }
}

function matchesResidual(residual: Residual, req: Request): boolean {
  if (residual.who !== null) {
    const value = residual.who === 'subject' ? req.identity.sub : req.identity.actor;
    if (value === undefined || !anyMatch(residual.whoGlobs, value)) return false;
  }
  const action = req.action;
  if (residual.tables !== null) {
    if (action.type !== 'sql') return false;
    if (!anyTableMatches(residual.tables, action.reads) && !anyTableMatches(residual.tables, action.writes)) return false;
  }
  if (residual.programs !== null) {
    if (action.type !== 'shell') return false;
    for (const program of action.programs) if (!residual.programs.has(program)) return false;
  }
  if (residual.ssh !== null && sshMismatch(residual.ssh, action) !== null) return false;
  return true;
}

function anyMatch(globs: readonly GlobMatcher[], value: string): boolean {
  for (const match of globs) if (match(value)) return true;
  return false;
}

function anyTableMatches(globs: readonly GlobMatcher[], tables: readonly string[]): boolean {
  for (const table of tables) if (anyMatch(globs, table)) return true;
  return false;
}

function residualOf(rule: LoweredRule, cel: CelEnvironment): Residual | null {
  const who = rule.when && rule.when.attribute !== 'group' ? rule.when.attribute : null;
  // Tables that are all literal names are settled by the tree's table level.
  const tableGlobs = rule.match?.type === 'sql' && rule.match.tables !== null && literalTables(rule.match) === null ? rule.match.tables : null;
  const ssh = rule.match?.type === 'ssh' || rule.match?.type === 'sftp' || rule.match?.type === 'forward' ? rule.match : null;
  const programs = rule.match?.type === 'shell' && !rule.match.any ? rule.match.programs : null;
  if (!who && !tableGlobs && !programs && !ssh && rule.conditions.length === 0) return null;
  return {
    who,
    whoGlobs: who ? rule.when!.values.map(compileGlob) : [],
    tables: tableGlobs ? tableGlobs.map(compileGlob) : null,
    programs: programs ? new Set(programs) : null,
    ssh,
    conditions: rule.conditions.map(({ source }) => {
      const compiled = cel.compile(source);
      if (!compiled.program) throw new Error(`internal error: condition of ${rule.id} did not compile: ${source}`);
      return compiled.program;
    }),
    estimateAt: rule.conditions.findIndex(({ source }) => readsEstimate(source)),
  };
}

function linkResource(node: ResourceNode): LinkedResource {
  return {
    exact: new Map(Object.entries(node.exact).map(([name, action]) => [name, linkAction(action)])),
    globs: node.globs.map(({ glob, node: action }) => ({ match: compileGlob(glob), node: linkAction(action) })),
    any: node.any ? linkAction(node.any) : null,
  };
}

function linkAction(node: ActionNode): LinkedAction {
  return {
    sqlKinds: new Map(Object.entries(node.sqlKinds).map(([kind, tables]) => [kind, linkTables(tables!)])),
    sqlAnyKind: node.sqlAnyKind ? linkTables(node.sqlAnyKind) : null,
    shellPrograms: new Map(Object.entries(node.shellPrograms).map(([program, id]) => [program, linkIdentity(id)])),
    shellAll: node.shellAll ? linkIdentity(node.shellAll) : null,
    shellAny: node.shellAny ? linkIdentity(node.shellAny) : null,
    ssh: node.ssh ? linkIdentity(node.ssh) : null,
    anyAction: node.anyAction ? linkIdentity(node.anyAction) : null,
  };
}

function linkTables(node: TableNode): LinkedTables {
  return {
    tables: new Map(Object.entries(node.tables).map(([table, id]) => [table, linkIdentity(id)])),
    other: node.other ? linkIdentity(node.other) : null,
  };
}

function linkIdentity(node: IdentityNode): LinkedIdentity {
  return { groups: new Map(Object.entries(node.groups)), rest: node.rest };
}
