import { beforeAll, describe, expect, it } from 'vitest';
import type { ShellClassifier } from '../facts.ts';
import { loadShellClassifier } from './index.ts';

let shell: ShellClassifier;
beforeAll(async () => {
  shell = await loadShellClassifier();
});

describe('shell classifier', () => {
  it('lists every program of a pipeline with its literal arguments', () => {
    const a = shell.classify('cat /var/log/syslog | grep -i error | tail -n 5');
    expect(a.kind).toBe('command');
    expect(a.programs).toEqual(['cat', 'grep', 'tail']);
    expect(a.invocations).toEqual([
      { program: 'cat', args: ['/var/log/syslog'] },
      { program: 'grep', args: ['-i', 'error'] },
      { program: 'tail', args: ['-n', '5'] },
    ]);
    expect(a.args).toEqual(['/var/log/syslog', '-i', 'error', '-n', '5']);
    expect(a.redirects).toEqual([]);
    expect(a.dynamic).toBe(false);
  });

  it('collects write redirections but not /dev/null or descriptor duplication', () => {
    const a = shell.classify('ls > out.txt 2>/dev/null 2>&1; echo x >> log; df &> all');
    expect(a.redirects).toEqual(['out.txt', 'log', 'all']);
  });

  it('is unknown on a parse error', () => {
    const a = shell.classify('ls | | grep');
    expect(a.kind).toBe('unknown');
    expect(a.reason).toMatch(/does not parse/);
  });

  it('is unknown and dynamic when the program name is not a literal', () => {
    const a = shell.classify('$CMD /etc/passwd');
    expect(a.kind).toBe('unknown');
    expect(a.dynamic).toBe(true);
  });

  it('decodes quoting in program names and strips paths', () => {
    expect(shell.classify(`/bin/r""m -rf x`).programs).toEqual(['rm']);
    expect(shell.classify(`\\rm x`).programs).toEqual(['rm']);
    expect(shell.classify(`'r'm x`).programs).toEqual(['rm']);
    expect(shell.classify(`$'\\x72m' x`).programs).toEqual(['rm']);
  });
});
