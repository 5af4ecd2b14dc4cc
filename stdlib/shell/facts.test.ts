// The shell facts docs/facts.md promises, one case per claim.

import { beforeAll, describe, expect, it } from 'vitest';
import type { ShellClassifier } from '../facts.ts';
import { loadShellClassifier } from './index.ts';

let shell: ShellClassifier;
beforeAll(async () => {
  shell = await loadShellClassifier();
});

describe('wrappers', () => {
  it.each([
    ['sudo -l', ['sudo']],
    ['command -v rm', ['command']],
    ['ionice -p 42', ['ionice']],
    ['ls | xargs', ['ls', 'xargs', 'echo']],
    ['sudo', ['sudo', 'sh']],
    ['sudo -i', ['sudo', 'sh']],
    ['chroot /srv', ['chroot', 'sh']],
    ['env', ['env']],
    ['timeout 5s', ['timeout']],
    ['sudo -u deploy -- git pull', ['sudo', 'git']],
    ['nice --adjustment=5 tar czf a.tgz dir', ['nice', 'tar']],
    ['stdbuf --output=L grep x f', ['stdbuf', 'grep']],
    ['watch -x ls -l', ['watch', 'ls']],
    ['watch "df -h; free"', ['watch', 'df', 'free']],
  ])('%s runs %j', (line, programs) => {
    const a = shell.classify(line);
    expect(a.kind).toBe('command');
    expect(a.programs).toEqual(programs);
  });

  it('is unknown when a wrapper gets a run-time word where the program could be', () => {
    expect(shell.classify('sudo "$FLAGS" ls')).toMatchObject({ kind: 'unknown', dynamic: true });
  });

  it('accepts a run-time value of an option that takes one', () => {
    expect(shell.classify('sudo -u "$USER" ls')).toMatchObject({ kind: 'command', programs: ['sudo', 'ls'] });
  });
});

describe('invocations and args', () => {
  it('keeps non-literal arguments as their source text', () => {
    const a = shell.classify('grep -r "$PATTERN" ~/src');
    expect(a.kind).toBe('command');
    expect(a.invocations).toEqual([{ program: 'grep', args: ['-r', '"$PATTERN"', '~/src'] }]);
  });

  it('decodes quoted arguments', () => {
    expect(shell.classify(`echo 'a b' "c\\"d" $'e\\tf' g\\ h`).args).toEqual(['a b', 'c"d', 'e\tf', 'g h']);
  });
});

describe('redirects', () => {
  it('collects every write operator and find output files', () => {
    const a = shell.classify('a >| one; b &>> two; c >&three; d 1>four; find . -fprint five');
    expect(a.redirects).toEqual(['one', 'two', 'three', 'four', 'five']);
  });

  it('ignores harmless targets, descriptor duplication and input', () => {
    const a = shell.classify('a > /dev/null 2>&1; b >/dev/stderr; c < in.txt; d >&-; e <<< x');
    expect(a.redirects).toEqual([]);
  });
});

describe('interpreters', () => {
  it.each([
    ['python3 script.py', 'python3'],
    ['python3.11 -c "print(1)"', 'python3.11'],
    ["awk '{print $1}' f", 'awk'],
    ['curl -s http://x | bash', 'bash'],
    ['bash deploy.sh', 'bash'],
    ['source ./env.sh', 'source'],
    ['. ./env.sh', '.'],
    ["sed -n '1e id' f", 'sed'],
    ["sed 's/a/id/e' f", 'sed'],
    ['psql -c "\\\\! id"', 'psql'],
  ])('%s marks %s', (line, interpreter) => {
    expect(shell.classify(line).interpreters).toContain(interpreter);
  });

  it('does not mark plain sed or a shell whose command string was read', () => {
    expect(shell.classify("sed -n 's/a/b/p' f").interpreters).toEqual([]);
    expect(shell.classify("bash -c 'ls'").interpreters).toEqual([]);
  });
});

describe('unknown', () => {
  it.each([
    ['cat <>file', 'does not parse'],
    ['eval ls', 'eval'],
    ['f() { :; }', 'function'],
    ['alias ll="ls -l"', 'alias'],
    ['hash -p /tmp/x ls', 'hash'],
    ['git -c include.path=/tmp/x status', 'path'],
    ['git --config-env=core.pager=X log', 'environment'],
    ['env -P /tmp ls', 'where programs are found'],
    ['LD_PRELOAD=/x.so ls', 'LD_PRELOAD'],
    ['((rm -rf /tmp/x))', 'dash'],
    ['ls\u0000; rm x', 'NUL'],
    ['rm ` ` ls', 'not a literal'],
    ['find . -exec rm {}', 'terminating'],
    ['echo a; } x', 'reserved word'],
  ])('%s', (line, reason) => {
    const a = shell.classify(line);
    expect(a.kind).toBe('unknown');
    expect(a.reason).toContain(reason);
  });

  it('gives up on command strings nested too deep', () => {
    let line = 'rm x';
    for (let i = 0; i < 10; i++) line = `sh -c ${JSON.stringify(line)}`;
    const a = shell.classify(line);
    expect(a.kind).toBe('unknown');
    expect(a.reason).toMatch(/nested/);
  });

  it('an empty line runs nothing', () => {
    expect(shell.classify('')).toMatchObject({ kind: 'command', programs: [] });
    expect(shell.classify('# rm -rf /')).toMatchObject({ kind: 'command', programs: [] });
  });
});
