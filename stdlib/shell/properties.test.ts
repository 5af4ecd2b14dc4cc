import fc from 'fast-check';
import { beforeAll, describe, expect, it } from 'vitest';
import type { ShellClassifier } from '../facts.ts';
import { loadShellClassifier } from './index.ts';

let shell: ShellClassifier;
beforeAll(async () => {
  shell = await loadShellClassifier();
});

const TOKENS = [
  'ls', 'rm', '-rf', 'sudo', 'env', 'A=1', 'PATH=x', 'bash', 'sh', '-c', "'rm x'", '"$X"', '$X', '$(', ')', '`',
  '|', '||', '&&', ';', '&', '>', '>>', '2>&1', '<', '<(', '{', '}', '(', 'find', '-exec', '\\;', 'xargs',
  'eval', 'git', "-c", 'alias.x=!rm', "$'\\x72m'", 'r""m', 'if', 'then', 'fi', 'for', 'in', 'do', 'done', '\n',
];

describe('the shell classifier is total', () => {
  it('never throws on arbitrary strings', () => {
    fc.assert(fc.property(fc.string({ unit: 'binary', maxLength: 200 }), (s) => {
      const a = shell.classify(s);
      expect(['command', 'unknown']).toContain(a.kind);
      if (a.dynamic) expect(a.kind).toBe('unknown');
    }), { numRuns: 300 });
  });

  it('never throws on token soups, and rm is never silently dropped', () => {
    const soup = fc.array(fc.constantFrom(...TOKENS), { maxLength: 20 }).map((t) => t.join(' '));
    fc.assert(fc.property(soup, (s) => {
      const a = shell.classify(s);
      // A line starting with `rm` as a plain command runs rm: it must be listed, or the line unknown.
      if (s.startsWith('rm ') || s === 'rm') expect(a.kind === 'unknown' || a.programs.includes('rm')).toBe(true);
    }), { numRuns: 400 });
  });
});
