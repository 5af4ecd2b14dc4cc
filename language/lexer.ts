// The lexer: text → tokens, comments and lexical diagnostics.
//
// One Lexer instance is built at module load (building it validates the token set; with
// `ensureOptimizations` it throws if a token would defeat the first-character optimisation).

import { Lexer, type IToken } from 'chevrotain';
import type { Comment, Span } from './ast.ts';
import type { Diagnostic } from './diagnostics.ts';
import { ALL_TOKENS, UnterminatedBlockComment } from './tokens.ts';

export const hoopLexer = new Lexer(ALL_TOKENS, {
  ensureOptimizations: true,
  positionTracking: 'full',
});

/** Line breaks as the lexer counts them (Chevrotain's default: \n, \r\n and a lone \r). */
export const LINE_BREAK = /\r\n?|\n/;

export interface LexResult {
  tokens: IToken[];
  comments: Comment[];
  diagnostics: Diagnostic[];
}

/** The span from `first`'s start to `last`'s end (Chevrotain's ends are inclusive; ours are exclusive). */
export function tokensSpan(file: string, first: IToken, last: IToken): Span {
  return {
    file,
    startOffset: first.startOffset,
    endOffset: (last.endOffset ?? last.startOffset) + 1,
    startLine: first.startLine ?? 1,
    startColumn: first.startColumn ?? 1,
    endLine: last.endLine ?? last.startLine ?? 1,
    endColumn: (last.endColumn ?? last.startColumn ?? 1) + 1,
  };
}

export function tokenSpan(file: string, tok: IToken): Span {
  return tokensSpan(file, tok, tok);
}

export function lex(text: string, file: string): LexResult {
  const result = hoopLexer.tokenize(text);
  const diagnostics: Diagnostic[] = [];
  for (const err of result.errors) {
    const bad = text.slice(err.offset, err.offset + err.length);
    const startLine = err.line ?? 1;
    const startColumn = err.column ?? 1;
    diagnostics.push({
      code: 'HOOP1003',
      severity: 'error',
      message:
        err.length === 1
          ? `unexpected character \`${bad}\``
          : `unexpected characters \`${bad.length > 20 ? bad.slice(0, 20) + '…' : bad}\``,
      help: bad.startsWith("'")
        ? 'strings are double-quoted: "like this"'
        : 'remove it; comments start with // or /*',
      span: {
        file,
        startOffset: err.offset,
        endOffset: err.offset + err.length,
        startLine,
        startColumn,
        endLine: startLine,
        endColumn: startColumn + err.length,
      },
      related: [],
    });
  }
  const comments: Comment[] = [];
  for (const tok of result.groups.comments ?? []) {
    const span = tokenSpan(file, tok);
    comments.push({ kind: 'Comment', text: tok.image, span });
    if (tok.tokenType === UnterminatedBlockComment) {
      diagnostics.push({
        code: 'HOOP1002',
        severity: 'error',
        message: 'unterminated block comment',
        help: 'close it with */',
        span: { ...span, endOffset: span.startOffset + 2, endLine: span.startLine, endColumn: span.startColumn + 2 },
        related: [],
      });
    }
  }
  return { tokens: result.tokens, comments, diagnostics };
}
