// The canonical formatter.
//
// Layout is fixed: `package`, then `default`, then rules and tests in source order, a blank line
// between top-level declarations, 2-space indent, one selector / condition / effect / test line
// per line, selectors in the order on, when, match, if, then effects as written.
//
// Comments are kept. Each comment is attached to a printed line (an "anchor"):
//   - inside a construct, or after it on the same source line → trailing (printed after it);
//   - otherwise → leading of the next construct in the source (printed on its own line above);
//   - after everything → at the end of the file.
// Only block comments without line breaks can sit before another trailing comment on one line, so
// extra trailing comments move above the line; a second run then changes nothing.
//
// `format` re-parses its own output and refuses to return it if the AST or the comments changed
// (Cedar's soundness check), so a formatter bug can never change what a policy means.

import {
  type Comment, type DetectorRef, type Effect, type Expectation, type LimitEffect, type Literal, type MaskerRef,
  type PolicyFile, type Rule, type Span, type StringLit, type TestCase, stripSpans,
} from './ast.ts';
import { type Diagnostic, hasErrors } from './diagnostics.ts';
import { parseText } from './parse.ts';

export interface FormatResult {
  /** The formatted text; undefined when the input has errors or the soundness check failed. */
  text?: string;
  diagnostics: Diagnostic[];
}

interface Anchor {
  start: number;
  end: number;
  endLine: number;
  /** Leaf anchors can hold comments inside them (a multi-line list, an object). */
  leaf: boolean;
  leading: Comment[];
  trailing: Comment[];
}

interface Line {
  text: string;
  indent: number;
  anchor: Anchor;
  /** A blank line goes before this line (a new top-level declaration). */
  blankBefore: boolean;
  /** Indent of leading comments when it differs from the line's (comments before a closing brace). */
  commentIndent?: number;
}

const INDENT = '  ';
const BARE_KEY = /^[A-Za-z_][A-Za-z0-9_]*$/;

const str = (s: StringLit): string => JSON.stringify(s.value);
const strs = (xs: StringLit[]): string => `[${xs.map(str).join(', ')}]`;

function anchor(span: Span, leaf = true): Anchor {
  return { start: span.startOffset, end: span.endOffset, endLine: span.endLine, leaf, leading: [], trailing: [] };
}

function point(offset: number, line: number): Anchor {
  return { start: offset, end: offset + 1, endLine: line, leaf: true, leading: [], trailing: [] };
}

export function literalText(l: Literal): string {
  switch (l.kind) {
    case 'String': return JSON.stringify(l.value);
    case 'Number': return String(l.value);
    case 'Bool': return l.value ? 'true' : 'false';
    case 'Null': return 'null';
    case 'List': return `[${l.items.map(literalText).join(', ')}]`;
    case 'Object':
      if (l.entries.length === 0) return '{}';
      return `{ ${l.entries.map((e) => `${BARE_KEY.test(e.key.value) ? e.key.value : JSON.stringify(e.key.value)}: ${literalText(e.value)}`).join(', ')} }`;
  }
}

function maskerText(m: MaskerRef): string {
  return m.args.length === 0 ? m.name.value : `${m.name.value}(${m.args.map((a) => String(a.value)).join(', ')})`;
}

function detectorText(d: DetectorRef): string {
  return d.args.length === 0 ? d.name.value : `${d.name.value}(${d.args.map(str).join(', ')})`;
}

/** `group "g"` for one value, `groups ["a", "b"]` for several. */
function oneOrMany(word: string, values: StringLit[]): string {
  return values.length === 1 ? `${word} ${str(values[0])}` : `${word}s ${strs(values)}`;
}

export function effectText(e: Effect): string {
  switch (e.kind) {
    case 'Allow': return 'allow';
    case 'Block': return e.message ? `block ${str(e.message)}` : 'block';
    case 'Approve': return `approve by ${e.quorum ? `${e.quorum.value} of ` : ''}${oneOrMany('group', e.groups)}${e.within ? ` within ${e.within.text}` : ''}${e.lasting ? ` lasting ${e.lasting.text}` : ''}`;
    case 'MaskColumn': return `mask column ${str(e.column)} with ${maskerText(e.masker)}`;
    case 'MaskDetect': return `mask detect ${e.detectors.map(detectorText).join(', ')} with ${maskerText(e.masker)}`;
    case 'LimitRows':
    case 'LimitTime':
    case 'LimitRate':
      return limitText(e);
  }
}

/** `limit rows 1000`, `limit time 30s`, `limit rate 10 per 1m` (durations as written). */
export function limitText(e: LimitEffect): string {
  switch (e.kind) {
    case 'LimitRows': return `limit rows ${e.rows.value}`;
    case 'LimitTime': return `limit time ${e.duration.text}`;
    case 'LimitRate': return `limit rate ${e.count.value} per ${e.per.text}`;
  }
}

function expectText(e: Expectation): string {
  switch (e.kind) {
    case 'ExpectVerdict': return `expect ${e.verdict}`;
    case 'ExpectMaskColumn': return `expect mask column ${str(e.column)}`;
    case 'ExpectApprovers': return `expect approve by ${e.quorum ? `${e.quorum.value} of ` : ''}${oneOrMany('group', e.groups)}`;
    case 'ExpectRules': return `expect rules [${e.rules.map((r) => r.value).join(', ')}]`;
    case 'ExpectMessage': return `expect message ${str(e.message)}`;
    case 'ExpectLimit': return `expect ${limitText(e.limit)}`;
  }
}

function ruleLines(r: Rule, lines: Line[]): void {
  lines.push({ text: `rule ${r.name.value} {`, indent: 0, blankBefore: true,
    anchor: { ...anchor(r.span), end: r.name.span.endOffset, endLine: r.name.span.endLine } });
  const body = (text: string, span: Span) => lines.push({ text, indent: 1, blankBefore: false, anchor: anchor(span) });
  if (r.on) body(r.on.globs.length === 0 ? `on ${r.on.resourceKind}` : `on ${r.on.resourceKind}(${r.on.globs.map(str).join(', ')})`, r.on.span);
  if (r.when) body(`when ${oneOrMany(r.when.attribute, r.when.values)}`, r.when.span);
  if (r.match) {
    if (r.match.kind === 'ShellMatch') body(r.match.any ? 'match shell any' : `match shell ${strs(r.match.programs)}`, r.match.span);
    else if (r.match.kind === 'SshMatch') body(`match ssh ${r.match.what}`, r.match.span);
    else if (r.match.kind === 'SftpMatch') {
      const ops = r.match.ops.map((o) => o.value).join(', ');
      body(`match sftp${ops ? ` ${ops}` : ''}${r.match.paths ? ` on paths ${strs(r.match.paths)}` : ''}`, r.match.span);
    } else if (r.match.kind === 'ForwardMatch') body(`match forward to ${strs(r.match.targets)}`, r.match.span);
    else {
      const kinds = r.match.statementKinds.map((k) => k.value).join(', ');
      const tables = r.match.tables ? ` on tables ${strs(r.match.tables)}` : '';
      body(`match sql${kinds ? ` ${kinds}` : ''}${tables}`, r.match.span);
    }
  }
  for (const c of r.conditions) body(`if \`${c.source}\``, c.span);
  for (const e of r.effects) body(effectText(e), e.span);
  lines.push({ text: '}', indent: 0, commentIndent: 1, blankBefore: false, anchor: point(r.span.endOffset - 1, r.span.endLine) });
}

function testLines(t: TestCase, lines: Line[]): void {
  lines.push({ text: `test ${str(t.name)} {`, indent: 0, blankBefore: true,
    anchor: { ...anchor(t.span), end: t.name.span.endOffset, endLine: t.name.span.endLine } });
  const body = (text: string, span: Span) => lines.push({ text, indent: 1, blankBefore: false, anchor: anchor(span) });
  if (t.identity) body(`identity ${literalText(t.identity)}`, t.identity.span);
  if (t.resource) body(`resource ${t.resource.resourceKind}(${str(t.resource.name)})`, t.resource.span);
  if (t.context) body(`context ${literalText(t.context)}`, t.context.span);
  if (t.estimate) body(`estimate ${literalText(t.estimate)}`, t.estimate.span);
  if (t.input) body(`${t.input.kind === 'SqlInput' ? 'sql' : 'shell'} ${str(t.input.text)}`, t.input.span);
  for (const e of t.expects) body(expectText(e), e.span);
  lines.push({ text: '}', indent: 0, commentIndent: 1, blankBefore: false, anchor: point(t.span.endOffset - 1, t.span.endLine) });
}

/** Index of the last element of sorted `xs` with `key(x) <= v`, or -1. */
function lastAtMost<T>(xs: readonly T[], v: number, key: (x: T) => number): number {
  let lo = 0;
  let hi = xs.length - 1;
  let found = -1;
  while (lo <= hi) {
    const mid = (lo + hi) >> 1;
    if (key(xs[mid]) <= v) {
      found = mid;
      lo = mid + 1;
    } else hi = mid - 1;
  }
  return found;
}

/**
 * Attaches each comment to an anchor (see the header); returns the comments left for the end.
 * Anchors of a parsed file never overlap, so sorted by start they are sorted by end too, and each
 * lookup is a binary search (a 10,000-rule file has ~100,000 anchors).
 */
function attachComments(anchors: Anchor[], comments: readonly Comment[]): Comment[] {
  const bySource = [...anchors].sort((a, b) => a.start - b.start || a.end - b.end);
  const rest: Comment[] = [];
  for (const c of [...comments].sort((a, b) => a.span.startOffset - b.span.startOffset)) {
    const cs = c.span.startOffset;
    // Inside a construct: the last anchor starting before the comment, if it also ends after it.
    const before = lastAtMost(bySource, cs - 1, (a) => a.start);
    const container = before >= 0 ? bySource[before] : undefined;
    if (container && container.leaf && c.span.endOffset <= container.end) {
      container.trailing.push(c);
      continue;
    }
    // After a construct on the same line: the last anchor ending before the comment.
    const ended = lastAtMost(bySource, cs, (a) => a.end);
    const trailingOf = ended >= 0 ? bySource[ended] : undefined;
    if (trailingOf && trailingOf.endLine === c.span.startLine) {
      trailingOf.trailing.push(c);
      continue;
    }
    const next = bySource[lastAtMost(bySource, c.span.endOffset - 1, (a) => a.start) + 1];
    if (next) next.leading.push(c);
    else rest.push(c);
  }
  // Only one-line block comments may be followed by another comment on the same line.
  for (const a of anchors) {
    const inline = a.trailing.filter((c) => c.text.startsWith('/*') && !c.text.includes('\n'));
    const others = a.trailing.filter((c) => !inline.includes(c));
    const last = others.pop();
    a.leading.push(...others);
    a.trailing = last ? [...inline, last] : inline;
  }
  return rest;
}

function commentText(c: Comment): string {
  return c.text.startsWith('//') ? c.text.trimEnd() : c.text;
}

/** Prints an AST (with its comments) canonically. Pure; does not check anything. */
export function formatAst(ast: PolicyFile): string {
  const lines: Line[] = [];
  if (ast.package) lines.push({ text: `package ${ast.package.value}`, indent: 0, blankBefore: true, anchor: anchor(ast.package.span) });
  if (ast.default) {
    const d = ast.default;
    lines.push({
      text: d.effect === 'allow' ? 'default allow' : d.message ? `default block ${str(d.message)}` : 'default block',
      indent: 0, blankBefore: true, anchor: anchor(d.span),
    });
  }
  const items: (Rule | TestCase)[] = [...ast.rules, ...ast.tests];
  items.sort((a, b) => a.span.startOffset - b.span.startOffset); // stable: equal offsets keep rules first
  for (const item of items) {
    if (item.kind === 'Rule') ruleLines(item, lines);
    else testLines(item, lines);
  }
  const rest = attachComments(lines.map((l) => l.anchor), ast.comments);

  const out: string[] = [];
  for (const l of lines) {
    if (l.blankBefore && out.length > 0) out.push('');
    const pad = INDENT.repeat(l.indent);
    const cpad = INDENT.repeat(l.commentIndent ?? l.indent);
    for (const c of l.anchor.leading) out.push(cpad + commentText(c));
    const trailing = l.anchor.trailing.map(commentText).join(' ');
    out.push(pad + l.text + (trailing ? ` ${trailing}` : ''));
  }
  if (rest.length > 0 && out.length > 0) out.push('');
  for (const c of rest) out.push(commentText(c));
  return out.length === 0 ? '' : out.join('\n') + '\n';
}

/** JSON with object keys sorted, so equality does not depend on property insertion order. */
export function canonicalJson(v: unknown): string {
  if (Array.isArray(v)) return `[${v.map(canonicalJson).join(',')}]`;
  if (v !== null && typeof v === 'object') {
    const o = v as Record<string, unknown>;
    return `{${Object.keys(o).sort().filter((k) => o[k] !== undefined).map((k) => `${JSON.stringify(k)}:${canonicalJson(o[k])}`).join(',')}}`;
  }
  return JSON.stringify(v);
}

function commentTexts(ast: PolicyFile): string[] {
  return ast.comments.map(commentText).sort();
}

/**
 * Formats a file. Refuses (no text, diagnostics instead) when the input has errors, or when the
 * output would not parse back to the same AST and the same comments.
 */
export function formatText(text: string, file: string): FormatResult {
  const parsed = parseText(text, file);
  if (hasErrors(parsed.diagnostics)) return { diagnostics: parsed.diagnostics };
  const out = formatAst(parsed.ast);
  const again = parseText(out, file);
  const same =
    !hasErrors(again.diagnostics) &&
    canonicalJson(stripSpans(again.ast)) === canonicalJson(stripSpans(parsed.ast)) &&
    JSON.stringify(commentTexts(again.ast)) === JSON.stringify(commentTexts(parsed.ast));
  if (!same) {
    return {
      diagnostics: [
        ...parsed.diagnostics,
        {
          code: 'HOOP1007',
          severity: 'error',
          message: 'the formatter would change the meaning or the comments of this file; it was left unchanged',
          help: 'this is a bug in hoop; please report it with the file that caused it',
          span: parsed.ast.span,
          related: [],
        },
      ],
    };
  }
  return { text: out, diagnostics: parsed.diagnostics };
}
