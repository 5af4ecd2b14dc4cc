// Golden tests over language/fixtures/.
//
//   <construct>/*.hoop  must parse without diagnostics; snapshots: the AST without spans
//                       (`.ast.json`) and the formatted text (`.fmt.hoop`), which must be a
//                       fixed point of the formatter.
//   _error_/*.hoop      snapshots: the rendered diagnostics (`.diagnostics.txt`) and the partial
//                       AST; formatting must be refused.
//   _set_/<case>/       a multi-file policy set; snapshot of parse + checkPolicySet diagnostics.
//
// Update snapshots with `npx vitest run language -u` and review the diff.

import { readdirSync, readFileSync, statSync } from 'node:fs';
import { basename, join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { describe, expect, it } from 'vitest';
import { checkPolicySet, format, parse, renderDiagnostics, stripSpans, type Diagnostic, type PolicyFile } from './index.ts';

const root = fileURLToPath(new URL('./fixtures/', import.meta.url));
const snap = (dir: string, file: string) => join(root, dir, '__snapshots__', file);
const hoopFiles = (dir: string) => readdirSync(join(root, dir)).filter((f) => f.endsWith('.hoop')).sort();
const dirs = readdirSync(root).filter((d) => statSync(join(root, d)).isDirectory()).sort();
const json = (v: unknown) => JSON.stringify(v, null, 2) + '\n';

for (const dir of dirs.filter((d) => !d.startsWith('_'))) {
  describe(`fixtures/${dir}`, () => {
    for (const f of hoopFiles(dir)) {
      it(f, async () => {
        const text = readFileSync(join(root, dir, f), 'utf8');
        const { ast, diagnostics } = parse(text, f);
        expect(renderDiagnostics(diagnostics, { [f]: text })).toBe('');
        await expect(json(stripSpans(ast))).toMatchFileSnapshot(snap(dir, f.replace(/\.hoop$/, '.ast.json')));
        const formatted = format(text, f);
        expect(formatted.diagnostics).toEqual([]);
        const out = formatted.text as string;
        await expect(out).toMatchFileSnapshot(snap(dir, f.replace(/\.hoop$/, '.fmt.hoop')));
        expect(format(out, f).text).toBe(out);
        expect(stripSpans(parse(out, f).ast)).toEqual(stripSpans(ast));
        expect(parse(out, f).ast.comments.map((c) => c.text.trimEnd()).sort()).toEqual(ast.comments.map((c) => c.text.trimEnd()).sort());
      });
    }
  });
}

describe('fixtures/_error_', () => {
  for (const f of hoopFiles('_error_')) {
    it(f, async () => {
      const text = readFileSync(join(root, '_error_', f), 'utf8');
      const { ast, diagnostics } = parse(text, f);
      expect(diagnostics.some((d) => d.severity === 'error')).toBe(true);
      await expect(renderDiagnostics(diagnostics, { [f]: text })).toMatchFileSnapshot(snap('_error_', f.replace(/\.hoop$/, '.diagnostics.txt')));
      await expect(json(stripSpans(ast))).toMatchFileSnapshot(snap('_error_', f.replace(/\.hoop$/, '.ast.json')));
      const formatted = format(text, f);
      expect(formatted.text).toBeUndefined();
      expect(formatted.diagnostics).toEqual(diagnostics);
    });
  }
});

describe('fixtures/_set_', () => {
  for (const set of readdirSync(join(root, '_set_')).filter((d) => d !== '__snapshots__').sort()) {
    it(set, async () => {
      const sources: Record<string, string> = {};
      const files: PolicyFile[] = [];
      const diags: Diagnostic[] = [];
      for (const f of hoopFiles(join('_set_', set))) {
        const name = `${set}/${f}`;
        sources[name] = readFileSync(join(root, '_set_', set, f), 'utf8');
        const parsed = parse(sources[name], name);
        files.push(parsed.ast);
        diags.push(...parsed.diagnostics);
      }
      diags.push(...checkPolicySet(files));
      await expect(renderDiagnostics(diags, sources)).toMatchFileSnapshot(snap('_set_', `${basename(set)}.diagnostics.txt`));
    });
  }
});
