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

describe('programs hidden by composition', () => {
  const WRAPPERS = [
    'sudo', 'sudo -u root', 'env', 'env -i A=1', 'timeout 5', 'timeout -s KILL 5', 'nice -n 5', 'nohup', 'exec',
    'command', 'builtin', 'time', 'stdbuf -o0', 'ionice -c 3', 'setsid', 'xargs', 'xargs -n 1', 'doas', 'chroot /',
  ];
  const SPELLINGS = ['rm', '\\rm', "'rm'", '"rm"', 'r""m', "r''m", "$'\\x72m'", '/bin/rm', './rm', "\"r\"'m'"];
  const CONTEXTS: ((cmd: string) => string)[] = [
    (c) => c,
    (c) => `ls | ${c}`,
    (c) => `true && ${c}`,
    (c) => `( ${c} )`, // spaced: `((` and `$((` are arithmetic, tested on their own
    (c) => `{ ${c}; }`,
    (c) => `echo $( ${c} )`,
    (c) => `echo \`${c}\``,
    (c) => `cat <( ${c} )`,
    (c) => `bash -c ${JSON.stringify(c)}`,
    (c) => `sh -c '${c.replace(/'/g, `'\\''`)}'`,
    (c) => `find . -exec ${c} {} \\;`,
    (c) => `if true; then ${c}; fi`,
  ];

  it('rm behind any chain of wrappers, spellings and contexts is exposed or unknown', () => {
    fc.assert(fc.property(
      fc.array(fc.constantFrom(...WRAPPERS), { maxLength: 4 }),
      fc.constantFrom(...SPELLINGS),
      fc.array(fc.nat({ max: CONTEXTS.length - 1 }), { maxLength: 3 }),
      (wrappers, spelling, contexts) => {
        let line = [...wrappers, spelling, '-rf', '/tmp/x'].join(' ');
        for (const i of contexts) line = CONTEXTS[i]!(line);
        const a = shell.classify(line);
        expect(a.kind === 'unknown' || a.programs.includes('rm'), line).toBe(true);
      },
    ), { numRuns: 400 });
  });
});
