// The reference interpreter: DESIGN.md's semantics, read literally, over the AST. No index, no
// precompilation, no cleverness: every rule of every file is checked in turn, and the verdict is
// the four rules written as four `if`s. It is the oracle the conformance suite compares the
// compiled decision tree against, and what `explain` reports per rule. Keep it boring.
//
// It deliberately shares nothing with the compiler's matching code (its glob matcher is a regular
// expression, not stdlib/glob.ts); it shares only name normalisation (engine/names.ts), the CEL
// environment, and the output ordering of column masks (`sortColumnMasks`).

import type { MaskerRef, PolicyFile, Rule } from '../../language/ast.ts';
import { DEFAULT_APPROVAL_WITHIN_MS } from '../../language/ast.ts';
import { effectiveDefault } from '../../language/check-set.ts';
import { celActivation, type CelActivation, type CelEnvironment } from '../../stdlib/cel.ts';
import { READ_KINDS, WRITE_KINDS, type Request } from '../../stdlib/facts.ts';
import { sortColumnMasks } from '../decide.ts';
import { normaliseColumn, qualifyTableGlob, ruleId } from '../names.ts';
import type { ColumnMask, Decision, DetectorMask, Limits, MaskerSpec, Reason, RuleError, RuleOutcome } from '../response.ts';
import { DEFAULT_BLOCK_MESSAGE } from '../tree.ts';
import { expandSftpOps } from '../compiler/lower.ts';
import { sshMismatch, type SshLikeMatch } from '../ssh-match.ts';

/** A glob as an anchored regular expression: `*` → any run, `?` → one character. */
export function globToRegExp(glob: string): RegExp {
  let source = '';
  for (const ch of glob) {
    if (ch === '*') source += '[\\s\\S]*';
    else if (ch === '?') source += '[\\s\\S]';
    else source += ch.replace(/[.*+?^${}()|[\]\\/-]/g, '\\$&');
  }
  return new RegExp(`^${source}$`);
}

function glob(pattern: string, text: string): boolean {
  return globToRegExp(pattern).test(text);
}

export interface RuleWithPackage {
  id: string;
  package: string;
  rule: Rule;
}

/** Every rule of the set with its id. */
export function rulesOf(files: readonly PolicyFile[]): RuleWithPackage[] {
  const out: RuleWithPackage[] = [];
  for (const file of files) {
    const pkg = file.package?.value ?? '';
    for (const rule of file.rules) out.push({ id: ruleId(pkg, rule.name.value), package: pkg, rule });
  }
  return out;
}

/**
 * Does the rule apply? Checks `on`, `when`, `match`, then each `if` in order, and says which one
 * failed and why. `activation` builds the CEL view of the request on demand.
 */
export function ruleOutcome(rule: Rule, req: Request, cel: CelEnvironment, activation: () => CelActivation): RuleOutcome {
  const { identity, resource, action } = req;

  // on: omitted = every resource; `any` = every kind; no globs = every name.
  if (rule.on) {
    if (rule.on.resourceKind !== 'any' && rule.on.resourceKind !== resource.kind) {
      return { status: 'skipped', selector: 'on', detail: `resource kind is ${resource.kind}, rule is for ${rule.on.resourceKind}` };
    }
    const globs = rule.on.globs.map((g) => g.value);
    if (globs.length > 0 && !globs.some((g) => glob(g, resource.name))) {
      return { status: 'skipped', selector: 'on', detail: `resource ${JSON.stringify(resource.name)} matches none of ${JSON.stringify(globs)}` };
    }
  }

  // when: omitted = every identity; groups are exact names, subjects and actors are globs.
  if (rule.when) {
    const values = rule.when.values.map((v) => v.value);
    if (rule.when.attribute === 'group') {
      if (!values.some((g) => identity.groups.includes(g))) {
        return { status: 'skipped', selector: 'when', detail: `identity is in none of the groups ${JSON.stringify(values)}` };
      }
    } else if (rule.when.attribute === 'subject') {
      if (!values.some((g) => glob(g, identity.sub))) {
        return { status: 'skipped', selector: 'when', detail: `subject ${JSON.stringify(identity.sub)} matches none of ${JSON.stringify(values)}` };
      }
    } else {
      const actor = identity.actor;
      if (actor === undefined || !values.some((g) => glob(g, actor))) {
        return { status: 'skipped', selector: 'when', detail: actor === undefined ? 'the token names no actor' : `actor ${JSON.stringify(actor)} matches none of ${JSON.stringify(values)}` };
      }
    }
  }

  // match: omitted = every action except `unknown`; `unknown` only when named.
  if (!rule.match) {
    if (action.kind === 'unknown') return { status: 'skipped', selector: 'match', detail: 'the action is unknown and the rule does not name `unknown`' };
  } else if (rule.match.kind === 'SqlMatch') {
    if (action.type !== 'sql') return { status: 'skipped', selector: 'match', detail: 'the rule matches SQL and the action is a shell command' };
    const kinds = rule.match.statementKinds.map((k) => k.value);
    const kindOk =
      kinds.length === 0
        ? action.kind !== 'unknown'
        : kinds.some((k) => k === action.kind || (k === 'read' && READ_KINDS.has(action.kind)) || (k === 'write' && WRITE_KINDS.has(action.kind)));
    if (!kindOk) return { status: 'skipped', selector: 'match', detail: `statement kind ${action.kind} is not in [${kinds.join(', ') || 'any known kind'}]` };
    if (rule.match.tables) {
      const globs = rule.match.tables.map((t) => qualifyTableGlob(t.value));
      const touched = [...action.reads, ...action.writes];
      if (!touched.some((table) => globs.some((g) => glob(g, table)))) {
        return { status: 'skipped', selector: 'match', detail: `no table touched (${touched.join(', ') || 'none'}) matches ${JSON.stringify(globs)}` };
      }
    }
  } else if (rule.match.kind === 'SshMatch' || rule.match.kind === 'SftpMatch' || rule.match.kind === 'ForwardMatch') {
    if ((action.type === 'sftp' || action.type === 'ssh') && action.kind === 'unknown') return { status: 'skipped', selector: 'match', detail: 'the request is unknown and no ssh match names it' };
    const m = rule.match;
    const ir: SshLikeMatch = m.kind === 'SshMatch' ? { type: 'ssh', what: m.what } : m.kind === 'ForwardMatch' ? { type: 'forward', targets: m.targets.map((t) => t.value) } : { type: 'sftp', ops: m.ops.length === 0 ? null : expandSftpOps(m.ops.map((o) => o.value)), paths: m.paths ? m.paths.map((p) => p.value) : null };
    const why = sshMismatch(ir, action);
    if (why !== null) return { status: 'skipped', selector: 'match', detail: why };
  } else {
    if (action.type !== 'shell') return { status: 'skipped', selector: 'match', detail: `the rule matches shell commands and the action is ${action.type === 'sql' ? 'SQL' : action.type === 'sftp' ? 'a file operation' : 'an ssh request'}` };
    if (action.kind === 'unknown') return { status: 'skipped', selector: 'match', detail: 'the command is unknown and `match shell` never matches it' };
    const listed = rule.match.programs.map((p) => p.value);
    const missing = rule.match.any ? [] : action.programs.filter((p) => !listed.includes(p));
    if (missing.length > 0) return { status: 'skipped', selector: 'match', detail: `programs not listed: ${missing.join(', ')}` };
  }

  // if: every condition must hold; one that fails at run time makes the rule a block.
  for (const condition of rule.conditions) {
    const compiled = cel.compile(condition.source);
    if (!compiled.program) return { status: 'error', detail: `condition does not compile: ${condition.source}` };
    const result = compiled.program(activation());
    if (result === false) return { status: 'skipped', selector: 'if', detail: `\`${condition.source}\` is false` };
    if (result !== true) return { status: 'error', detail: result.error };
  }
  return { status: 'applied', effects: rule.effects.map((e) => e.kind) };
}

function masker(ref: MaskerRef): MaskerSpec {
  return { name: ref.name.value, args: ref.args.map((a) => a.value) };
}

/**
 * DESIGN.md "Limits", literally: every applying rule's limits; of rows and of time the smallest
 * (on a tie, the rule first by id); rate limits counted per rule, so all of them, the smallest count
 * for each window of a rule; undefined when no applying rule has a limit.
 */
function limitsOf(applying: readonly RuleWithPackage[]): Limits | undefined {
  const rows: { rows: number; rule: string }[] = [];
  const times: { ms: number; rule: string }[] = [];
  const rates: { count: number; windowMs: number; rule: string }[] = [];
  for (const r of applying) {
    for (const e of r.rule.effects) {
      if (e.kind === 'LimitRows') rows.push({ rows: e.rows.value, rule: r.id });
      if (e.kind === 'LimitTime') times.push({ ms: e.duration.ms, rule: r.id });
      if (e.kind === 'LimitRate') rates.push({ count: e.count.value, windowMs: e.per.ms, rule: r.id });
    }
  }
  if (rows.length === 0 && times.length === 0 && rates.length === 0) return undefined;
  const byId = (a: string, b: string): number => (a < b ? -1 : a > b ? 1 : 0);
  const out: Limits = { rate: [] };
  const smallestRows = [...rows].sort((a, b) => a.rows - b.rows || byId(a.rule, b.rule))[0];
  if (smallestRows) out.rows = smallestRows;
  const shortest = [...times].sort((a, b) => a.ms - b.ms || byId(a.rule, b.rule))[0];
  if (shortest) out.time = shortest;
  for (const r of rates) {
    const smaller = rates.some((o) => o.rule === r.rule && o.windowMs === r.windowMs && o.count < r.count);
    const kept = out.rate.some((o) => o.rule === r.rule && o.windowMs === r.windowMs);
    if (!smaller && !kept) out.rate.push(r);
  }
  out.rate.sort((a, b) => byId(a.rule, b.rule) || a.windowMs - b.windowMs);
  return out;
}

/** The decision, by DESIGN.md's four rules; limits ride on every verdict but block. */
export function interpret(files: readonly PolicyFile[], req: Request, cel: CelEnvironment): Decision {
  const applying: RuleWithPackage[] = [];
  const d = verdictOf(files, req, cel, applying);
  if (d.verdict === 'block') return d;
  const limits = limitsOf(applying);
  if (limits) d.limits = limits;
  return d;
}

function verdictOf(files: readonly PolicyFile[], req: Request, cel: CelEnvironment, applying: RuleWithPackage[]): Decision {
  let act: CelActivation | undefined;
  const activation = (): CelActivation => (act ??= celActivation(req));
  const reason = (r: RuleWithPackage): Reason => ({ id: r.id, rule: r.rule.name.value, package: r.package, span: r.rule.span });
  const byId = (a: RuleWithPackage, b: RuleWithPackage): number => (a.id < b.id ? -1 : a.id > b.id ? 1 : 0);

  const failed: { rule: RuleWithPackage; error: string }[] = [];
  for (const r of rulesOf(files)) {
    const outcome = ruleOutcome(r.rule, req, cel, activation);
    if (outcome.status === 'applied') applying.push(r);
    if (outcome.status === 'error') failed.push({ rule: r, error: outcome.detail });
  }
  applying.sort(byId);
  failed.sort((a, b) => byId(a.rule, b.rule));
  const errors: RuleError[] = failed.map((f) => ({ rule: f.rule.id, message: f.error }));
  const has = (r: RuleWithPackage, kind: string): boolean => r.rule.effects.some((e) => e.kind === kind);
  const masking = (r: RuleWithPackage): boolean => has(r, 'MaskColumn') || has(r, 'MaskDetect');
  const masksOf = (rules: RuleWithPackage[]) => {
    const columns: ColumnMask[] = [];
    const detectors: DetectorMask[] = [];
    for (const r of rules) {
      for (const e of r.rule.effects) {
        if (e.kind === 'MaskColumn') columns.push({ column: normaliseColumn(e.column.value) ?? e.column.value.toLowerCase(), masker: masker(e.masker), rule: r.id });
        if (e.kind === 'MaskDetect') detectors.push({ detectors: e.detectors.map((d) => ({ name: d.name.value, args: d.args.map((a) => a.value) })), masker: masker(e.masker), rule: r.id });
      }
    }
    return { columns: sortColumnMasks(columns), detectors };
  };
  const none = { columns: [], detectors: [] };

  // 1. If any applying rule has `block` (a failed condition counts as one) → block.
  const blocking = [...applying.filter((r) => has(r, 'Block')), ...failed.map((f) => f.rule)].sort(byId);
  if (blocking.length > 0) {
    const first = blocking[0];
    const failure = failed.find((f) => f.rule === first);
    const message = failure
      ? `rule ${first.id}: condition failed at run time: ${failure.error}`
      : (first.rule.effects.find((e) => e.kind === 'Block' && e.message) as { message?: { value: string } } | undefined)?.message?.value ?? `blocked by rule ${first.id}`;
    return { verdict: 'block', masks: none, approvers: [], message, reasons: blocking.map(reason), defaulted: false, errors };
  }

  // 2. Else if any has `approve` → approve, with every applying mask and all approver groups.
  const approving = applying.filter((r) => has(r, 'Approve'));
  if (approving.length > 0) {
    const groups = new Set<string>();
    let within = Infinity;
    let quorum = 1;
    // Lasting only when every approving rule says so; the shortest window.
    let lasting: number | null = Infinity;
    for (const r of approving) {
      for (const e of r.rule.effects) {
        if (e.kind !== 'Approve') continue;
        for (const g of e.groups) groups.add(g.value);
        within = Math.min(within, e.within?.ms ?? DEFAULT_APPROVAL_WITHIN_MS);
        quorum = Math.max(quorum, e.quorum?.value ?? 1);
        lasting = lasting === null || e.lasting === undefined ? null : Math.min(lasting, e.lasting.ms);
      }
    }
    return {
      verdict: 'approve', masks: masksOf(applying), approvers: [...groups].sort(), approvalWithinMs: within,
      ...(quorum > 1 ? { approvalQuorum: quorum } : {}),
      ...(lasting !== null && Number.isFinite(lasting) ? { approvalLastingMs: lasting } : {}),
      reasons: approving.map(reason), defaulted: false, errors,
    };
  }

  // 3. Else if any has `allow` → allow, or mask if any applying rule masks.
  const allowing = applying.filter((r) => has(r, 'Allow'));
  const maskingRules = applying.filter(masking);
  if (allowing.length > 0) {
    if (maskingRules.length > 0) {
      const reasons = applying.filter((r) => has(r, 'Allow') || masking(r));
      return { verdict: 'mask', masks: masksOf(applying), approvers: [], reasons: reasons.map(reason), defaulted: false, errors };
    }
    return { verdict: 'allow', masks: none, approvers: [], reasons: allowing.map(reason), defaulted: false, errors };
  }

  // 4. Else → the default (block unless the set says `default allow`); masks still apply to it.
  const sorted = [...files].sort((a, b) => (a.file < b.file ? -1 : a.file > b.file ? 1 : 0));
  const declared = effectiveDefault(sorted);
  if (declared.effect === 'allow') {
    if (maskingRules.length > 0) {
      return { verdict: 'mask', masks: masksOf(applying), approvers: [], reasons: maskingRules.map(reason), defaulted: true, errors };
    }
    return { verdict: 'allow', masks: none, approvers: [], reasons: [], defaulted: true, errors };
  }
  return { verdict: 'block', masks: none, approvers: [], message: declared.decl?.message?.value ?? DEFAULT_BLOCK_MESSAGE, reasons: [], defaulted: true, errors };
}
