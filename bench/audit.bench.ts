// What an audit record costs the gateway (proxy/audit): sealing one (canonical JSON + SHA-256
// chaining), and the CPU per record of `beforeForward` (seal + one write per event-loop turn, fsync
// by group commit) with the log on the machine's disk and on tmpfs, eight concurrent writers as in
// the gateway bench, reads (no fsync waited for) and writes (each answer waits for its fsync).
//
//   npx tsx bench/audit.bench.ts [--json] [--quick]

import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { sealRecord } from '../proxy/audit/chain.ts';
import { openAuditLog } from '../proxy/audit/sink.ts';
import type { AuditRecordInput } from '../proxy/ports.ts';
import { filesystemOf, MEMORY_FILESYSTEMS } from './proxies.ts';

const args = process.argv.slice(2);
const json = args.includes('--json');
const quick = args.includes('--quick');
const SEALS = quick ? 50_000 : 200_000;
const RECORDS = quick ? 4_000 : 20_000;

const token = Object.freeze({ jti: 'b7c1f0e2', iss: 'urn:hoop:dev-issuer' });
const identity = Object.freeze({ sub: 'agent-7', groups: Object.freeze(['data-reader']) as string[] });
const resource = Object.freeze({ kind: 'postgres', name: 'bench' });

/** A decision record as the gateway builds one (by assignment; session parts frozen), for a new statement text. */
function decision(i: number): AuditRecordInput {
  const r: AuditRecordInput = { type: 'decision', session_id: 'f1c9b6a2-5d1e-4c2a-9c53-0d7e3b9a4f10', token, identity, resource, client_addr: '127.0.0.1' };
  r.statement = Object.freeze({ fingerprint: `5d1e4c2a9c53${i % 10}`, normalized: 'SELECT abalance FROM pgbench_accounts WHERE aid = $1', kind: 'select' });
  r.verdict = 'allow';
  r.rules = ['bench.default'];
  r.masks = [];
  r.outcome = 'executed';
  return r;
}

const cpuUs = (): number => {
  const u = process.cpuUsage();
  return u.user + u.system;
};

function sealCost(): number {
  const recs = Array.from({ length: 1000 }, (_, i) => decision(i) as unknown as Record<string, unknown>);
  let prev = '0'.repeat(64);
  for (let i = 0; i < 20_000; i++) prev = sealRecord(recs[i % 1000]!, i, '2026-12-03T00:00:00.000Z', prev).hash;
  const t0 = cpuUs();
  for (let i = 0; i < SEALS; i++) prev = sealRecord(recs[i % 1000]!, i, '2026-12-03T00:00:00.000Z', prev).hash;
  return (cpuUs() - t0) / SEALS;
}

/** CPU per record of eight writers appending through `beforeForward` (and, for changes, waiting for `beforeAnswer`). */
async function logCost(dir: string, changes: boolean): Promise<{ cpu_us_per_record: number; fsyncs_per_1000: number }> {
  const d = mkdtempSync(join(dir, 'hoop-audit-bench-'));
  const log = await openAuditLog(join(d, 'audit.jsonl'));
  let syncs = 0;
  let durable = 0;
  const writer = async (w: number): Promise<void> => {
    for (let i = w; i < RECORDS; i += 8) {
      const seq = await log.beforeForward(decision(i), { changes });
      const wait = changes ? log.beforeAnswer(seq) : undefined;
      if (wait) await wait;
      if (log.durableSeq > durable) {
        durable = log.durableSeq;
        syncs++;
      }
    }
  };
  const t0 = cpuUs();
  await Promise.all(Array.from({ length: 8 }, (_, w) => writer(w)));
  const cpu = cpuUs() - t0;
  await log.close();
  rmSync(d, { recursive: true, force: true });
  return { cpu_us_per_record: Number((cpu / RECORDS).toFixed(1)), fsyncs_per_1000: Number(((syncs * 1000) / RECORDS).toFixed(0)) };
}

const diskDir = MEMORY_FILESYSTEMS.has(filesystemOf(tmpdir()).type) ? join(import.meta.dirname, '..') : tmpdir();
const seal = sealCost();
const report = {
  seal_us: Number(seal.toFixed(2)),
  disk: { filesystem: filesystemOf(diskDir).type, reads: await logCost(diskDir, false), writes: await logCost(diskDir, true) },
  tmpfs: { reads: await logCost('/dev/shm', false), writes: await logCost('/dev/shm', true) },
};
if (json) process.stdout.write(JSON.stringify(report, null, 2) + '\n');
else {
  process.stdout.write(`sealRecord (canonical JSON + SHA-256): ${report.seal_us} µs CPU per record\n`);
  for (const [where, r] of [[`disk (${report.disk.filesystem})`, report.disk], ['tmpfs', report.tmpfs]] as const) {
    process.stdout.write(`${where.padEnd(12)} reads: ${r.reads.cpu_us_per_record} µs CPU per record (fsyncs seen per 1000: ${r.reads.fsyncs_per_1000}); writes, answer after fsync: ${r.writes.cpu_us_per_record} µs (fsyncs per 1000: ${r.writes.fsyncs_per_1000})\n`);
  }
}
