// Glob matching for names in policies: `*` matches any run of characters (including none and
// including `.`), `?` matches exactly one character, everything else matches itself,
// case-sensitively. Used by the engine's selectors (resource names, subjects, actors, tables) and
// by the CEL `glob(text, pattern)` function, so both agree on one meaning.
//
// The matcher is the classic two-pointer algorithm with a single backtrack point: O(n·m) in the
// worst case and no regular-expression engine involved, so an attacker-chosen name (a table in a
// statement, a subject in a token) cannot make matching slow.

/** A compiled glob: a predicate specialised to the pattern's shape. */
export type GlobMatcher = (text: string) => boolean;

/** True when the pattern contains no wildcard (it then matches only itself). */
export function isLiteralGlob(pattern: string): boolean {
  return !pattern.includes('*') && !pattern.includes('?');
}

/** Whether `text` matches `pattern` (see the module comment for the syntax). */
export function globMatch(pattern: string, text: string): boolean {
  let p = 0;
  let t = 0;
  let starP = -1;
  let starT = 0;
  while (t < text.length) {
    const pc = p < pattern.length ? pattern.charCodeAt(p) : -1;
    if (pc === 42 /* * */) {
      starP = p++;
      starT = t;
    } else if (pc === 63 /* ? */ || (pc >= 0 && pc === text.charCodeAt(t))) {
      p++;
      t++;
    } else if (starP >= 0) {
      p = starP + 1;
      t = ++starT;
    } else {
      return false;
    }
  }
  while (p < pattern.length && pattern.charCodeAt(p) === 42) p++;
  return p === pattern.length;
}

/**
 * Compile a glob into the cheapest predicate for its shape: equality for a literal, a prefix or
 * suffix test for `abc*` / `*abc`, the general matcher otherwise.
 */
export function compileGlob(pattern: string): GlobMatcher {
  if (pattern === '*') return () => true;
  if (isLiteralGlob(pattern)) return (text) => text === pattern;
  const body = pattern.slice(0, -1);
  if (pattern.endsWith('*') && isLiteralGlob(body)) return (text) => text.startsWith(body);
  const tail = pattern.slice(1);
  if (pattern.startsWith('*') && isLiteralGlob(tail)) return (text) => text.endsWith(tail);
  return (text) => globMatch(pattern, text);
}
