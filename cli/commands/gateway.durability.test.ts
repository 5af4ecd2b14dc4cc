// The audit log's durability promises (audit.durability, DESIGN.md "Audit durability") as a user
// sees them, through `hoop gateway --config` in its own process with its state on the machine's disk:
// - after `kill -9` of the gateway, every request a client got an answer for is in the log, and
//   `hoop audit verify` passes;
// - an fsync that fails ends the affected sessions with an error, a write's answer does not go out,
//   `/healthz` turns red and nothing more runs; under `strict` nothing runs at all;
// - a full disk (a write that fails) refuses the session and nothing runs.
//
// A real fsync failure needs a disk that fails. Without root (and without device-mapper) the
// portable way is a character device: the kernel accepts writes to /dev/null and refuses its
// fdatasync (EINVAL), so `audit.file: /dev/null` drives the production sink down exactly the path a
// disk's EIO takes. /dev/full refuses writes (ENOSPC) as a full disk does.

import { spawn, type ChildProcess } from 'node:child_process';
import { once } from 'node:events';
import { existsSync, mkdirSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import pg from 'pg';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { openDevIssuer, type DevIssuer } from '../../proxy/identity/index.ts';
import { run } from '../../proxy/postgres/test-support.ts';
import { freePort, startCluster, type Cluster } from '../../testing/pg-cluster.ts';

let cluster: Cluster;
let root: string;
let issuer: DevIssuer;
const children = new Set<ChildProcess>();

beforeAll(async () => {
  cluster = await startCluster();
  // The machine's disk, as users run it (not /dev/shm).
  root = mkdtempSync(join(tmpdir(), 'hoop-durability-'));
  issuer = await openDevIssuer(root);
  const made = await run(join(cluster.binDir, 'psql'), ['-X', '-v', 'ON_ERROR_STOP=1', '-c', 'CREATE TABLE kill_t (v int); CREATE TABLE fsync_t (v int); CREATE TABLE strict_t (v int)', cluster.appUser.url]);
  if (made.code !== 0) throw new Error(made.stderr);
});

afterAll(async () => {
  for (const c of children) c.kill('SIGKILL');
  await cluster?.stop();
  if (root) rmSync(root, { recursive: true, force: true });
});

interface Running {
  child: ChildProcess;
  port: number;
  admin: string;
  auditFile: string;
  stderr(): string;
  exited: Promise<number | null>;
}

/** `audit`: the config's `audit:` mapping; `auditFile`: its `file`, when set. */
async function startGateway(name: string, audit: string, auditFile?: string): Promise<Running> {
  const dir = join(root, name);
  mkdirSync(join(dir, 'policies'), { recursive: true });
  writeFileSync(join(dir, 'policies', 'main.hoop'), 'package t\ndefault allow\n');
  const port = await freePort();
  const adminPort = await freePort();
  writeFileSync(
    join(dir, 'hoop.yaml'),
    `listen:
  postgres: 127.0.0.1:${port}
  admin: 127.0.0.1:${adminPort}
identity:
  issuer: ${issuer.issuer}
  audience: ${issuer.audience}
  jwks_file: ${issuer.jwksFile}
  algorithms: [ES256]
resources:
  - name: prod-main
    upstream: postgres://127.0.0.1:${cluster.port}/app
    user_env: TEST_PG_USER
    password_env: TEST_PG_PASSWORD
policy: ./policies
state: ./state
audit: ${audit}
`,
  );
  const child = spawn(process.execPath, ['--import', 'tsx', join(process.cwd(), 'cli/main.ts'), 'gateway', '--config', join(dir, 'hoop.yaml')], {
    env: { ...process.env, TEST_PG_USER: cluster.appUser.user, TEST_PG_PASSWORD: cluster.appUser.password },
    stdio: ['ignore', 'ignore', 'pipe'],
  });
  children.add(child);
  let stderr = '';
  child.stderr!.on('data', (d) => (stderr += d.toString()));
  const exited = new Promise<number | null>((r) => child.once('exit', (code) => (children.delete(child), r(code))));
  while (!stderr.includes('postgres on')) {
    const line = await Promise.race([once(child.stderr!, 'data'), exited.then(() => undefined)]);
    if (line === undefined) throw new Error(`hoop gateway exited: ${stderr}`);
  }
  return { child, port, admin: `http://127.0.0.1:${adminPort}`, auditFile: auditFile ?? join(dir, 'state', 'audit.jsonl'), stderr: () => stderr, exited };
}

const clientConfig = (g: Running, token: string) => ({ host: '127.0.0.1', port: g.port, user: 'agent-7', password: token, database: 'prod-main' });
const psqlVia = (g: Running, token: string, sql: string) =>
  run(join(cluster.binDir, 'psql'), ['-X', '-At', '-v', 'ON_ERROR_STOP=1', '-c', sql, `host=127.0.0.1 port=${g.port} dbname=prod-main user=agent-7 password=${token} sslmode=disable`]);
const direct = async (sql: string) => (await run(join(cluster.binDir, 'psql'), ['-X', '-At', '-c', sql, cluster.appUser.url])).stdout.trim();

describe.each(['commit', 'async'])('audit.durability %s: kill -9 of the gateway', (mode) => {
  it('loses no record of an answered request, and the chain verifies', async () => {
    const g = await startGateway(`kill-${mode}`, `{ durability: ${mode} }`);
    const token = await issuer.mint({ sub: 'agent-7', groups: ['writer'] });
    // Four sessions write and read concurrently; each statement names itself (an alias survives
    // normalisation), and what a client got an answer for is noted the moment it arrives.
    const answered: string[] = [];
    let killed = false;
    const gone = new Promise<void>((resolve) => {
      const work = async (c: number): Promise<void> => {
        const client = new pg.Client(clientConfig(g, token));
        client.on('error', () => undefined);
        await client.connect();
        for (let i = 0; !killed; i++) {
          const tag = `c${c}_${i}`;
          const sql = i % 2 === 0 ? `INSERT INTO kill_t VALUES (${i}) RETURNING v AS w_${tag}` : `SELECT ${i} AS r_${tag}`;
          try {
            await client.query(sql);
          } catch {
            return; // the gateway is gone
          }
          if (killed) return;
          answered.push(i % 2 === 0 ? `w_${tag}` : `r_${tag}`);
          if (answered.length >= 60) {
            // Right after a client got its answer: no chance for anything to be flushed later.
            killed = true;
            g.child.kill('SIGKILL');
            resolve();
          }
        }
      };
      for (let c = 0; c < 4; c++) void work(c).catch(() => undefined);
    });
    await gone;
    expect(await g.exited).toBeNull();
    const records = readFileSync(g.auditFile, 'utf8')
      .split('\n')
      .filter((l) => l !== '')
      .map((l) => JSON.parse(l) as { type: string; outcome?: string; statement?: { normalized: string } });
    const executed = records.filter((r) => r.type === 'decision' && r.outcome === 'executed').map((r) => r.statement!.normalized);
    const missing = answered.filter((tag) => !executed.some((n) => new RegExp(`\\b${tag}\\b`).test(n)));
    expect(missing, `answered but not in the audit log after kill -9 (durability ${mode})`).toEqual([]);
    const verify = await run(process.execPath, ['--import', 'tsx', join(process.cwd(), 'cli/main.ts'), 'audit', 'verify', g.auditFile]);
    expect(verify, verify.stdout + verify.stderr).toMatchObject({ code: 0, stdout: expect.stringContaining('chain intact') });
  });
});

describe('an fsync that fails', () => {
  it('commit: the write is not answered, every session with a record in doubt ends, /healthz is red and nothing more runs', async () => {
    if (!existsSync('/dev/null')) throw new Error('this test needs /dev/null (Linux)');
    // A long max_delay: only the write's own fsync (which starts at once) syncs during the test;
    // through the thread pool, so it overlaps the statement's execution as on a slow disk.
    const g = await startGateway('fsync-commit', '{ file: /dev/null, durability: commit, max_delay: 10s, sync: thread_pool }', '/dev/null');
    const token = await issuer.mint({ sub: 'agent-7', groups: ['writer'] });
    expect(await (await fetch(`${g.admin}/healthz`)).json()).toMatchObject({ status: 'ok' });
    // A reader: its SELECT is answered once its record is written (reads do not wait for an fsync).
    const reader = new pg.Client(clientConfig(g, token));
    const readerError = new Promise<Error>((r) => reader.on('error', r));
    await reader.connect();
    expect((await reader.query('SELECT 41 + 1 AS n')).rows).toEqual([{ n: 42 }]);

    // A write: forwarded once its record is written, answered only once it is on disk. Its fsync fails.
    const write = await psqlVia(g, token, 'INSERT INTO fsync_t VALUES (1)');
    expect(write.code).not.toBe(0);
    expect(write.stdout).not.toContain('INSERT');
    expect(write.stderr).toContain('hoop: the audit log could not be made durable (fsync failed); the session is ended');
    // It ran upstream (its fsync overlapped its execution), but the client was never told it succeeded.
    expect(await direct('SELECT count(*) FROM fsync_t')).toBe('1');

    // The reader's records are in doubt too: its session ends with the same error.
    expect(await readerError).toMatchObject({ code: '58030', message: expect.stringContaining('could not be made durable') });
    const health = await fetch(`${g.admin}/healthz`);
    expect(health.status).toBe(503);
    expect(await health.json()).toMatchObject({ status: expect.not.stringMatching(/^ok$/), checks: { audit: expect.stringMatching(/fsync failed \(EINVAL\): records 1–\d+ may not be on disk/) } });
    expect(await (await fetch(`${g.admin}/metrics`)).text()).toContain('hoop_audit_healthy 0');

    // Nothing more runs until the gateway is restarted.
    const after = await psqlVia(g, token, 'INSERT INTO fsync_t VALUES (2)');
    expect(after.stderr).toContain('hoop: the audit log could not be written; the session was not opened');
    expect(await direct('SELECT count(*) FROM fsync_t')).toBe('1');
    g.child.kill('SIGTERM');
    await g.exited;
  });

  it('strict: nothing runs, since every record must be on disk before its request is forwarded', async () => {
    const g = await startGateway('fsync-strict', '{ file: /dev/null, durability: strict }', '/dev/null');
    const token = await issuer.mint({ sub: 'agent-7', groups: ['writer'] });
    const write = await psqlVia(g, token, 'INSERT INTO strict_t VALUES (1)');
    expect(write.code).not.toBe(0);
    expect(write.stderr).toContain('hoop: the audit log could not be written');
    expect(await direct('SELECT count(*) FROM strict_t')).toBe('0');
    expect((await fetch(`${g.admin}/healthz`)).status).toBe(503);
    g.child.kill('SIGTERM');
    await g.exited;
  });
});

describe('a full disk', () => {
  it('refuses the session (the audit write fails) and nothing runs; /healthz says why', async () => {
    if (!existsSync('/dev/full')) throw new Error('this test needs /dev/full (Linux)');
    const g = await startGateway('full-disk', '{ file: /dev/full }', '/dev/full');
    const token = await issuer.mint({ sub: 'agent-7', groups: ['writer'] });
    const write = await psqlVia(g, token, 'INSERT INTO strict_t VALUES (2)');
    expect(write.stderr).toContain('hoop: the audit log could not be written; the session was not opened');
    expect(await direct('SELECT count(*) FROM strict_t')).toBe('0');
    const health = await fetch(`${g.admin}/healthz`);
    expect(health.status).toBe(503);
    expect(await health.json()).toMatchObject({ checks: { audit: expect.stringContaining('ENOSPC') } });
    g.child.kill('SIGTERM');
    await g.exited;
  });
});
