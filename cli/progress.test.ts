import { describe, expect, it } from 'vitest';
import { createProgress } from './progress.ts';

function stream(isTTY: boolean) {
  const s = { isTTY, text: '', write(chunk: string) { s.text += chunk; return true; } };
  return s;
}

describe('progress on stderr', () => {
  it('redraws one bar in place on a terminal and clears it at the end', () => {
    const s = stream(true);
    const p = createProgress('dry-run', { stream: s as unknown as NodeJS.WriteStream, env: {}, intervalMs: 0 });
    p.update({ done: 1, total: 4, detail: '10 statements' });
    p.update({ done: 4, total: 4, detail: '40 statements' });
    p.finish('40 statements, 0 changed');
    expect(s.text).toBe(
      '\rdry-run [########......................] 1/4 files, 10 statements\u001b[K' +
        '\rdry-run [##############################] 4/4 files, 40 statements\u001b[K' +
        '\r\u001b[Kdry-run: 40 statements, 0 changed\n',
    );
  });

  it('writes plain lines in CI even on a terminal, at most one per interval until done', () => {
    const s = stream(true);
    const p = createProgress('dry-run', { stream: s as unknown as NodeJS.WriteStream, env: { CI: 'true' }, intervalMs: 60_000 });
    p.update({ done: 0, total: 3, detail: '0 statements' });
    p.update({ done: 1, total: 3, detail: '5 statements' }); // within the interval: dropped
    p.update({ done: 3, total: 3, detail: '9 statements' }); // done: always shown
    p.finish('9 statements');
    expect(s.text).toBe('dry-run: 0/3 files, 0 statements\ndry-run: 3/3 files, 9 statements\ndry-run: 9 statements\n');
  });
});
