// The literal value of a shell word, as bash would pass it to a program after quote removal —
// or null when the value depends on run time (expansions, substitutions).
//
// `r""m`, `\rm`, `'r'm`, `$'\x72m'` and `"rm"` are all `rm`. A word whose unquoted part holds a
// glob or brace pattern (`/bin/r?`, `{rm,-rf,/}`) is literal text but expands to something else,
// so it is flagged `expands`: in program position that makes the name dynamic.

import type { Node } from 'web-tree-sitter';

export interface WordValue {
  /** The literal value, or null when it depends on expansion at run time. */
  value: string | null;
  /** An unquoted part contains a glob, brace or tilde pattern that bash would expand. */
  expands: boolean;
}

const GLOB = /[*?[]|\{[^}]*(,|\.\.)[^}]*\}|^~/;

export function wordValue(node: Node): WordValue {
  const parts: string[] = [];
  let expands = false;
  let literal = true;
  let unquoted = ''; // unquoted text seen so far, to detect patterns spanning pieces: `{` `rm,-rf` `}`
  const visit = (n: Node): void => {
    switch (n.type) {
      case 'word':
      case 'number':
      case 'variable_name': {
        parts.push(unescapeUnquoted(n.text));
        unquoted += n.text;
        return;
      }
      case 'raw_string':
        parts.push(n.text.slice(1, -1));
        return;
      case 'ansi_c_string':
        parts.push(decodeAnsiC(n.text.slice(2, -1)));
        return;
      case 'translated_string':
        // `$"..."`: a locale-translated double-quoted string; its value is the string's.
        for (const c of n.namedChildren) if (c !== null) visit(c);
        return;
      case 'string': {
        for (const c of n.children) {
          if (c === null || c.type === '"') continue; // the delimiters (an inner `"` is part of string_content)
          if (c.type === 'string_content') parts.push(unescapeDouble(c.text));
          else if (!c.isNamed) parts.push(c.text); // a literal `$` the grammar keeps as a token ("$'x'")
          else literal = false;
        }
        return;
      }
      case 'concatenation':
        for (const c of n.children) if (c !== null) visit(c);
        return;
      default:
        // Anything else — an expansion, a substitution, or an anonymous token the grammar glued
        // into a word (tree-sitter-bash reads "rm ` ` ls" as one word) — is not a literal.
        literal = false;
    }
  };
  visit(node);
  if (GLOB.test(unquoted)) expands = true;
  return { value: literal ? parts.join('') : null, expands };
}

/** Outside quotes a backslash quotes the next character; backslash-newline disappears. */
function unescapeUnquoted(s: string): string {
  return s.indexOf('\\') < 0 ? s : s.replace(/\\(\n|.)/g, (_, c: string) => (c === '\n' ? '' : c));
}

/** Inside double quotes a backslash only escapes $ ` " \ and newline. */
function unescapeDouble(s: string): string {
  return s.indexOf('\\') < 0 ? s : s.replace(/\\([$`"\\\n])/g, (_, c: string) => (c === '\n' ? '' : c));
}

const SIMPLE_ESCAPES: Record<string, string> = {
  a: '\x07', b: '\b', e: '\x1b', E: '\x1b', f: '\f', n: '\n', r: '\r', t: '\t', v: '\v',
  '\\': '\\', "'": "'", '"': '"', '?': '?',
};

/** Bash `$'...'` escapes (bash(1) QUOTING). */
export function decodeAnsiC(s: string): string {
  let out = '';
  for (let i = 0; i < s.length; i++) {
    const ch = s[i]!;
    if (ch !== '\\' || i + 1 >= s.length) {
      out += ch;
      continue;
    }
    const n = s[i + 1]!;
    if (SIMPLE_ESCAPES[n] !== undefined) {
      out += SIMPLE_ESCAPES[n];
      i += 1;
    } else if (n === 'x') {
      const m = /^[0-9a-fA-F]{1,2}/.exec(s.slice(i + 2));
      if (m) {
        out += String.fromCharCode(parseInt(m[0], 16));
        i += 1 + m[0].length;
      } else {
        out += '\\x';
        i += 1;
      }
    } else if (n === 'u' || n === 'U') {
      const m = (n === 'u' ? /^[0-9a-fA-F]{1,4}/ : /^[0-9a-fA-F]{1,8}/).exec(s.slice(i + 2));
      if (m && parseInt(m[0], 16) <= 0x10ffff) {
        out += String.fromCodePoint(parseInt(m[0], 16));
        i += 1 + m[0].length;
      } else {
        out += `\\${n}`;
        i += 1;
      }
    } else if (/[0-7]/.test(n)) {
      const m = /^[0-7]{1,3}/.exec(s.slice(i + 1))!;
      out += String.fromCharCode(parseInt(m[0], 8) & 0xff);
      i += m[0].length;
    } else if (n === 'c' && i + 2 < s.length) {
      out += String.fromCharCode(s.charCodeAt(i + 2) & 0x1f);
      i += 2;
    } else {
      out += `\\${n}`;
      i += 1;
    }
  }
  return out;
}

/** The program a name runs: the path is stripped (`/usr/bin/rm` → `rm`). */
export function programName(value: string): string {
  const slash = value.lastIndexOf('/');
  return slash >= 0 ? value.slice(slash + 1) : value;
}
