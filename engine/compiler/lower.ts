// Stage 3, lower: each checked rule becomes a `LoweredRule` — plain data with the sugar removed:
// `read`/`write` expanded to statement kinds, table globs schema-qualified, column references
// normalised, several `approve` effects merged, masker and detector references as specs.

import { DEFAULT_APPROVAL_WITHIN_MS, type MaskerRef, type Rule, type SftpMatchOp, type SqlKind, type SqlMatchKind } from '../../language/ast.ts';
import { READ_KINDS, WRITE_KINDS, SFTP_OPS, SFTP_READ_OPS, SFTP_WRITE_OPS, type SftpOp } from '../../stdlib/facts.ts';
import type { MaskerSpec } from '../response.ts';
import { normaliseColumn, qualifyTableGlob } from '../names.ts';
import type { EffectsIR, LoweredRule } from '../tree.ts';
import type { ResolvedRule } from './resolve.ts';

export function lower(rules: readonly ResolvedRule[]): LoweredRule[] {
  return rules.map((r, index) => lowerRule(r, index));
}

function lowerRule({ id, package: pkg, rule }: ResolvedRule, index: number): LoweredRule {
  return {
    index,
    id,
    rule: rule.name.value,
    package: pkg,
    span: rule.span,
    on: rule.on ? { kind: rule.on.resourceKind, globs: rule.on.globs.map((g) => g.value) } : null,
    when: rule.when ? { attribute: rule.when.attribute, values: rule.when.values.map((v) => v.value) } : null,
    match: lowerMatch(rule),
    conditions: rule.conditions.map((c) => ({ source: c.source, span: c.exprSpan })),
    effects: lowerEffects(rule),
  };
}

function lowerMatch(rule: Rule): LoweredRule['match'] {
  const match = rule.match;
  if (!match) return null;
  if (match.kind === 'ShellMatch') return match.any ? { type: 'shell', programs: [], any: true } : { type: 'shell', programs: unique(match.programs.map((p) => p.value)) };
  if (match.kind === 'SshMatch') return { type: 'ssh', what: match.what };
  if (match.kind === 'ForwardMatch') return { type: 'forward', targets: unique(match.targets.map((t) => t.value)) };
  if (match.kind === 'SftpMatch') {
    return { type: 'sftp', ops: match.ops.length === 0 ? null : expandSftpOps(match.ops.map((o) => o.value)), paths: match.paths ? unique(match.paths.map((p) => p.value)) : null };
  }
  const kinds = match.statementKinds.length === 0 ? null : expandKinds(match.statementKinds.map((k) => k.value));
  const tables = match.tables ? unique(match.tables.map((t) => qualifyTableGlob(t.value))) : null;
  return { type: 'sql', kinds, tables };
}

/** `read` = read, list, stat; `write` = every op that changes the file system; in SFTP_OPS order. */
export function expandSftpOps(ops: readonly SftpMatchOp[]): SftpOp[] {
  const want = new Set<string>();
  for (const op of ops) {
    if (op === 'read') for (const o of SFTP_READ_OPS) want.add(o);
    else if (op === 'write') for (const o of SFTP_WRITE_OPS) want.add(o);
    else want.add(op);
  }
  return SFTP_OPS.filter((o) => want.has(o));
}

/** `read` = the read kinds, `write` = the write kinds; the result is in SQL_KINDS order. */
export function expandKinds(kinds: readonly SqlMatchKind[]): SqlKind[] {
  const out = new Set<SqlKind>();
  for (const kind of kinds) {
    if (kind === 'read') for (const k of READ_KINDS) out.add(k);
    else if (kind === 'write') for (const k of WRITE_KINDS) out.add(k);
    else out.add(kind);
  }
  return [...out];
}

function lowerEffects(rule: Rule): EffectsIR {
  const effects: EffectsIR = { allow: false, block: false, approve: null, columnMasks: [], detectorMasks: [], limits: null };
  for (const effect of rule.effects) {
    switch (effect.kind) {
      case 'Allow':
        effects.allow = true;
        break;
      case 'Block':
        effects.block = true;
        if (effects.blockMessage === undefined && effect.message) effects.blockMessage = effect.message.value;
        break;
      case 'Approve': {
        const within = effect.within?.ms ?? DEFAULT_APPROVAL_WITHIN_MS;
        const groups = effect.groups.map((g) => g.value);
        const quorum = effect.quorum?.value ?? 1;
        const lastingMs = effect.lasting?.ms ?? null;
        effects.approve = effects.approve
          ? {
              groups: unique([...effects.approve.groups, ...groups]).sort(),
              withinMs: Math.min(effects.approve.withinMs, within),
              quorum: Math.max(effects.approve.quorum, quorum),
              lastingMs: effects.approve.lastingMs === null || lastingMs === null ? null : Math.min(effects.approve.lastingMs, lastingMs),
            }
          : { groups: unique(groups).sort(), withinMs: within, quorum, lastingMs };
        break;
      }
      case 'MaskColumn':
        effects.columnMasks.push({ column: normaliseColumn(effect.column.value) ?? effect.column.value.toLowerCase(), masker: maskerSpec(effect.masker) });
        break;
      case 'MaskDetect':
        effects.detectorMasks.push({
          detectors: effect.detectors.map((d) => ({ name: d.name.value, args: d.args.map((a) => a.value) })),
          masker: maskerSpec(effect.masker),
        });
        break;
      case 'LimitRows': {
        const limits = (effects.limits ??= { rows: null, timeMs: null, rates: [] });
        limits.rows = Math.min(limits.rows ?? Infinity, effect.rows.value);
        break;
      }
      case 'LimitTime': {
        const limits = (effects.limits ??= { rows: null, timeMs: null, rates: [] });
        limits.timeMs = Math.min(limits.timeMs ?? Infinity, effect.duration.ms);
        break;
      }
      case 'LimitRate': {
        const limits = (effects.limits ??= { rows: null, timeMs: null, rates: [] });
        const same = limits.rates.find((r) => r.windowMs === effect.per.ms);
        if (same) same.count = Math.min(same.count, effect.count.value);
        else limits.rates.push({ count: effect.count.value, windowMs: effect.per.ms });
        break;
      }
    }
  }
  effects.limits?.rates.sort((a, b) => a.windowMs - b.windowMs);
  return effects;
}

export function maskerSpec(ref: MaskerRef): MaskerSpec {
  return { name: ref.name.value, args: ref.args.map((a) => a.value) };
}

function unique<T>(items: T[]): T[] {
  return [...new Set(items)];
}
