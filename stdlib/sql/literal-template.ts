// Statements that differ only in their literal values (`pgbench -M simple`, agents and scripts
// that inline values instead of binding parameters) have the same normalised text and the same
// fingerprint. Computing those costs two more libpg-query passes per new text, so they are shared
// through a template: the text with each literal replaced by a marker of its token class.
//
// Sharing is only sound when the literals are exactly what libpg-query's normaliser replaces. So a
// template is used for a text only if (a) it has no construct this scanner does not follow (dollar
// quotes, comments, escape-string prefixes, odd number tokens: those texts are simply computed),
// and (b) the first text of a template proved it: its normalised text is the template with $1..$n
// in place of the literals, character for character. A later text with the same template differs
// only inside literal tokens of the same class at the same places, so the grammar reads it the same
// way and the normaliser and the fingerprint (which ignores constants) give the same answers.

export interface LiteralTemplate {
  /** The text with each literal replaced by NUL + its class (`i` integer, `f` other number, `s` string). */
  key: string;
  /** The text with the literals replaced by $1, $2, ... in order: what normalisation must give. */
  numbered: string;
}

const INT32_MAX = 2147483647;

function isIdentChar(c: number): boolean {
  return (c >= 0x30 && c <= 0x39) || (c >= 0x41 && c <= 0x5a) || (c >= 0x61 && c <= 0x7a) || c === 0x5f || c >= 0x80;
}

function isDigit(c: number): boolean {
  return c >= 0x30 && c <= 0x39;
}

/**
 * Where a quoted run that starts at `start` ends (the index after its closing quote), the quote
 * doubled inside it standing for itself, as in SQL strings and quoted identifiers; -1 when the text
 * ends first.
 */
function afterQuoted(text: string, start: number): number {
  const quote = text.charCodeAt(start);
  let i = start + 1;
  while (i < text.length) {
    if (text.charCodeAt(i) !== quote) i++;
    else if (text.charCodeAt(i + 1) === quote) i += 2;
    else return i + 1;
  }
  return -1;
}

/** The template of `text`, or null when it has no literal or anything this scanner does not follow. */
export function literalTemplate(text: string): LiteralTemplate | null {
  // Constructs that would need a full lexer: leave those texts to libpg-query.
  if (text.includes('$') || text.includes('--') || text.includes('/*') || text.includes('\u0000')) return null;
  let key = '';
  let numbered = '';
  let from = 0; // start of the verbatim run not yet copied
  let count = 0;
  const n = text.length;
  let i = 0;
  while (i < n) {
    const c = text.charCodeAt(i);
    if (c === 0x22) {
      // "quoted identifier" ("" inside): verbatim.
      i = afterQuoted(text, i);
      if (i < 0) return null;
      continue;
    }
    const prev = i > 0 ? text.charCodeAt(i - 1) : 0;
    let end = -1;
    let cls = '';
    if (c === 0x27) {
      // 'string' ('' inside). A prefix glued to the quote (E'', B'', X'', N'', U&'') changes its meaning.
      if (isIdentChar(prev) || prev === 0x26) return null;
      end = afterQuoted(text, i);
      if (end < 0) return null;
      // Adjacent string constants across a newline are one constant in SQL: not followed here.
      if (/^\s*\n\s*'/.test(text.slice(end, end + 64))) return null;
      cls = 's';
    } else if ((isDigit(c) || (c === 0x2e && isDigit(text.charCodeAt(i + 1)))) && !isIdentChar(prev) && prev !== 0x2e) {
      let j = i;
      while (j < n && isDigit(text.charCodeAt(j))) j++;
      let float = false;
      if (text.charCodeAt(j) === 0x2e && text.charCodeAt(j + 1) !== 0x2e) {
        float = true;
        j++;
        while (j < n && isDigit(text.charCodeAt(j))) j++;
      }
      const e = text.charCodeAt(j);
      if (e === 0x65 || e === 0x45) {
        let k = j + 1;
        if (text.charCodeAt(k) === 0x2b || text.charCodeAt(k) === 0x2d) k++;
        if (!isDigit(text.charCodeAt(k))) return null;
        while (k < n && isDigit(text.charCodeAt(k))) k++;
        float = true;
        j = k;
      }
      // 0x1F, 1_000, 12abc, 1.2.3: not followed.
      if (j < n && (isIdentChar(text.charCodeAt(j)) || text.charCodeAt(j) === 0x2e)) return null;
      end = j;
      cls = float || Number(text.slice(i, j)) > INT32_MAX ? 'f' : 'i';
    }
    if (end < 0) {
      i++;
      continue;
    }
    const verbatim = text.slice(from, i);
    count++;
    key += verbatim + '\u0000' + cls;
    numbered += verbatim + '$' + count;
    from = end;
    i = end;
  }
  if (count === 0) return null;
  const rest = text.slice(from);
  return { key: key + rest, numbered: numbered + rest };
}
