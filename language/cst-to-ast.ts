// CST → AST, and the home of every semantic check that needs only one file (Cedar's cst_to_ast).
//
// The CST may be partial (error recovery leaves out children and inserts tokens without
// positions), so every child is treated as optional. Whatever is wrong is reported as a coded
// Diagnostic and the conversion carries on; an AST that comes with errors is for tooling only and
// must never be evaluated.

import type { CstNode, IToken } from 'chevrotain';
import type { FileCstNode } from './cst.generated.d.ts';
import {
  type ApproveEffect, type Comment, type Condition, type DefaultDecl, type Duration, type Effect,
  type Expectation, type Literal, type MaskerRef, type DetectorRef, type MatchSelector, type Name,
  type NumberLit, type ObjectEntry, type OnSelector, type PolicyFile, type ResourceKind, type Rule,
  type Span, type StringLit, type TestCase, type WhenSelector, RESOURCE_KINDS, SQL_MATCH_KINDS,
  type SqlMatchKind, type ResourceSelectorKind, type LimitEffect, LIMIT_KINDS, MAX_LIMIT_ROWS, MAX_LIMIT_RATE, MAX_APPROVAL_QUORUM, MAX_APPROVAL_LASTING_MS,
  MAX_LIMIT_DURATION_MS, MIN_RATE_WINDOW_MS, formatDurationMs, type SftpMatch, type SftpMatchOp, SFTP_MATCH_OPS,
} from './ast.ts';
import type { Diagnostic, DiagnosticCode, Related, Severity } from './diagnostics.ts';
import { didYouMean } from './fuzzy.ts';
import { tokenSpan, tokensSpan } from './lexer.ts';
import { Duration as DurationTok, NumberLiteral, SingleQuotedString, StringLiteral, UnterminatedCel, UnterminatedString } from './tokens.ts';

type ObjectLit = Extract<Literal, { kind: 'Object' }>;

/** Words people write for a statement kind that the language spells differently. */
const KIND_ALIASES: Record<string, string> = {
  create: 'ddl', alter: 'ddl', drop: 'ddl', comment: 'ddl', rename: 'ddl',
  revoke: 'grant', upsert: 'insert', copy: 'copy_from` or `copy_to',
  begin: 'transaction', commit: 'transaction', rollback: 'transaction', savepoint: 'transaction',
  show: 'utility', vacuum: 'utility', analyze: 'utility', reset: 'set', reads: 'read', writes: 'write',
};

const SIMPLE_ESCAPES: Record<string, string> = { '"': '"', '\\': '\\', '/': '/', b: '\b', f: '\f', n: '\n', r: '\r', t: '\t' };

const DURATION_UNITS: Record<string, number> = { ms: 1, s: 1000, m: 60_000, h: 3_600_000, d: 86_400_000 };

/** Words people write for a limit kind. */
const LIMIT_ALIASES: Record<string, string> = {
  row: 'rows', max_rows: 'rows', results: 'rows', timeout: 'time', duration: 'time', statement_timeout: 'time',
  requests: 'rate', calls: 'rate', qps: 'rate', throttle: 'rate',
};

/** Unit words people write after `per`, as the duration to write instead. */
const WINDOW_WORDS: Record<string, string> = {
  second: '1s', seconds: '1s', sec: '1s', s: '1s', minute: '1m', minutes: '1m', min: '1m', m: '1m',
  hour: '1h', hours: '1h', h: '1h', day: '1d', days: '1d', d: '1d',
};

/** `10k` → 10000: a count written with a thousands suffix, so the help can say what to write. */
const COUNT_SUFFIXES: Record<string, number> = { k: 1000, K: 1000, m: 1_000_000, M: 1_000_000 };


const IDENTITY_FIELDS = ['sub', 'groups', 'actor', 'actors', 'client_id', 'claims', 'token_id', 'issuer'] as const;
const CONTEXT_FIELDS = ['time', 'client_addr', 'session_id'] as const;
const ESTIMATE_FIELDS = ['rows', 'cost'] as const;

export interface CstToAstOptions {
  file: string;
  comments: Comment[];
  /** Offsets of syntax errors, so checks do not pile onto a construct the parser already flagged. */
  syntaxErrorOffsets: number[];
  /** The whole text's span (the PolicyFile's span covers comments before and after the code). */
  fileSpan: Span;
}

export function cstToAst(cst: FileCstNode | CstNode | undefined, opts: CstToAstOptions): { ast: PolicyFile; diagnostics: Diagnostic[] } {
  const c = new Converter(opts);
  const ast = c.file(cst);
  return { ast, diagnostics: c.diagnostics };
}

// ---------------------------------------------------------------------------------------------
// Reading a partial CST

function isToken(x: CstNode | IToken): x is IToken {
  return (x as IToken).image !== undefined;
}

const realToken = (x: CstNode | IToken): x is IToken =>
  isToken(x) && !x.isInsertedInRecovery && Number.isFinite(x.startOffset);

/** Real (not recovery-inserted) tokens under `key`. */
function toks(n: CstNode | undefined, key: string): IToken[] {
  const xs = n?.children[key] ?? [];
  return xs.filter(realToken);
}
function tok(n: CstNode | undefined, key: string): IToken | undefined {
  // A loop rather than toks()[0]: called for most children of every node, so no array per call.
  const xs = n?.children[key];
  if (xs) for (const x of xs) if (realToken(x)) return x;
  return undefined;
}
function nodes(n: CstNode | undefined, key: string): CstNode[] {
  const xs = n?.children[key] ?? [];
  return xs.filter((x): x is CstNode => !isToken(x));
}
function node(n: CstNode | undefined, key: string): CstNode | undefined {
  const xs = n?.children[key];
  if (xs) for (const x of xs) if (!isToken(x)) return x;
  return undefined;
}

/**
 * The first and last real tokens under a node. Each child list is in source order, so only its
 * ends are inspected (a 10,000-rule file has ~400,000 tokens; walking every one for every node's
 * span was the converter's main cost).
 */
function firstLast(n: CstNode, acc: { first?: IToken; last?: IToken }): void {
  for (const key in n.children) {
    const xs = n.children[key];
    if (xs.length === 0) continue;
    if (isToken(xs[0])) {
      const first = xs.find(realToken) as IToken | undefined;
      let last: IToken | undefined;
      for (let i = xs.length - 1; i >= 0 && !last; i--) if (realToken(xs[i])) last = xs[i] as IToken;
      if (first && (!acc.first || first.startOffset < acc.first.startOffset)) acc.first = first;
      if (last && (!acc.last || last.startOffset > acc.last.startOffset)) acc.last = last;
      continue;
    }
    for (let i = 0; i < xs.length; i++) {
      const sub: { first?: IToken; last?: IToken } = {};
      firstLast(xs[i] as CstNode, sub);
      if (sub.first && (!acc.first || sub.first.startOffset < acc.first.startOffset)) acc.first = sub.first;
      if (sub.last && (!acc.last || sub.last.startOffset > acc.last.startOffset)) acc.last = sub.last;
      if (sub.first) break;
    }
    for (let i = xs.length - 1; i > 0; i--) {
      const sub: { first?: IToken; last?: IToken } = {};
      firstLast(xs[i] as CstNode, sub);
      if (sub.last && (!acc.last || sub.last.startOffset > acc.last.startOffset)) acc.last = sub.last;
      if (sub.last) break;
    }
  }
}

function joinSpans(a: Span, b: Span): Span {
  return {
    file: a.file,
    startOffset: a.startOffset,
    startLine: a.startLine,
    startColumn: a.startColumn,
    endOffset: b.endOffset,
    endLine: b.endLine,
    endColumn: b.endColumn,
  };
}

class Converter {
  readonly diagnostics: Diagnostic[] = [];
  private readonly file_: string;
  private readonly comments: Comment[];
  private readonly syntaxErrorOffsets: number[];
  private readonly fileSpan: Span;

  constructor(opts: CstToAstOptions) {
    this.fileSpan = opts.fileSpan;
    this.file_ = opts.file;
    this.comments = opts.comments;
    this.syntaxErrorOffsets = opts.syntaxErrorOffsets;
  }

  // -------------------------------------------------------------------------------------------
  // helpers

  private report(code: DiagnosticCode, span: Span, message: string, help?: string, related: Related[] = [], severity: Severity = 'error'): void {
    const d: Diagnostic = { code, severity, message, span, related };
    if (help !== undefined) d.help = help;
    this.diagnostics.push(d);
  }

  private tspan(t: IToken): Span {
    return tokenSpan(this.file_, t);
  }

  /** A node's span: from its first real token to its last (recovery-inserted tokens have no position). */
  private nspan(n: CstNode): Span {
    const ends: { first?: IToken; last?: IToken } = {};
    firstLast(n, ends);
    const { first, last } = ends;
    if (!first || !last) {
      return { file: this.file_, startOffset: 0, endOffset: 0, startLine: 1, startColumn: 1, endLine: 1, endColumn: 1 };
    }
    return tokensSpan(this.file_, first, last);
  }

  private hasSyntaxErrorIn(span: Span): boolean {
    return this.syntaxErrorOffsets.some((o) => o >= span.startOffset && o <= span.endOffset);
  }

  private name(t: IToken): Name {
    return { kind: 'Name', value: t.image, span: this.tspan(t) };
  }

  /** Decodes a string token (JSON escapes), reporting bad escapes and a missing closing quote. */
  private string(t: IToken): StringLit {
    const span = this.tspan(t);
    const img = t.image;
    const unterminated = t.tokenType === UnterminatedString;
    if (t.tokenType === SingleQuotedString) {
      this.report('HOOP1003', span, 'strings are double-quoted', `write ${JSON.stringify(img.slice(1, -1))}`);
    }
    if (unterminated) {
      this.report('HOOP1002', span, 'unterminated string', 'close it with a double quote `"` on the same line');
    }
    const body = img.slice(1, unterminated ? img.length : img.length - 1);
    if (!body.includes('\\')) return { kind: 'String', value: body, span };
    let value = '';
    for (let i = 0; i < body.length; i++) {
      const ch = body[i];
      if (ch !== '\\') {
        value += ch;
        continue;
      }
      const esc = body[i + 1];
      const at = t.startOffset + 1 + i;
      const escSpan = (len: number): Span => ({
        file: this.file_, startOffset: at, endOffset: at + len,
        startLine: span.startLine, startColumn: span.startColumn + 1 + i,
        endLine: span.startLine, endColumn: span.startColumn + 1 + i + len,
      });
      if (esc !== undefined && esc in SIMPLE_ESCAPES) {
        value += SIMPLE_ESCAPES[esc];
        i++;
      } else if (esc === 'u' && /^[0-9a-fA-F]{4}$/.test(body.slice(i + 2, i + 6))) {
        value += String.fromCharCode(parseInt(body.slice(i + 2, i + 6), 16));
        i += 5;
      } else {
        const shown = esc === undefined ? '\\' : `\\${esc}`;
        this.report(
          'HOOP1004', escSpan(shown.length), `invalid escape \`${shown}\` in string`,
          esc === undefined
            ? 'a string cannot end with a lone backslash'
            : 'strings use JSON escapes: \\" \\\\ \\/ \\b \\f \\n \\r \\t \\uXXXX (write \\\\ for a backslash, e.g. "\\\\d+")',
        );
        if (esc !== undefined) {
          value += esc;
          i++;
        }
      }
    }
    return { kind: 'String', value, span };
  }

  private stringItems(n: CstNode | undefined): StringLit[] {
    return toks(n, 'StringLiteral').map((t) => this.string(t));
  }

  private stringOrList(n: CstNode | undefined): StringLit[] {
    const single = tok(n, 'StringLiteral');
    if (single) return [this.string(single)];
    return this.stringItems(node(node(n, 'stringList'), 'stringItems'));
  }

  private qualifiedName(n: CstNode): Name | undefined {
    const parts = toks(n, 'NameTok').sort((a, b) => a.startOffset - b.startOffset);
    if (parts.length === 0) return undefined;
    return {
      kind: 'Name',
      value: parts.map((p) => p.image).join('.'),
      span: joinSpans(this.tspan(parts[0]), this.tspan(parts[parts.length - 1])),
    };
  }

  private duration(t: IToken): Duration | undefined {
    const span = this.tspan(t);
    const m = /^(-?\d+)([A-Za-z_][A-Za-z0-9_]*)$/.exec(t.image);
    const unit = m?.[2];
    const n = m ? Number(m[1]) : NaN;
    if (!m || unit === undefined || !Object.hasOwn(DURATION_UNITS, unit)) {
      const lower = unit?.toLowerCase();
      const hint = m && lower !== undefined && Object.hasOwn(DURATION_UNITS, lower) ? `units are lower-case: write \`${m[1]}${lower}\``
        : 'a duration is a whole number followed by ms, s, m, h or d (e.g. 15m)';
      this.report('HOOP1005', span, `invalid duration \`${t.image}\``, hint);
      return undefined;
    }
    if (n <= 0 || !Number.isSafeInteger(n * DURATION_UNITS[unit])) {
      this.report('HOOP1005', span, `invalid duration \`${t.image}\``, 'a duration must be positive (e.g. 15m)');
      return undefined;
    }
    return { kind: 'Duration', ms: n * DURATION_UNITS[unit], text: t.image, span };
  }

  private resourceKind<K extends string>(t: IToken, allowed: readonly K[]): K | undefined {
    if ((allowed as readonly string[]).includes(t.image)) return t.image as K;
    this.report('HOOP2002', this.tspan(t), `unknown resource kind \`${t.image}\``,
      didYouMean(t.image, allowed) ?? `resource kinds are ${allowed.map((k) => `\`${k}\``).join(', ')}`);
    return undefined;
  }

  // -------------------------------------------------------------------------------------------
  // file

  file(cst: CstNode | undefined): PolicyFile {
    const out: PolicyFile = {
      kind: 'PolicyFile',
      file: this.file_,
      rules: [],
      tests: [],
      comments: this.comments,
      span: this.fileSpan,
    };
    if (!cst) return out;
    for (const p of nodes(cst, 'packageDecl')) {
      const name = this.qualifiedName(node(p, 'qualifiedName') ?? { name: 'qualifiedName', children: {} });
      if (!name) continue;
      if (out.package) {
        this.report('HOOP2017', this.nspan(p), 'package declared twice', 'a file belongs to one package; remove one `package` line',
          [{ message: 'first declared here', span: out.package.span }]);
        continue;
      }
      out.package = name;
    }
    for (const d of nodes(cst, 'defaultDecl')) {
      const decl = this.defaultDecl(d);
      if (!decl) continue;
      if (out.default) {
        this.report('HOOP2015', decl.span, 'default declared twice', 'keep one `default` line per file',
          [{ message: 'first declared here', span: out.default.span }]);
        continue;
      }
      out.default = decl;
    }
    const seenRules = new Map<string, Rule>();
    for (const r of nodes(cst, 'ruleDecl')) {
      const rule = this.rule(r);
      if (!rule) continue;
      const first = seenRules.get(rule.name.value);
      if (first) {
        this.report('HOOP2005', rule.name.span, `duplicate rule name \`${rule.name.value}\``,
          'rule names are unique within a package; rename one of them',
          [{ message: 'first defined here', span: first.name.span }]);
      } else seenRules.set(rule.name.value, rule);
      out.rules.push(rule);
    }
    const seenTests = new Map<string, TestCase>();
    for (const t of nodes(cst, 'testDecl')) {
      const test = this.test(t);
      if (!test) continue;
      const first = seenTests.get(test.name.value);
      if (first) {
        this.report('HOOP4004', test.name.span, `duplicate test name ${JSON.stringify(test.name.value)}`,
          'test names are unique within a package; rename one of them',
          [{ message: 'first defined here', span: first.name.span }]);
      } else seenTests.set(test.name.value, test);
      out.tests.push(test);
    }
    return out;
  }

  private defaultDecl(d: CstNode): DefaultDecl | undefined {
    const span = this.nspan(d);
    if (tok(d, 'Kw_allow')) return { kind: 'Default', effect: 'allow', span };
    if (tok(d, 'Kw_block')) {
      const msg = tok(d, 'StringLiteral');
      const decl: DefaultDecl = { kind: 'Default', effect: 'block', span };
      if (msg) decl.message = this.string(msg);
      return decl;
    }
    return undefined;
  }

  // -------------------------------------------------------------------------------------------
  // rules

  private rule(r: CstNode): Rule | undefined {
    const nameTok = tok(r, 'NameTok');
    if (!nameTok) return undefined;
    const span = this.nspan(r);
    // Fixed key order (selectors first) so printed ASTs and snapshots do not depend on source order.
    const rule: Rule = { kind: 'Rule', name: this.name(nameTok), on: undefined, when: undefined, match: undefined, conditions: [], effects: [], span };
    for (const clause of nodes(r, 'ruleClause')) {
      const on = node(clause, 'onSelector');
      const when = node(clause, 'whenSelector');
      const match = node(clause, 'matchSelector');
      const cond = node(clause, 'condition');
      if (on) this.setSelector(rule, 'on', this.onSelector(on), 'on');
      else if (when) this.setSelector(rule, 'when', this.whenSelector(when), 'when');
      else if (match) this.setSelector(rule, 'match', this.matchSelector(match), 'match');
      else if (cond) {
        const c = this.condition(cond);
        if (c) rule.conditions.push(c);
      } else {
        const e = this.effect(clause);
        if (e) rule.effects.push(e);
      }
    }
    this.checkSelectorKinds(rule);
    this.checkEffects(rule);
    if (rule.effects.length === 0) {
      if (!this.hasSyntaxErrorIn(span)) {
        this.report('HOOP2006', rule.name.span, `rule \`${rule.name.value}\` has no effect`,
          'add `allow`, `block`, `approve by group "..."`, a `mask` or a `limit` line; a rule without an effect is ignored');
      }
      return undefined;
    }
    return rule;
  }

  private setSelector<K extends 'on' | 'when' | 'match'>(rule: Rule, key: K, value: Rule[K] | undefined, word: string): void {
    if (!value) return;
    const prev = rule[key];
    if (prev) {
      const help = key === 'when'
        ? 'one `when` per rule; list several values with `groups [...]`, or combine attributes in an `if` condition'
        : key === 'match'
          ? 'one `match` per rule; list several kinds separated by commas, or write a second rule'
          : 'one `on` per rule; list several name globs inside the parentheses, or write a second rule';
      this.report('HOOP2007', value.span, `\`${word}\` given twice in rule \`${rule.name.value}\``, help,
        [{ message: `first \`${word}\` here`, span: prev.span }]);
      return;
    }
    rule[key] = value;
  }

  private onSelector(n: CstNode): OnSelector | undefined {
    const kindTok = tok(n, 'resourceKind');
    if (!kindTok) return undefined;
    const kind = this.resourceKind<ResourceSelectorKind>(kindTok, RESOURCE_KINDS);
    const globs = this.stringItems(node(n, 'stringItems'));
    for (const g of globs) this.checkGlob(g, 'resource');
    if (!kind) return undefined;
    return { kind: 'On', resourceKind: kind, globs, span: this.nspan(n) };
  }

  private whenSelector(n: CstNode): WhenSelector | undefined {
    const attr = tok(n, 'attribute');
    if (!attr) return undefined;
    const values = this.stringOrList(node(n, 'stringOrList'));
    if (values.length === 0) return undefined;
    const attribute = attr.image.replace(/s$/, '') as WhenSelector['attribute'];
    for (const v of values) {
      if (v.value === '') this.report('HOOP2010', v.span, `empty ${attribute} name`, `give the ${attribute} name or glob`);
    }
    return { kind: 'When', attribute, values, span: this.nspan(n) };
  }

  private matchSelector(n: CstNode): MatchSelector | undefined {
    const sql = node(n, 'sqlMatch');
    if (sql) {
      const kinds: { value: SqlMatchKind; span: Span }[] = [];
      for (const k of toks(sql, 'kind').sort((a, b) => a.startOffset - b.startOffset)) {
        const span = this.tspan(k);
        if ((SQL_MATCH_KINDS as readonly string[]).includes(k.image)) {
          kinds.push({ value: k.image as SqlMatchKind, span });
          continue;
        }
        const alias = KIND_ALIASES[k.image.toLowerCase()];
        const help = alias !== undefined
          ? `did you mean \`${alias}\`?`
          : didYouMean(k.image, SQL_MATCH_KINDS) ?? `statement kinds are ${SQL_MATCH_KINDS.join(', ')}`;
        this.report('HOOP2001', span, `unknown statement kind \`${k.image}\``, help);
      }
      const m: MatchSelector = { kind: 'SqlMatch', statementKinds: kinds, span: this.nspan(n) };
      const tablesList = node(sql, 'stringOrList');
      if (tablesList) {
        m.tables = this.stringOrList(tablesList);
        for (const g of m.tables) this.checkGlob(g, 'table');
      }
      return m;
    }
    const shell = node(n, 'shellMatch');
    if (shell) {
      if (tok(shell, 'any')) return { kind: 'ShellMatch', programs: [], any: true, span: this.nspan(n) };
      const programs = this.stringOrList(node(shell, 'stringOrList'));
      for (const p of programs) this.checkGlob(p, 'program');
      return { kind: 'ShellMatch', programs, span: this.nspan(n) };
    }
    const ssh = node(n, 'sshMatch');
    if (ssh) return this.sshMatch(ssh, this.nspan(n));
    return undefined;
  }

  /** `ssh interactive`, `sftp [ops] [on paths [...]]`, `forward to [...]` (read loosely by the parser). */
  private sshMatch(n: CstNode, span: Span): MatchSelector | undefined {
    const family = tok(n, 'family');
    if (!family) return undefined;
    const words = toks(n, 'word').sort((a, b) => a.startOffset - b.startOffset);
    const paths = tok(n, 'paths');
    const pathList = node(n, 'pathList');
    const to = tok(n, 'to');
    const targetList = node(n, 'targetList');
    const families = ['sql', 'shell', 'ssh', 'sftp', 'forward'];
    const extra = (what: string, t: IToken | undefined, help: string): void => {
      if (t) this.report('HOOP2020', this.tspan(t), `\`${t.image}\` after \`match ${family.image}\``, help);
      void what;
    };
    if (family.image === 'ssh') {
      const [first, ...rest] = words;
      if (!first) {
        this.report('HOOP2020', this.tspan(family), '`match ssh` needs what it matches', 'write `match ssh interactive` (a shell channel, with or without a PTY)');
        return undefined;
      }
      if (first.image !== 'interactive') {
        this.report('HOOP2020', this.tspan(first), `unknown ssh request \`${first.image}\``, didYouMean(first.image, ['interactive']) ?? 'write `match ssh interactive`; commands are `match shell`, file operations `match sftp`, forwards `match forward to [...]`');
        return undefined;
      }
      extra('word', rest[0], 'write `match ssh interactive` alone');
      extra('paths', paths, '`on paths` belongs to `match sftp`');
      extra('to', to, '`to [...]` belongs to `match forward`');
      if (rest.length > 0 || paths || to) return undefined;
      return { kind: 'SshMatch', what: 'interactive', span };
    }
    if (family.image === 'sftp') {
      const ops: { value: SftpMatchOp; span: Span }[] = [];
      let bad = false;
      for (const w of words) {
        if ((SFTP_MATCH_OPS as readonly string[]).includes(w.image)) ops.push({ value: w.image as SftpMatchOp, span: this.tspan(w) });
        else {
          bad = true;
          this.report('HOOP2020', this.tspan(w), `unknown sftp operation \`${w.image}\``, didYouMean(w.image, SFTP_MATCH_OPS) ?? `sftp operations are ${SFTP_MATCH_OPS.join(', ')}`);
        }
      }
      extra('to', to, '`to [...]` belongs to `match forward`; sftp takes `on paths [...]`');
      if (bad || to) return undefined;
      const m: SftpMatch = { kind: 'SftpMatch', ops, span };
      if (paths && pathList) {
        m.paths = this.stringOrList(pathList);
        for (const p of m.paths) {
          if (!p.value.startsWith('/')) this.report('HOOP2020', p.span, `path glob ${JSON.stringify(p.value)} is not absolute`, 'the gateway decides on normalised absolute paths: start the glob with `/` (e.g. "/home/*/reports/**")');
          else if (/(^|\/)\.\.?(\/|$)/.test(p.value)) this.report('HOOP2020', p.span, `path glob ${JSON.stringify(p.value)} has a \`.\` or \`..\` segment`, 'paths are normalised before they are matched, so such a glob never matches: remove the segment');
        }
      }
      return m;
    }
    if (family.image === 'forward') {
      extra('word', words[0], 'write `match forward to ["host:port", ...]`');
      extra('paths', paths, '`on paths` belongs to `match sftp`');
      if (words.length > 0 || paths) return undefined;
      if (!to || !targetList) {
        this.report('HOOP2020', this.tspan(family), '`match forward` needs its targets', 'write `match forward to ["db.internal:5432"]` (host:port globs)');
        return undefined;
      }
      const targets = this.stringOrList(targetList);
      for (const t of targets) {
        if (!/^[^:]+:[^:]+$/.test(t.value) && !/^\[[^\]]+\]:[^:]+$/.test(t.value)) this.report('HOOP2020', t.span, `forward target ${JSON.stringify(t.value)} is not host:port`, 'write each target as "host:port" (globs allowed: "*.internal:5432", "db:*"; IPv6 as "[::1]:22")');
      }
      return { kind: 'ForwardMatch', targets, span };
    }
    this.report('HOOP2020', this.tspan(family), `unknown match \`${family.image}\``, didYouMean(family.image, families) ?? `a rule matches ${families.map((f) => `\`${f}\``).join(', ')}`);
    return undefined;
  }

  private checkGlob(g: StringLit, what: 'resource' | 'table' | 'program'): void {
    if (g.value === '') {
      this.report('HOOP2010', g.span, what === 'program' ? 'empty program name' : `empty ${what} glob`, what === 'program' ? 'name the program as it is run, e.g. "ls"' : 'use "*" to match every name');
      return;
    }
    if (what === 'table') {
      const parts = g.value.split('.');
      if (parts.length > 2 || parts.some((p) => p === '')) {
        this.report('HOOP2010', g.span, `invalid table glob ${JSON.stringify(g.value)}`,
          'write `table` or `schema.table` (globs `*` and `?` allowed; an unqualified table means schema `public`)');
      }
    }
    if (what === 'program' && g.value.includes('/')) {
      this.report('HOOP2010', g.span, `invalid program name ${JSON.stringify(g.value)}`,
        'program names are matched without their path: write "ls", not "/bin/ls"');
    }
  }

  private condition(n: CstNode): Condition | undefined {
    const t = tok(n, 'Cel');
    if (!t) return undefined;
    const span = this.tspan(t);
    const unterminated = t.tokenType === UnterminatedCel;
    if (unterminated) {
      this.report('HOOP1006', span, 'unterminated CEL expression', 'close the condition with a backtick `');
    }
    const source = t.image.slice(1, unterminated ? t.image.length : t.image.length - 1);
    const exprSpan: Span = {
      file: this.file_,
      startOffset: span.startOffset + 1,
      endOffset: unterminated ? span.endOffset : span.endOffset - 1,
      startLine: span.startLine,
      startColumn: span.startColumn + 1,
      endLine: span.endLine,
      endColumn: unterminated ? span.endColumn : span.endColumn - 1,
    };
    return { kind: 'Condition', source, exprSpan, span: this.nspan(n) };
  }

  private effect(clause: CstNode): Effect | undefined {
    const allow = node(clause, 'allowEffect');
    if (allow) return { kind: 'Allow', span: this.nspan(allow) };
    const block = node(clause, 'blockEffect');
    if (block) {
      const e: Effect = { kind: 'Block', span: this.nspan(block) };
      const msg = tok(block, 'StringLiteral');
      if (msg) e.message = this.string(msg);
      return e;
    }
    const approve = node(clause, 'approveEffect');
    if (approve) {
      const by = node(approve, 'approverGroups');
      const groups = this.approverGroups(by);
      if (groups.length === 0) return undefined;
      const e: ApproveEffect = { kind: 'Approve', groups, span: this.nspan(approve) };
      // A bad quorum or window is reported and left out: the effect stays, so no "has no effect" follows.
      const quorum = by ? this.approvalQuorum(by) : undefined;
      if (quorum) e.quorum = quorum;
      const d = tok(approve, 'Duration');
      if (d) {
        const dur = this.duration(d);
        if (dur) e.within = dur;
      }
      const lastingWord = tok(approve, 'lastingWord');
      const lastingTok = tok(approve, 'lasting');
      if (lastingWord && lastingTok) {
        if (lastingWord.image !== 'lasting') {
          this.report('HOOP2021', this.tspan(lastingWord), `expected \`lasting\` but found \`${lastingWord.image}\``,
            didYouMean(lastingWord.image, ['lasting']) ?? 'write `approve by group "dba" within 15m lasting 1h`');
          return e;
        }
        const lasting = this.duration(lastingTok);
        if (!lasting) return e;
        if (lasting.ms > MAX_APPROVAL_LASTING_MS) {
          this.report('HOOP2021', lasting.span, `\`lasting ${lasting.text}\` is longer than 7d`,
            'a lasting approval lets every statement of that fingerprint run unasked; keep the window short (at most 7d)');
          return e;
        }
        e.lasting = lasting;
      }
      return e;
    }
    const limit = node(clause, 'limitEffect');
    if (limit) {
      const spec = node(limit, 'limitSpec');
      return spec ? this.limitSpec(spec, this.nspan(limit)) : undefined;
    }
    const mask = node(clause, 'maskEffect');
    if (mask) {
      const maskerNode = node(mask, 'maskerRef');
      const masker = maskerNode ? this.maskerRef(maskerNode) : undefined;
      if (!masker) return undefined;
      const span = this.nspan(mask);
      const col = tok(mask, 'StringLiteral');
      if (tok(mask, 'Kw_column')) {
        if (!col) return undefined;
        const column = this.string(col);
        this.checkColumn(column);
        return { kind: 'MaskColumn', column, masker, span };
      }
      const detectors = nodes(mask, 'detectorRef').map((d) => this.detectorRef(d)).filter((d): d is DetectorRef => d !== undefined);
      if (detectors.length === 0) return undefined;
      return { kind: 'MaskDetect', detectors, masker, span };
    }
    return undefined;
  }

  /**
   * `rows N`, `time DURATION`, `rate N per DURATION` (after `limit`), read loosely by the parser
   * and checked here: the kind (did you mean), a whole positive count, a duration with a unit, a
   * window, and bounds (a limit of zero is a `block`; a limit beyond a day or 2^31 rows is a typo).
   */
  private limitSpec(n: CstNode, span: Span): LimitEffect | undefined {
    const kindTok = tok(n, 'limitKind');
    const values = nodes(n, 'limitValue');
    const valueTok = values[0] ? this.limitValueToken(values[0]) : undefined;
    const perWord = tok(n, 'perWord');
    const perValue = node(n, 'perValue');
    const perTok = perValue ? this.limitValueToken(perValue) : undefined;
    if (!kindTok || !valueTok) return undefined;
    const kind = kindTok.image;
    if (!(LIMIT_KINDS as readonly string[]).includes(kind)) {
      const alias = LIMIT_ALIASES[kind.toLowerCase()];
      this.report('HOOP2018', this.tspan(kindTok), `unknown limit \`${kind}\``,
        alias !== undefined ? `did you mean \`${alias}\`?` : didYouMean(kind, LIMIT_KINDS) ?? 'limits are `limit rows N`, `limit time DURATION` and `limit rate N per DURATION`');
      return undefined;
    }
    if (kind !== 'rate' && perWord) {
      this.report('HOOP2018', joinSpans(this.tspan(perWord), perTok ? this.tspan(perTok) : this.tspan(perWord)),
        `\`limit ${kind}\` takes one value`, 'only `limit rate` has a window (`limit rate 10 per 1m`); remove the rest');
      return undefined;
    }
    if (kind === 'rows') {
      const rows = this.limitCount(valueTok, 'rows', MAX_LIMIT_ROWS);
      return rows ? { kind: 'LimitRows', rows, span } : undefined;
    }
    if (kind === 'time') {
      const duration = this.limitDuration(valueTok, 'time', 1, MAX_LIMIT_DURATION_MS);
      return duration ? { kind: 'LimitTime', duration, span } : undefined;
    }
    const count = this.limitCount(valueTok, 'rate', MAX_LIMIT_RATE);
    if (!perWord || !perTok) {
      if (count) {
        this.report('HOOP2018', span, '`limit rate` needs a window', `write \`limit rate ${count.value} per 1m\` (any duration from 1s to 1d)`);
      }
      return undefined;
    }
    if (perWord.image !== 'per') {
      this.report('HOOP2018', this.tspan(perWord), `expected \`per\` but found \`${perWord.image}\``,
        didYouMean(perWord.image, ['per']) ?? `write \`limit rate N per DURATION\`, e.g. \`limit rate ${count?.value ?? 10} per 1m\``);
      return undefined;
    }
    const per = this.limitDuration(perTok, 'rate', MIN_RATE_WINDOW_MS, MAX_LIMIT_DURATION_MS);
    if (!count || !per) return undefined;
    return { kind: 'LimitRate', count, per, span };
  }

  private limitValueToken(n: CstNode): IToken | undefined {
    return tok(n, 'NumberLiteral') ?? tok(n, 'Duration') ?? tok(n, 'Identifier');
  }

  /** A whole count from 1 to `max` (`limit rows N`, `limit rate N per ...`). */
  private limitCount(t: IToken, kind: 'rows' | 'rate', max: number): NumberLit | undefined {
    const span = this.tspan(t);
    const what = kind === 'rows' ? 'a row count' : 'a request count';
    const example = kind === 'rows' ? 'limit rows 1000' : 'limit rate 10 per 1m';
    if (t.tokenType === DurationTok) {
      const m = /^(\d+)([A-Za-z]+)$/.exec(t.image);
      const times = m ? COUNT_SUFFIXES[m[2]] : undefined;
      const help = m && times !== undefined && Number.isSafeInteger(Number(m[1]) * times)
        ? `write the number in full: \`${Number(m[1]) * times}\``
        : `a count is a whole number, e.g. \`${example}\``;
      this.report('HOOP2018', span, `\`${t.image}\` is not ${what}`, help);
      return undefined;
    }
    if (t.tokenType !== NumberLiteral) {
      this.report('HOOP2018', span, `\`${t.image}\` is not ${what}`, `a count is a whole number, e.g. \`${example}\``);
      return undefined;
    }
    const value = Number(t.image);
    if (!/^-?\d+$/.test(t.image)) {
      this.report('HOOP2018', span, `${what} must be a whole number, not \`${t.image}\``, `e.g. \`${example}\``);
      return undefined;
    }
    if (value <= 0) {
      this.report('HOOP2018', span, `${what} must be at least 1, not ${t.image}`,
        kind === 'rows' ? 'to refuse the statement, use `block`' : 'to refuse every request, use `block`');
      return undefined;
    }
    if (value > max) {
      this.report('HOOP2018', span, `${what} of ${t.image} is more than the largest allowed, ${max}`,
        kind === 'rows' ? 'remove the limit to allow any number of rows' : 'use a shorter window instead');
      return undefined;
    }
    return { kind: 'Number', value, span };
  }

  /** A duration (with a unit) from `min` to `max` ms (`limit time`, the window of `limit rate`). */
  private limitDuration(t: IToken, kind: 'time' | 'rate', min: number, max: number): Duration | undefined {
    const span = this.tspan(t);
    const what = kind === 'time' ? '`limit time`' : 'a rate window';
    if (t.tokenType === NumberLiteral) {
      const n = t.image;
      this.report('HOOP1005', span, `${what} needs a unit: \`${n}\` is a bare number`,
        !/^\d+$/.test(n) ? 'a duration is a whole number followed by ms, s, m, h or d (e.g. 30s)'
          : kind === 'time' ? `write \`${n}s\` or \`${n}ms\` (units ms, s, m, h, d)` : `write \`${n}s\` (units s, m, h, d)`);
      return undefined;
    }
    if (t.tokenType !== DurationTok) {
      const instead = WINDOW_WORDS[t.image.toLowerCase()];
      this.report('HOOP1005', span, `\`${t.image}\` is not a duration`,
        instead !== undefined ? `write \`${instead}\`` : 'a duration is a whole number followed by ms, s, m, h or d (e.g. 30s)');
      return undefined;
    }
    const d = this.duration(t);
    if (!d) return undefined;
    if (d.ms < min) {
      this.report('HOOP2018', span, `${what} of ${d.text} is too short`, `the shortest is ${formatDurationMs(min)}`);
      return undefined;
    }
    if (d.ms > max) {
      this.report('HOOP2018', span, `${what} of ${d.text} is longer than a day`, `the longest is ${formatDurationMs(max)}`);
      return undefined;
    }
    return d;
  }

  /** `N of` in `approve by N of group "g"`: undefined when absent, null when reported. */
  private approvalQuorum(n: CstNode): NumberLit | undefined | null {
    const q = tok(n, 'quorum');
    const ofWord = tok(n, 'ofWord');
    if (!q || !ofWord) return undefined;
    if (ofWord.image !== 'of') {
      this.report('HOOP2021', this.tspan(ofWord), `expected \`of\` but found \`${ofWord.image}\``,
        didYouMean(ofWord.image, ['of']) ?? `write \`approve by ${q.image} of group "dba"\``);
      return null;
    }
    const value = Number(q.image);
    const span = this.tspan(q);
    if (!Number.isInteger(value) || value < 1 || value > MAX_APPROVAL_QUORUM) {
      this.report('HOOP2021', span, `an approval quorum must be a whole number from 1 to ${MAX_APPROVAL_QUORUM}, got \`${q.image}\``,
        'e.g. `approve by 2 of group "dba"`: two distinct approvers, neither the requester');
      return null;
    }
    return { kind: 'Number', value, span };
  }

  private approverGroups(n: CstNode | undefined): StringLit[] {
    if (!n || !tok(n, 'attribute')) return [];
    const groups = this.stringOrList(node(n, 'stringOrList'));
    for (const g of groups) {
      if (g.value === '') this.report('HOOP2010', g.span, 'empty group name', 'name the approver group, e.g. "dba"');
    }
    return groups;
  }

  private checkColumn(column: StringLit): void {
    const parts = column.value.split('.');
    if (parts.length < 2 || parts.length > 3 || parts.some((p) => p.trim() === '' || /\s/.test(p))) {
      this.report('HOOP2009', column.span, `invalid column reference ${JSON.stringify(column.value)}`,
        'write "table.column" or "schema.table.column" (an unqualified table means schema `public`)');
    }
  }

  private maskerRef(n: CstNode): MaskerRef | undefined {
    const nameTok = tok(n, 'NameTok');
    if (!nameTok) return undefined;
    const args: NumberLit[] = toks(n, 'NumberLiteral')
      .sort((a, b) => a.startOffset - b.startOffset)
      .map((t) => ({ kind: 'Number', value: Number(t.image), span: this.tspan(t) }));
    return { kind: 'Masker', name: this.name(nameTok), args, span: this.nspan(n) };
  }

  private detectorRef(n: CstNode): DetectorRef | undefined {
    const nameTok = tok(n, 'NameTok');
    if (!nameTok) return undefined;
    const args = this.stringItems(node(n, 'stringItems'));
    return { kind: 'Detector', name: this.name(nameTok), args, span: this.nspan(n) };
  }

  /** `match shell` needs an ssh resource and `match sql` a postgres one (when `on` names a kind). */
  private checkSelectorKinds(rule: Rule): void {
    this.checkLimitKinds(rule);
    if (!rule.on || !rule.match) return;
    const rk = rule.on.resourceKind;
    if (rule.match.kind === 'ShellMatch' && rk === 'postgres') {
      this.report('HOOP2013', rule.match.span, 'shell match on a postgres resource',
        'a `match shell` rule needs `on ssh(...)` (or no `on`)', [{ message: 'resource kind given here', span: rule.on.span }]);
    }
    if ((rule.match.kind === 'SshMatch' || rule.match.kind === 'SftpMatch' || rule.match.kind === 'ForwardMatch') && rk === 'postgres') {
      const word = rule.match.kind === 'SshMatch' ? 'ssh' : rule.match.kind === 'SftpMatch' ? 'sftp' : 'forward';
      this.report('HOOP2013', rule.match.span, `${word} match on a postgres resource`,
        `a \`match ${word}\` rule needs \`on ssh(...)\` (or no \`on\`)`, [{ message: 'resource kind given here', span: rule.on.span }]);
    }
    if (rule.match.kind === 'SqlMatch' && rk === 'ssh') {
      this.report('HOOP2014', rule.match.span, 'sql match on an ssh resource',
        'a `match sql` rule needs `on postgres(...)` (or no `on`)', [{ message: 'resource kind given here', span: rule.on.span }]);
    }
  }

  /**
   * `limit rows` cuts a SQL result; a rule that can only apply to ssh requests (`on ssh(...)` or
   * `match shell`) has no result to cut, so the limit would silently do nothing (HOOP2019).
   */
  private checkLimitKinds(rule: Rule): void {
    const sshOnly = rule.on?.resourceKind === 'ssh' ? rule.on : rule.match && rule.match.kind !== 'SqlMatch' ? rule.match : undefined;
    if (!sshOnly) return;
    for (const e of rule.effects) {
      if (e.kind !== 'LimitRows') continue;
      this.report('HOOP2019', e.span, `\`limit rows\` in rule \`${rule.name.value}\`, which applies only to ssh requests`,
        'a row limit cuts SQL results; for an ssh command use `limit time` (it ends the command) or `limit rate`',
        [{ message: sshOnly.kind === 'On' ? 'resource kind given here' : 'shell match here', span: sshOnly.span }]);
    }
  }

  /**
   * `block` excludes every other effect (the rule would block anyway, so the rest is dead code
   * that misleads the reader); `approve` already grants once approved, so `allow` beside it is a
   * warning; one `block` and one `approve` per rule.
   */
  private checkEffects(rule: Rule): void {
    const byKind = (k: Effect['kind']) => rule.effects.filter((e) => e.kind === k);
    const blocks = byKind('Block');
    const approves = byKind('Approve');
    const allows = byKind('Allow');
    const others = rule.effects.filter((e) => e.kind !== 'Block');
    if (blocks.length > 0 && others.length > 0) {
      this.report('HOOP2011', others[0].span, `\`block\` together with \`${effectWord(others[0])}\` in rule \`${rule.name.value}\``,
        'a rule that blocks cannot also grant or mask; split it into two rules',
        [{ message: '`block` here', span: blocks[0].span }]);
    }
    if (blocks.length > 1) {
      this.report('HOOP2011', blocks[1].span, `\`block\` given twice in rule \`${rule.name.value}\``, 'keep one `block` with one message',
        [{ message: 'first `block` here', span: blocks[0].span }]);
    }
    if (approves.length > 1) {
      this.report('HOOP2011', approves[1].span, `\`approve\` given twice in rule \`${rule.name.value}\``,
        'list every approver group in one `approve by groups [...]`', [{ message: 'first `approve` here', span: approves[0].span }]);
    }
    if (approves.length > 0 && allows.length > 0) {
      this.report('HOOP2011', allows[0].span, `\`allow\` has no effect beside \`approve\` in rule \`${rule.name.value}\``,
        'remove `allow`: an approved statement is allowed', [{ message: '`approve` here', span: approves[0].span }], 'warning');
    }
    if (allows.length > 1) {
      this.report('HOOP2011', allows[1].span, `\`allow\` given twice in rule \`${rule.name.value}\``, 'remove the second `allow`',
        [{ message: 'first `allow` here', span: allows[0].span }], 'warning');
    }
    for (const k of ['LimitRows', 'LimitTime'] as const) {
      const limits = byKind(k);
      if (limits.length > 1) {
        const word = k === 'LimitRows' ? 'limit rows' : 'limit time';
        this.report('HOOP2011', limits[1].span, `\`${word}\` given twice in rule \`${rule.name.value}\``, 'only the smallest applies; keep one',
          [{ message: `first \`${word}\` here`, span: limits[0].span }], 'warning');
      }
    }
    const rates = byKind('LimitRate') as Extract<Effect, { kind: 'LimitRate' }>[];
    for (let i = 1; i < rates.length; i++) {
      const first = rates.find((r, j) => j < i && r.per.ms === rates[i].per.ms);
      if (first) {
        this.report('HOOP2011', rates[i].span, `two \`limit rate\` with the same window in rule \`${rule.name.value}\``,
          'only the smaller count applies; keep one', [{ message: 'first `limit rate` here', span: first.span }], 'warning');
      }
    }
  }

  // -------------------------------------------------------------------------------------------
  // tests

  private test(n: CstNode): TestCase | undefined {
    const nameTok = tok(n, 'StringLiteral');
    if (!nameTok) return undefined;
    const span = this.nspan(n);
    const test: TestCase = {
      kind: 'Test', name: this.string(nameTok), identity: undefined, resource: undefined, context: undefined, estimate: undefined, input: undefined, expects: [], span,
    };
    const twice = (what: string, at: Span, first: Span) =>
      this.report('HOOP4005', at, `\`${what}\` given twice in test ${JSON.stringify(test.name.value)}`, `keep one \`${what}\``,
        [{ message: 'first given here', span: first }]);
    for (const clause of nodes(n, 'testClause')) {
      const cspan = this.nspan(clause);
      if (tok(clause, 'Kw_identity')) {
        const obj = this.objectLit(node(clause, 'objectLit'));
        if (!obj) continue;
        if (test.identity) twice('identity', cspan, test.identity.span);
        else {
          this.checkFields(obj, 'identity', IDENTITY_FIELDS);
          test.identity = obj;
        }
      } else if (tok(clause, 'Kw_context')) {
        const obj = this.objectLit(node(clause, 'objectLit'));
        if (!obj) continue;
        if (test.context) twice('context', cspan, test.context.span);
        else {
          this.checkFields(obj, 'context', CONTEXT_FIELDS);
          test.context = obj;
        }
      } else if (tok(clause, 'Kw_estimate')) {
        const obj = this.objectLit(node(clause, 'objectLit'));
        if (!obj) continue;
        if (test.estimate) twice('estimate', cspan, test.estimate.span);
        else {
          this.checkFields(obj, 'estimate', ESTIMATE_FIELDS);
          test.estimate = obj;
        }
      } else if (node(clause, 'testResource')) {
        const r = node(clause, 'testResource') as CstNode;
        const kt = tok(r, 'resourceKind');
        const nt = tok(r, 'StringLiteral');
        if (!kt || !nt) continue;
        const kind = this.resourceKind<ResourceKind>(kt, RESOURCE_KINDS.filter((k): k is ResourceKind => k !== 'any'));
        const name = this.string(nt);
        if (!kind) continue;
        if (test.resource) twice('resource', cspan, test.resource.span);
        else test.resource = { kind: 'TestResource', resourceKind: kind, name, span: this.nspan(r) };
      } else if (tok(clause, 'Kw_sql') || tok(clause, 'Kw_shell')) {
        const t = tok(clause, 'StringLiteral');
        if (!t) continue;
        const input = { kind: tok(clause, 'Kw_sql') ? 'SqlInput' as const : 'ShellInput' as const, text: this.string(t), span: cspan };
        if (test.input) twice(input.kind === 'SqlInput' ? 'sql' : 'shell', cspan, test.input.span);
        else test.input = input;
      } else {
        const e = this.expectation(node(clause, 'expectation'));
        if (e) test.expects.push(e);
      }
    }
    this.checkTest(test);
    return test;
  }

  private checkTest(test: TestCase): void {
    const hasSyntaxError = this.hasSyntaxErrorIn(test.span);
    if (!test.input && !hasSyntaxError) {
      this.report('HOOP4002', test.name.span, `test ${JSON.stringify(test.name.value)} has no input`,
        'add `sql "..."` or `shell "..."`');
    }
    if (test.expects.length === 0 && !hasSyntaxError) {
      this.report('HOOP4003', test.name.span, `test ${JSON.stringify(test.name.value)} has no expectation`,
        'add an `expect` line, e.g. `expect block`');
    }
    if (test.input && test.resource) {
      if (test.input.kind === 'SqlInput' && test.resource.resourceKind === 'ssh') {
        this.report('HOOP2014', test.input.span, 'sql input on an ssh resource', 'use `shell "..."` for an ssh resource',
          [{ message: 'resource given here', span: test.resource.span }]);
      }
      if (test.input.kind === 'ShellInput' && test.resource.resourceKind === 'postgres') {
        this.report('HOOP2013', test.input.span, 'shell input on a postgres resource', 'use `sql "..."` for a postgres resource',
          [{ message: 'resource given here', span: test.resource.span }]);
      }
    }
    // One verdict, one rules list and one message per test; mask columns and approvers may repeat.
    const seen = new Map<string, Expectation>();
    for (const e of test.expects) {
      if (e.kind === 'ExpectLimit' && e.limit.kind !== 'LimitRate') {
        const key = e.limit.kind;
        const first = seen.get(key);
        const word = key === 'LimitRows' ? 'limit rows' : 'limit time';
        if (first) {
          this.report('HOOP4007', e.span, `a second \`expect ${word}\` in test ${JSON.stringify(test.name.value)}`,
            `a decision carries one ${word}: the smallest`, [{ message: 'first expectation here', span: first.span }]);
        } else seen.set(key, e);
        continue;
      }
      if (e.kind !== 'ExpectVerdict' && e.kind !== 'ExpectRules' && e.kind !== 'ExpectMessage') continue;
      const first = seen.get(e.kind);
      if (first) {
        const what = e.kind === 'ExpectVerdict' ? 'verdict' : e.kind === 'ExpectRules' ? '`rules`' : '`message`';
        this.report('HOOP4007', e.span, `a second expected ${what} in test ${JSON.stringify(test.name.value)}`,
          'a test expects one verdict, one rules list and one message', [{ message: 'first expectation here', span: first.span }]);
      } else seen.set(e.kind, e);
    }
  }

  private expectation(n: CstNode | undefined): Expectation | undefined {
    if (!n) return undefined;
    const span = this.nspan(n);
    const verdictTok = tok(n, 'verdict');
    if (verdictTok) {
      const col = tok(n, 'StringLiteral');
      if (verdictTok.image === 'mask' && col) {
        const column = this.string(col);
        this.checkColumn(column);
        return { kind: 'ExpectMaskColumn', column, span };
      }
      const approvers = node(n, 'approverGroups');
      if (verdictTok.image === 'approve' && approvers) {
        const groups = this.approverGroups(approvers);
        if (groups.length === 0) return undefined;
        const quorum = this.approvalQuorum(approvers);
        if (quorum === null) return undefined;
        return { kind: 'ExpectApprovers', groups, ...(quorum ? { quorum } : {}), span };
      }
      return { kind: 'ExpectVerdict', verdict: verdictTok.image as 'allow' | 'mask' | 'approve' | 'block', span };
    }
    if (tok(n, 'Kw_rules')) {
      const rules = nodes(n, 'qualifiedName').map((q) => this.qualifiedName(q)).filter((x): x is Name => x !== undefined);
      return { kind: 'ExpectRules', rules, span };
    }
    if (tok(n, 'Kw_message')) {
      const t = tok(n, 'StringLiteral');
      if (!t) return undefined;
      return { kind: 'ExpectMessage', message: this.string(t), span };
    }
    const spec = node(n, 'limitSpec');
    if (tok(n, 'Kw_limit') && spec) {
      const limit = this.limitSpec(spec, this.nspan(spec));
      return limit ? { kind: 'ExpectLimit', limit, span } : undefined;
    }
    return undefined;
  }

  private objectLit(n: CstNode | undefined): ObjectLit | undefined {
    if (!n) return undefined;
    const entries: ObjectEntry[] = [];
    for (const e of nodes(n, 'objectEntry')) {
      const k = tok(e, 'key');
      const v = node(e, 'literal');
      if (!k || !v) continue;
      const value = this.literal(v);
      if (!value) continue;
      const key: Name = k.tokenType === StringLiteral || k.tokenType === UnterminatedString || k.tokenType === SingleQuotedString
        ? { kind: 'Name', value: this.string(k).value, span: this.tspan(k) }
        : this.name(k);
      entries.push({ key, value });
    }
    return { kind: 'Object', entries, span: this.nspan(n) };
  }

  private literal(n: CstNode): Literal | undefined {
    const span = this.nspan(n);
    const s = tok(n, 'StringLiteral');
    if (s) return this.string(s);
    const num = tok(n, 'NumberLiteral');
    if (num) return { kind: 'Number', value: Number(num.image), span };
    if (tok(n, 'Kw_true')) return { kind: 'Bool', value: true, span };
    if (tok(n, 'Kw_false')) return { kind: 'Bool', value: false, span };
    if (tok(n, 'Kw_null')) return { kind: 'Null', span };
    const list = node(n, 'listLit');
    if (list) {
      const items = nodes(list, 'literal').map((x) => this.literal(x)).filter((x): x is Literal => x !== undefined);
      return { kind: 'List', items, span };
    }
    return this.objectLit(node(n, 'objectLit'));
  }

  /** Known keys, each at most once, with the JSON type the engine expects. */
  private checkFields(obj: ObjectLit, what: 'identity' | 'context' | 'estimate', fields: readonly string[]): void {
    const seen = new Map<string, Span>();
    for (const { key, value } of obj.entries) {
      if (!fields.includes(key.value)) {
        this.report('HOOP2016', key.span, `unknown ${what} field \`${key.value}\``,
          didYouMean(key.value, fields) ?? `${what} fields are ${fields.map((f) => `\`${f}\``).join(', ')}`);
        continue;
      }
      const first = seen.get(key.value);
      if (first) {
        this.report('HOOP4005', key.span, `\`${key.value}\` given twice in ${what}`, 'keep one',
          [{ message: 'first given here', span: first }]);
        continue;
      }
      seen.set(key.value, key.span);
      const expected = what === 'estimate' ? 'a number' : fieldType(key.value);
      if (!literalHasType(value, expected)) {
        this.report('HOOP4006', value.span, `${what} field \`${key.value}\` must be ${expected}`,
          expected === 'a list of strings' ? `e.g. ${key.value}: ["data-reader"]` : undefined);
      } else if (what === 'estimate' && value.kind === 'Number' && value.value < 0) {
        this.report('HOOP4006', value.span, `estimate field \`${key.value}\` cannot be negative`);
      } else if (key.value === 'time' && value.kind === 'String' && Number.isNaN(Date.parse(value.value))) {
        this.report('HOOP4006', value.span, `context field \`time\` is not a date and time`,
          'use RFC 3339, e.g. "2026-01-01T10:00:00Z"');
      }
    }
  }
}

function fieldType(field: string): 'a string' | 'a list of strings' | 'an object' | 'a number' {
  if (field === 'groups' || field === 'actors') return 'a list of strings';
  if (field === 'claims') return 'an object';
  return 'a string';
}

function literalHasType(v: Literal, t: ReturnType<typeof fieldType>): boolean {
  if (t === 'a string') return v.kind === 'String';
  if (t === 'a number') return v.kind === 'Number';
  if (t === 'an object') return v.kind === 'Object';
  return v.kind === 'List' && v.items.every((i) => i.kind === 'String');
}

function effectWord(e: Effect): string {
  switch (e.kind) {
    case 'Allow': return 'allow';
    case 'Block': return 'block';
    case 'Approve': return 'approve';
    case 'MaskColumn': return 'mask column';
    case 'MaskDetect': return 'mask detect';
    case 'LimitRows': return 'limit rows';
    case 'LimitTime': return 'limit time';
    case 'LimitRate': return 'limit rate';
  }
}
