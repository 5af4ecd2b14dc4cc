// text → { ast, diagnostics }: lexing, parsing with recovery, and the CST → AST checks.

import type { CstNode, IRecognitionException, IToken, TokenType } from 'chevrotain';
import type { PolicyFile, Span } from './ast.ts';
import { cstToAst } from './cst-to-ast.ts';
import { type Diagnostic, sortDiagnostics } from './diagnostics.ts';
import { LINE_BREAK, lex, tokenSpan } from './lexer.ts';
import { suggest } from './fuzzy.ts';
import { hoopParser } from './parser.ts';
import * as T from './tokens.ts';
import { Default, Package, RBrace, Rule, Test } from './tokens.ts';

export interface ParseResult {
  ast: PolicyFile;
  diagnostics: Diagnostic[];
}

/** Help for a syntax error, by the grammar rule it happened in. */
const RULE_HELP: Record<string, string> = {
  file: 'a file holds `package`, `default`, `rule` and `test` declarations',
  packageDecl: 'write `package name` or `package dotted.name`',
  defaultDecl: 'write `default allow` or `default block "message"`',
  ruleDecl: 'a rule is `rule name { ... }` holding `on`/`when`/`match`/`if` lines and `allow`/`block`/`approve`/`mask` effects',
  ruleClause: 'a rule body holds `on`, `when`, `match`, `if` lines and `allow`, `block`, `approve`, `mask` effects, one per line',
  onSelector: 'write `on postgres("prod-*")`, `on ssh("bastion-*")` or `on any`',
  whenSelector: 'write `when group "g"`, `when groups ["a", "b"]`, `when subject "agent-*"` or `when actor "alice@*"`',
  matchSelector: 'write `match sql select, insert`, `match sql on tables ["public.t"]`, `match shell ["ls", "cat"]`, `match ssh interactive`, `match sftp read on paths ["/var/log/**"]` or `match forward to ["db:5432"]`',
  sqlMatch: 'write `match sql select, insert on tables ["public.customers"]` (kinds and tables are both optional)',
  shellMatch: 'write `match shell ["ls", "cat"]` or `match shell "ls"`',
  condition: 'write a CEL condition in backticks: if `sql.has_where`',
  blockEffect: 'write `block` or `block "message"`',
  approveEffect: 'write `approve by group "dba"` or `approve by groups ["a", "b"] within 15m`',
  approverGroups: 'write `by group "dba"` or `by groups ["a", "b"]`',
  maskEffect: 'write `mask column "table.column" with MASKER` or `mask detect credit_card, email with MASKER`',
  maskerRef: 'maskers are redact, null, email, last4, hash and partial(n)',
  detectorRef: 'detectors are names such as credit_card, or regex("...")',
  testDecl: 'a test is `test "name" { ... }` holding identity, resource, context, sql or shell, and expect lines',
  testClause: 'a test holds `identity {...}`, `resource postgres("name")`, `context {...}`, `sql "..."` or `shell "..."`, and `expect` lines',
  testResource: 'write `resource postgres("prod-main")` or `resource ssh("bastion-1")`',
  expectation: 'write `expect allow|mask|approve|block`, `expect mask column "t.c"`, `expect approve by group "g"`, `expect rules [a, b]` or `expect message "..."`',
  objectLit: 'write `{ key: value, ... }` with commas between entries',
  objectEntry: 'write `key: value`',
  listLit: 'write `[value, ...]` with commas between items',
  literal: 'a value is a string, a number, true, false, null, a [list] or an {object}',
  stringItems: 'write double-quoted strings separated by commas',
  stringList: 'write a list of double-quoted strings: ["a", "b"]',
  stringOrList: 'write a double-quoted string or a list ["a", "b"]',
  qualifiedName: 'write a name such as `readers_select` or `prod.db.readers_select`',
};

const BODY_WORDS: Record<string, string> = {
  ruleDecl: 'a rule line (`on`, `when`, `match`, `if`, `allow`, `block`, `approve`, `mask`)',
  testDecl: 'a test line (`identity`, `resource`, `context`, `sql`, `shell`, `expect`)',
};

/** What "a name" is in each construct, for messages. */
const NAME_WORDS: Record<string, string> = {
  onSelector: 'a resource kind (`postgres`, `ssh` or `any`)',
  testResource: 'a resource kind (`postgres` or `ssh`)',
  ruleDecl: 'a rule name',
  maskerRef: 'a masker (redact, null, email, last4, hash, partial(n))',
  detectorRef: 'a detector (e.g. credit_card, email, regex("..."))',
  packageDecl: 'a package name',
  qualifiedName: 'a name',
  objectEntry: 'a field name',
};

const EOF_EXPECTED = 'expected end of file but found';
const TOP_EXPECTED = 'expected `package`, `default`, `rule` or `test` but found';

const LINE_STARTERS = new Set<TokenType>([
  Rule, Test, Package, Default, RBrace, T.On, T.When, T.Match, T.If, T.Allow, T.Block, T.Approve, T.Mask,
  T.Expect, T.Identity, T.Resource, T.Context, T.Sql, T.Shell,
]);

const TOP_LEVEL = new Set<TokenType>([Rule, Test, Package, Default]);
/** Keyword spelling → token type, for reading a misspelt keyword as the one it resembles. */
const KEYWORD_TOKENS = new Map<string, TokenType>(T.KEYWORD_WORDS.map((w) => [w, T.ALL_TOKENS.find((t) => t.PATTERN === w)!]));
/** Re-reads of a file with misspelt keywords corrected, at most (each pass corrects all it finds). */
const MAX_KEYWORD_PASSES = 8;

/**
 * Runs the parser, and when it stops before the end (junk between declarations that in-rule
 * recovery cannot absorb), skips to the next top-level keyword and parses the rest too, so one run
 * still reports every error. The partial CSTs are merged child-list by child-list.
 */
function parseTokens(tokens: IToken[]): { cst: CstNode; errors: IRecognitionException[] } {
  // Chevrotain signals every syntax error with an Error object; their stack traces are never
  // shown and capturing them was a fifth of the time spent on a broken file.
  const stackTraceLimit = Error.stackTraceLimit;
  Error.stackTraceLimit = 0;
  try {
    // `rul a { alow }`, `mathc sql select` then `blok`: recovery skips from a misspelt keyword to a
    // place it can resume, and every mistake in between goes unreported. So each misspelt keyword
    // is reported (its error, with the did-you-mean, is kept) and the file is read again with the
    // word taken as the keyword it resembles, until no new one turns up.
    const stands = new Map<IToken, { keyword: TokenType; word: string }>();
    const reported: IRecognitionException[] = [];
    let result = parseTokensWithRecovery(tokens);
    for (let pass = 0; pass < MAX_KEYWORD_PASSES; pass++) {
      let found = false;
      for (const e of result.errors) {
        const meant = meantKeyword(e, errorMessage(e));
        const keyword = meant === undefined ? undefined : KEYWORD_TOKENS.get(meant);
        if (keyword === undefined || stands.has(e.token)) continue;
        stands.set(e.token, { keyword, word: meant! });
        reported.push(e);
        found = true;
      }
      if (!found) break;
      // The stand-in keeps the word's position (spans come from offsets) and reads as the keyword.
      result = parseTokensWithRecovery(tokens.map((t) => {
        const s = stands.get(t);
        return s ? { ...t, image: s.word, tokenType: s.keyword, tokenTypeIdx: s.keyword.tokenTypeIdx! } : t;
      }));
    }
    return stands.size === 0 ? result : { cst: result.cst, errors: [...reported, ...result.errors] };
  } finally {
    Error.stackTraceLimit = stackTraceLimit;
  }
}

function parseTokensWithRecovery(tokens: IToken[]): { cst: CstNode; errors: IRecognitionException[] } {
  const errors: IRecognitionException[] = [];
  let merged: CstNode | undefined;
  let rest = tokens;
  for (;;) {
    hoopParser.input = rest;
    const cst = hoopParser.file();
    const errs = hoopParser.errors;
    if (!merged) merged = cst;
    else {
      for (const [k, v] of Object.entries(cst.children)) {
        merged.children[k] = [...(merged.children[k] ?? []), ...(v ?? [])];
      }
    }
    // Chevrotain 11 reports leftover input as a mismatch against EOF at the top rule.
    const stop = errs.find((e) => e.name === 'NotAllInputParsedException' || (e.context?.ruleStack?.length === 1 && e.message.startsWith(EOF_EXPECTED)));
    errors.push(...errs);
    // In-repetition recovery usually skips the junk and carries on; only resume by hand when the
    // parser really stopped at the junk.
    if (!stop || lastOffset(cst) > stop.token.startOffset) break;
    const at = rest.indexOf(stop.token);
    if (at < 0) break;
    let next = at + 1;
    while (next < rest.length && !TOP_LEVEL.has(rest[next].tokenType)) next++;
    if (next >= rest.length) break;
    rest = rest.slice(next);
  }
  return { cst: merged, errors };
}

/** The message a syntax error is shown with (Chevrotain's, made specific to where it happened). */
function errorMessage(err: IRecognitionException): string {
  const rule = err.context?.ruleStack?.[err.context.ruleStack.length - 1];
  let message = err.message.startsWith(EOF_EXPECTED) ? TOP_EXPECTED + err.message.slice(EOF_EXPECTED.length) : err.message;
  // Inside a body, "expected `}`" really means "this line is not a clause".
  if (message.startsWith('expected `}` but found') && rule !== undefined && rule in BODY_WORDS) {
    message = `expected ${BODY_WORDS[rule]} or \`}\`${message.slice('expected `}`'.length)}`;
  }
  if (message.startsWith('expected a name but') && rule !== undefined && rule in NAME_WORDS) {
    message = `expected ${NAME_WORDS[rule]}${message.slice('expected a name'.length)}`;
  }
  return message;
}

function lastOffset(n: CstNode): number {
  let max = -1;
  for (const xs of Object.values(n.children)) {
    for (const x of xs ?? []) {
      const o = 'image' in x ? (Number.isFinite(x.startOffset) ? x.startOffset : -1) : lastOffset(x);
      if (o > max) max = o;
    }
  }
  return max;
}

/**
 * `alow` where `allow` was expected: suggest the keyword. The expected keywords are read back from
 * the message (our message provider writes each one in backticks before "but found").
 */
function misspelledKeyword(err: IRecognitionException, message: string): string | undefined {
  const meant = meantKeyword(err, message);
  return meant === undefined ? undefined : `did you mean \`${meant}\`?`;
}

/** The keyword an identifier in a syntax error most likely stands for, among those expected there. */
function meantKeyword(err: IRecognitionException, message: string): string | undefined {
  const tok = err.token;
  if (!usable(tok) || tok.tokenType !== T.Identifier) return undefined;
  const expectedPart = message.split(' but found ')[0];
  const words = [...expectedPart.matchAll(/`([a-z_]+)`/g)].map((m) => m[1]);
  return words.length > 0 ? suggest(tok.image, words) : undefined;
}

function usable(t: IToken | undefined): t is IToken {
  return t !== undefined && !t.isInsertedInRecovery && Number.isFinite(t.startOffset) && t.tokenType?.name !== 'EOF';
}

/** Where to point for a syntax error: the offending token, or just after the previous one at end of file. */
function errorSpan(file: string, text: string, err: IRecognitionException): Span {
  const prev = (err as IRecognitionException & { previousToken?: IToken }).previousToken;
  // When the line ended early (`within` then a newline, then `}`), the mistake is at the end of
  // that line, not at the next line's perfectly good first token.
  const endedEarly = usable(err.token) && usable(prev) && LINE_STARTERS.has(err.token.tokenType) &&
    (err.token.startLine ?? 0) > (prev.endLine ?? 0);
  if (usable(err.token) && !endedEarly) return tokenSpan(file, err.token);
  if (usable(prev)) {
    const s = tokenSpan(file, prev);
    return { file, startOffset: s.endOffset, endOffset: s.endOffset + 1, startLine: s.endLine, startColumn: s.endColumn, endLine: s.endLine, endColumn: s.endColumn + 1 };
  }
  // Nothing usable: point at the end of the text.
  const lines = text.split(LINE_BREAK);
  const line = lines.length;
  const col = lines[lines.length - 1].length + 1;
  return { file, startOffset: text.length, endOffset: text.length, startLine: line, startColumn: col, endLine: line, endColumn: col };
}

export function parseText(text: string, file: string): ParseResult {
  const lexed = lex(text, file);
  const { cst, errors } = parseTokens(lexed.tokens);
  const diagnostics: Diagnostic[] = [...lexed.diagnostics];
  const seen = new Set<string>();
  const syntaxErrorOffsets: number[] = [];
  for (const err of errors) {
    const span = errorSpan(file, text, err);
    const key = `${span.startOffset}:${err.message}`;
    if (seen.has(key)) continue;
    seen.add(key);
    syntaxErrorOffsets.push(span.startOffset);
    const rule = err.context?.ruleStack?.[err.context.ruleStack.length - 1];
    const message = errorMessage(err);
    const d: Diagnostic = { code: 'HOOP1001', severity: 'error', message, span, related: [] };
    const help = misspelledKeyword(err, message) ?? (rule !== undefined ? RULE_HELP[rule] : undefined);
    if (help !== undefined) d.help = help;
    diagnostics.push(d);
  }
  const lines = text.split(LINE_BREAK);
  const fileSpan: Span = {
    file, startOffset: 0, endOffset: text.length, startLine: 1, startColumn: 1,
    endLine: lines.length, endColumn: lines[lines.length - 1].length + 1,
  };
  const converted = cstToAst(cst, { file, comments: lexed.comments, syntaxErrorOffsets, fileSpan });
  diagnostics.push(...converted.diagnostics);
  return { ast: converted.ast, diagnostics: sortDiagnostics(diagnostics) };
}
