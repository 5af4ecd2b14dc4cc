import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { execFileSync } from 'node:child_process';
import { join } from 'node:path';
import { startSshd, generateKey, type Sshd } from './sshd.ts';

describe('throwaway OpenSSH server', () => {
  let sshd: Sshd;
  beforeAll(async () => {
    sshd = await startSshd();
  });
  afterAll(async () => {
    await sshd?.stop();
  });

  it('runs commands for the generated client key and refuses any other key', () => {
    expect(sshd.ssh('echo hello; exit 0')).toBe('hello\n');
    const other = join(sshd.dir, 'other');
    generateKey(other);
    expect(() =>
      execFileSync('ssh', ['-F', '/dev/null', '-i', other, '-p', String(sshd.port), '-o', 'BatchMode=yes', '-o', 'StrictHostKeyChecking=no', '-o', 'UserKnownHostsFile=/dev/null', `${sshd.user}@127.0.0.1`, 'true'], { stdio: 'pipe' }),
    ).toThrow(/Permission denied/);
  });
});
