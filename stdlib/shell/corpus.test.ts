import { beforeAll, describe, expect, it } from 'vitest';
import type { ShellClassifier } from '../facts.ts';
import { HIDDEN } from './corpus.ts';
import { loadShellClassifier } from './index.ts';

let shell: ShellClassifier;
beforeAll(async () => {
  shell = await loadShellClassifier();
});

describe('shell lines that hide a program', () => {
  it('has a corpus of at least 50 lines', () => {
    expect(HIDDEN.length).toBeGreaterThanOrEqual(50);
  });

  it.each(HIDDEN.filter(([, p]) => p !== null).map(([text, program]) => ({ text, program })))(
    '$text exposes $program',
    ({ text, program }) => {
      const a = shell.classify(text);
      expect(a.programs).toContain(program);
      expect(a.invocations.map((i) => i.program)).toContain(program);
    },
  );

  it.each(HIDDEN.filter(([, p]) => p === null).map(([text]) => text))('%s is unknown', (text) => {
    const a = shell.classify(text);
    expect(a.kind).toBe('unknown');
    expect(a.reason).toBeTruthy();
  });
});
