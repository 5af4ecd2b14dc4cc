// Token types of the .hoop language.
//
// Keywords are real tokens (so the grammar can CONSUME them and Chevrotain can tell them apart with
// fixed lookahead), but every keyword also carries the `NameTok` category: wherever the grammar
// expects a name (a rule name, a masker such as `null`, a detector such as `email`, a statement
// kind such as `select`), any keyword is accepted too. `KindTok` is the narrower category for the
// first statement kind after `match sql`, which must not swallow the clause that follows
// (`match sql` then `allow` on the next line).
//
// Malformed tokens (a string without its closing quote, a CEL expression without its closing
// backtick, a block comment without `*/`) are lexed as their well-formed category so the parser
// carries on; cst-to-ast and the lexer wrapper report them with their own codes.

import { createToken, Lexer, type TokenType } from 'chevrotain';

export const NameTok = createToken({ name: 'NameTok', pattern: Lexer.NA, label: 'a name' });
export const KindTok = createToken({ name: 'KindTok', pattern: Lexer.NA, label: 'a statement kind' });

export const WhiteSpace = createToken({
  name: 'WhiteSpace',
  pattern: /[ \t\r\n\f\uFEFF]+/,
  group: Lexer.SKIPPED,
  line_breaks: true,
});

export const LineComment = createToken({
  name: 'LineComment',
  pattern: /\/\/[^\r\n]*/,
  group: 'comments',
});
export const BlockComment = createToken({
  name: 'BlockComment',
  pattern: /\/\*[\s\S]*?\*\//,
  group: 'comments',
  line_breaks: true,
});
/** `/*` with no `*\/` anywhere after it: the rest of the file is the comment (HOOP1002). */
export const UnterminatedBlockComment = createToken({
  name: 'UnterminatedBlockComment',
  pattern: /\/\*[\s\S]*/,
  group: 'comments',
  line_breaks: true,
});

export const StringLiteral = createToken({
  name: 'StringLiteral',
  pattern: /"(?:[^"\\\r\n]|\\[^\r\n])*"/,
  label: 'a string',
});
/** A string cut off by the end of the line (HOOP1002); parsed as a string so recovery is local. */
export const UnterminatedString = createToken({
  name: 'UnterminatedString',
  pattern: /"(?:[^"\\\r\n]|\\[^\r\n])*\\?/,
  categories: [StringLiteral],
});

/** 'single quoted': not a string in .hoop; lexed as one so the error is one clear diagnostic. */
export const SingleQuotedString = createToken({
  name: 'SingleQuotedString',
  pattern: /'(?:[^'\\\r\n]|\\[^\r\n])*'/,
  categories: [StringLiteral],
});

export const Cel = createToken({
  name: 'Cel',
  pattern: /`[^`]*`/,
  line_breaks: true,
  label: 'a CEL expression in backticks',
});
/** A backtick with no closing backtick anywhere after it; taken to the end of its line (HOOP1006). */
export const UnterminatedCel = createToken({
  name: 'UnterminatedCel',
  pattern: /`[^`\r\n]*/,
  categories: [Cel],
});

export const Identifier = createToken({
  name: 'Identifier',
  pattern: /[A-Za-z_][A-Za-z0-9_]*/,
  categories: [NameTok, KindTok],
  label: 'a name',
});

/** `200ms`, `15m`, `30s`, `2h`, `1d`; any digits-then-letters run is lexed here and validated later (HOOP1005). */
export const Duration = createToken({
  name: 'Duration',
  // A leading `-` is lexed too, so `-5s` is one token and gets "a duration must be positive".
  pattern: /-?\d+[A-Za-z_][A-Za-z0-9_]*/,
  label: 'a duration such as 15m',
});
export const NumberLiteral = createToken({
  name: 'NumberLiteral',
  pattern: /-?\d+(?:\.\d+)?(?:[eE][+-]?\d+)?/,
  longer_alt: Duration,
  label: 'a number',
});

const punct = (name: string, pattern: string): TokenType =>
  createToken({ name, pattern, label: `\`${pattern}\`` });

export const LBrace = punct('LBrace', '{');
export const RBrace = punct('RBrace', '}');
export const LParen = punct('LParen', '(');
export const RParen = punct('RParen', ')');
export const LBracket = punct('LBracket', '[');
export const RBracket = punct('RBracket', ']');
export const Comma = punct('Comma', ',');
export const Colon = punct('Colon', ':');
export const Dot = punct('Dot', '.');

/** Keywords that may start the next clause of a rule body; they are not statement kinds. */
const CLAUSE_STARTERS = new Set(['on', 'when', 'match', 'if', 'allow', 'block', 'approve', 'mask', 'limit']);

const keyword = (word: string): TokenType =>
  createToken({
    name: `Kw_${word}`,
    pattern: word,
    longer_alt: Identifier,
    categories: CLAUSE_STARTERS.has(word) ? [NameTok] : [NameTok, KindTok],
    label: `\`${word}\``,
  });

export const Package = keyword('package');
export const Default = keyword('default');
export const Rule = keyword('rule');
export const Test = keyword('test');
export const On = keyword('on');
export const When = keyword('when');
export const Match = keyword('match');
export const If = keyword('if');
export const Allow = keyword('allow');
export const Block = keyword('block');
export const Approve = keyword('approve');
export const Mask = keyword('mask');
export const Limit = keyword('limit');
export const By = keyword('by');
export const Group = keyword('group');
export const Groups = keyword('groups');
export const Subject = keyword('subject');
export const Subjects = keyword('subjects');
export const Actor = keyword('actor');
export const Actors = keyword('actors');
export const Within = keyword('within');
export const Column = keyword('column');
export const Detect = keyword('detect');
export const With = keyword('with');
export const Tables = keyword('tables');
export const Sql = keyword('sql');
export const Shell = keyword('shell');
export const Identity = keyword('identity');
export const Resource = keyword('resource');
export const Context = keyword('context');
export const Estimate = keyword('estimate');
export const Expect = keyword('expect');
export const Rules = keyword('rules');
export const Message = keyword('message');
export const True = keyword('true');
export const False = keyword('false');
export const Null = keyword('null');

const KEYWORDS: TokenType[] = [
  Package, Default, Rule, Test, On, When, Match, If, Allow, Block, Approve, Mask, Limit, By, Group, Groups,
  Subject, Subjects, Actor, Actors, Within, Column, Detect, With, Tables, Sql, Shell, Identity,
  Resource, Context, Estimate, Expect, Rules, Message, True, False, Null,
];

/** Every keyword's spelling (for docs and for the formatter's "needs no quoting" checks). */
export const KEYWORD_WORDS: readonly string[] = KEYWORDS.map((t) => t.PATTERN as string);

/**
 * Lexer order matters: comments before anything starting with `/`, terminated forms before their
 * unterminated fallbacks, keywords longest first (with `longer_alt` so `rules_x` is a name),
 * then Identifier, Number (whose `longer_alt` is Duration).
 */
export const ALL_TOKENS: TokenType[] = [
  WhiteSpace,
  LineComment,
  BlockComment,
  UnterminatedBlockComment,
  StringLiteral,
  UnterminatedString,
  SingleQuotedString,
  Cel,
  UnterminatedCel,
  ...[...KEYWORDS].sort((a, b) => (b.PATTERN as string).length - (a.PATTERN as string).length),
  Identifier,
  NumberLiteral,
  Duration,
  LBrace, RBrace, LParen, RParen, LBracket, RBracket, Comma, Colon, Dot,
  NameTok,
  KindTok,
];
