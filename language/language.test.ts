// Unit tests of the public helpers: rendering, suggestions, set-level defaults, never-throw.

import { describe, expect, it } from 'vitest';
import {
  checkPolicySet, diagnosticsToJson, didYouMean, effectiveDefault, format, parse, renderDiagnostics, suggest,
} from './index.ts';

describe('renderDiagnostics', () => {
  it('prints file:line:col, severity and code, an excerpt underlining the whole span, help and notes', () => {
    const text = 'rule a {\n  match sql selec, delet\n  allow\n}\nrule a { block }\n';
    const { diagnostics } = parse(text, 'p.hoop');
    const out = renderDiagnostics(diagnostics, { 'p.hoop': text });
    expect(out).toBe(
      [
        'p.hoop:2:13: error[HOOP2001]: unknown statement kind `selec`',
        '  |',
        '2 |   match sql selec, delet',
        '  |             ^^^^^',
        '  = help: did you mean `select`?',
        '',
        'p.hoop:2:20: error[HOOP2001]: unknown statement kind `delet`',
        '  |',
        '2 |   match sql selec, delet',
        '  |                    ^^^^^',
        '  = help: did you mean `delete`?',
        '',
        'p.hoop:5:6: error[HOOP2005]: duplicate rule name `a`',
        '  |',
        '5 | rule a { block }',
        '  |      ^',
        '  = help: rule names are unique within a package; rename one of them',
        '  = note: first defined here: p.hoop:1:6',
        '',
        '3 errors',
        '',
      ].join('\n'),
    );
  });

  it('underlines a multi-line span to the end of its first line', () => {
    const text = 'rule a {\n  block\n  mask detect email,\n    phone with redact\n}\n';
    const { diagnostics } = parse(text, 'p.hoop');
    expect(diagnostics.map((d) => [d.code, d.span.startLine, d.span.endLine])).toEqual([['HOOP2011', 3, 4]]);
    expect(renderDiagnostics(diagnostics, { 'p.hoop': text })).toContain('3 |   mask detect email,\n  |   ^^^^^^^^^^^^^^^^^^\n');
  });

  it('renders without an excerpt when the source is not given, and nothing for no diagnostics', () => {
    const { diagnostics } = parse('rule a {}', 'p.hoop');
    expect(renderDiagnostics(diagnostics, new Map())).toBe(
      'p.hoop:1:6: error[HOOP2006]: rule `a` has no effect\n= help: add `allow`, `block`, `approve by group "..."`, a `mask` or a `limit` line; a rule without an effect is ignored\n\n1 error\n',
    );
    expect(renderDiagnostics([], {})).toBe('');
  });

  it('has a JSON form, sorted by file and position', () => {
    const b = parse('rule x {}', 'b.hoop').diagnostics;
    const a = parse('rule y {\n  match sql selec\n  allow\n}', 'a.hoop').diagnostics;
    expect(diagnosticsToJson([...b, ...a])).toEqual([
      {
        code: 'HOOP2001', severity: 'error', message: 'unknown statement kind `selec`', help: 'did you mean `select`?',
        file: 'a.hoop', line: 2, column: 13, endLine: 2, endColumn: 18, related: [],
      },
      {
        code: 'HOOP2006', severity: 'error', message: 'rule `x` has no effect',
        help: 'add `allow`, `block`, `approve by group "..."`, a `mask` or a `limit` line; a rule without an effect is ignored',
        file: 'b.hoop', line: 1, column: 6, endLine: 1, endColumn: 7, related: [],
      },
    ]);
  });
});

describe('suggestions', () => {
  it('suggests close names only', () => {
    expect(suggest('selec', ['select', 'insert'])).toBe('select');
    expect(suggest('SELECT', ['select'])).toBe('select');
    expect(suggest('updaet', ['update', 'delete'])).toBe('update');
    expect(suggest('xyz', ['select', 'insert'])).toBeUndefined();
    expect(didYouMean('credit_crad', ['credit_card', 'email'])).toBe('did you mean `credit_card`?');
  });
});

describe('set-level defaults', () => {
  const file = (text: string, name: string) => parse(text, name).ast;
  it('is block when nothing is said or when any file says block', () => {
    expect(effectiveDefault([]).effect).toBe('block');
    expect(effectiveDefault([file('default allow', 'a'), file('default allow', 'b')]).effect).toBe('allow');
    expect(effectiveDefault([file('default allow', 'a'), file('default block "m"', 'b')]).effect).toBe('block');
    expect(effectiveDefault([file('default allow', 'a'), file('default block "m"', 'b')]).decl?.message?.value).toBe('m');
  });
  it('does not warn when files agree', () => {
    expect(checkPolicySet([file('default allow', 'a'), file('default allow', 'b')])).toEqual([]);
  });
});

describe('never throws', () => {
  it.each(['', '\u0000', '}}}}', 'rule', 'rule {', 'test', '"', '`', '/*', 'rule a { on', 'default', 'package .', '{'.repeat(200)])(
    'parse and format of %j return values',
    (text) => {
      const p = parse(text, 'x.hoop');
      expect(Array.isArray(p.diagnostics)).toBe(true);
      expect(p.ast.kind).toBe('PolicyFile');
      const f = format(text, 'x.hoop');
      expect(f.text === undefined ? f.diagnostics.length > 0 : typeof f.text === 'string').toBe(true);
    },
  );
  it('formats an empty file to an empty file', () => {
    expect(format('', 'x.hoop')).toEqual({ text: '', diagnostics: [] });
    expect(format('// only a comment\n', 'x.hoop').text).toBe('// only a comment\n');
  });
});

describe('line endings', () => {
  it('formats CRLF and CR input to the same LF output, with lines counted the same', () => {
    const lf = 'rule a { // c\n  match sql selec\n  allow\n}\n';
    const crlf = lf.replace(/\n/g, '\r\n');
    const cr = lf.replace(/\n/g, '\r');
    for (const text of [crlf, cr]) {
      const d = parse(text, 'x.hoop').diagnostics;
      expect(d.map((x) => [x.code, x.span.startLine, x.span.startColumn])).toEqual([['HOOP2001', 2, 13]]);
    }
    const ok = 'rule a { // c\n  match sql select\n  allow\n}\n';
    expect(format(ok.replace(/\n/g, '\r\n'), 'x.hoop').text).toBe(format(ok, 'x.hoop').text);
    expect(format(ok.replace(/\n/g, '\r'), 'x.hoop').text).toBe(format(ok, 'x.hoop').text);
  });
});
