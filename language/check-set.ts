// Checks across the files of one policy set that need nothing but the ASTs: duplicate rule and
// test names within a package, `expect rules [...]` naming a rule that does not exist, and
// conflicting defaults. (Per-file checks live in cst-to-ast.ts; name checks against the stdlib —
// maskers, detectors — and CEL belong to the engine.)
//
// Names: a rule's fully qualified name is `package.rule` (just `rule` in the root package). In a
// test, `expect rules [x]` resolves `x` in the test's own package first, then as a fully
// qualified name.

import type { DefaultDecl, PolicyFile, Rule, TestCase } from './ast.ts';
import type { Diagnostic } from './diagnostics.ts';
import { didYouMean } from './fuzzy.ts';

export function qualify(pkg: string, name: string): string {
  return pkg === '' ? name : `${pkg}.${name}`;
}

export function packageOf(file: PolicyFile): string {
  return file.package?.value ?? '';
}

/** Looks up a rule name as written in a test of package `pkg`; undefined when it names no rule. */
export function resolveRuleName(name: string, pkg: string, qualifiedNames: ReadonlySet<string>): string | undefined {
  const local = qualify(pkg, name);
  if (qualifiedNames.has(local)) return local;
  if (qualifiedNames.has(name)) return name;
  return undefined;
}

/** The set's default: block if any file says block (or none says anything), allow only if all that speak say allow. */
export function effectiveDefault(files: readonly PolicyFile[]): { effect: 'allow' | 'block'; decl?: DefaultDecl } {
  const decls = files.map((f) => f.default).filter((d): d is DefaultDecl => d !== undefined);
  const block = decls.find((d) => d.effect === 'block');
  if (block) return { effect: 'block', decl: block };
  if (decls.length > 0) return { effect: 'allow', decl: decls[0] };
  return { effect: 'block' };
}

interface Occurrence<T> {
  file: string;
  item: T;
}

/**
 * For each later occurrence of a name, one diagnostic — but only for the first occurrence in each
 * other file: repeats within one file are already reported by `parse`.
 */
function crossFileDuplicates<T>(
  groups: Map<string, Occurrence<T>[]>,
  make: (dup: T, first: T) => Diagnostic,
): Diagnostic[] {
  const out: Diagnostic[] = [];
  for (const occ of groups.values()) {
    if (occ.length < 2) continue;
    const first = occ[0];
    const reportedFiles = new Set([first.file]);
    for (const o of occ.slice(1)) {
      if (reportedFiles.has(o.file)) continue;
      reportedFiles.add(o.file);
      out.push(make(o.item, first.item));
    }
  }
  return out;
}

/** `did you mean \`other.pkg.x\`?` when `x` exists, but in another package. */
function elsewhere(name: string, qualified: ReadonlySet<string>): string | undefined {
  const hits = [...qualified].filter((q) => q.endsWith(`.${name}`)).sort();
  return hits.length > 0 ? `did you mean \`${hits[0]}\`? (rules of other packages are written with their package)` : undefined;
}

export function checkPolicySet(files: readonly PolicyFile[]): Diagnostic[] {
  const diags: Diagnostic[] = [];

  // Rule names, unique within a package.
  const rules = new Map<string, Occurrence<Rule>[]>();
  const tests = new Map<string, Occurrence<TestCase>[]>();
  for (const f of files) {
    const pkg = packageOf(f);
    for (const r of f.rules) {
      const key = qualify(pkg, r.name.value);
      rules.set(key, [...(rules.get(key) ?? []), { file: f.file, item: r }]);
    }
    for (const t of f.tests) {
      const key = `${pkg}\u0000${t.name.value}`;
      tests.set(key, [...(tests.get(key) ?? []), { file: f.file, item: t }]);
    }
  }
  diags.push(
    ...crossFileDuplicates(rules, (dup, first) => ({
      code: 'HOOP2005',
      severity: 'error',
      message: `duplicate rule name \`${dup.name.value}\``,
      help: 'rule names are unique within a package; rename one of them or use another `package`',
      span: dup.name.span,
      related: [{ message: 'first defined here', span: first.name.span }],
    })),
    ...crossFileDuplicates(tests, (dup, first) => ({
      code: 'HOOP4004',
      severity: 'error',
      message: `duplicate test name ${JSON.stringify(dup.name.value)}`,
      help: 'test names are unique within a package; rename one of them',
      span: dup.name.span,
      related: [{ message: 'first defined here', span: first.name.span }],
    })),
  );

  // `expect rules [...]` must name existing rules.
  const qualified = new Set(rules.keys());
  for (const f of files) {
    const pkg = packageOf(f);
    const candidates = [...new Set([...[...qualified].flatMap((q) => {
      const local = pkg !== '' && q.startsWith(`${pkg}.`) ? q.slice(pkg.length + 1) : undefined;
      return local !== undefined && !local.includes('.') ? [local, q] : [q];
    })])];
    for (const t of f.tests) {
      for (const e of t.expects) {
        if (e.kind !== 'ExpectRules') continue;
        for (const n of e.rules) {
          if (resolveRuleName(n.value, pkg, qualified) !== undefined) continue;
          diags.push({
            code: 'HOOP4001',
            severity: 'error',
            message: `test ${JSON.stringify(t.name.value)} expects rule \`${n.value}\`, which does not exist`,
            help: elsewhere(n.value, qualified) ?? didYouMean(n.value, candidates) ?? (pkg === ''
              ? 'name a rule of this policy set (use `package.rule` for a rule in another package)'
              : `rules are looked up in package \`${pkg}\` first, then as \`package.rule\``),
            span: n.span,
            related: [],
          });
        }
      }
    }
  }

  // Defaults: the set has one. Warn when files disagree; block wins.
  const decls = files.map((f) => f.default).filter((d): d is DefaultDecl => d !== undefined);
  if (decls.length > 1) {
    const winner = effectiveDefault(files).decl as DefaultDecl;
    for (const d of decls) {
      if (d === winner) continue;
      const sameEffect = d.effect === winner.effect;
      const sameMessage = d.message?.value === winner.message?.value;
      if (sameEffect && sameMessage) continue;
      diags.push({
        code: 'HOOP5001',
        severity: 'warning',
        message: sameEffect
          ? 'this file\'s `default block` message differs from another file\'s; the first is used'
          : `this file says \`default ${d.effect}\` but another says \`default ${winner.effect}\`; the set's default is block`,
        help: 'declare the default once for the whole set, e.g. in a `defaults.hoop`',
        span: d.span,
        related: [{ message: 'the default in force', span: winner.span }],
      });
    }
  }
  return diags;
}
