// SSH gateway benchmark (issue 10 "Speed"), against a real OpenSSH sshd on 127.0.0.1 and the
// `hoop gateway` CLI in its own process (state directory on this machine's disk), one run,
// interleaved:
//   - `true` round trip over an open connection, a new exec channel each time: direct vs through
//     the gateway; target: added p50 ≤ 2 ms;
//   - a large `cat` read to the end (1 GiB; 128 MiB with --quick): direct vs the gateway allow-all
//     vs the gateway with `mask detect credit_card, api_key` on; targets ≥ 0.5× and ≥ 0.25× direct.
// CPU per request comes from /proc for the gateway process (and from the client's own counters).
//
//   npx tsx bench/ssh.bench.ts [--json] [--quick]
//   BENCH_GATEWAY_NODE_FLAGS="--cpu-prof --cpu-prof-dir=/tmp/prof" npx tsx bench/ssh.bench.ts --quick

import { spawn, type ChildProcess } from 'node:child_process';
import { mkdirSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { join, resolve } from 'node:path';
import ssh2 from 'ssh2';
import { openDevIssuer } from '../proxy/identity/index.ts';
import { freePort } from '../testing/pg-cluster.ts';
import { startSshd, type Sshd } from '../testing/sshd.ts';
import { treeCpuSeconds } from './proc-cpu.ts';
import { percentile } from './support.ts';

const args = new Set(process.argv.slice(2));
const json = args.has('--json');
const quick = args.has('--quick');
const EXECS = quick ? 60 : 300;
const CHUNK_MIB = quick ? 32 : 256;
const CHUNKS = 4;
const ROUNDS = 2;
const repo = resolve(import.meta.dirname, '..');

const ALLOW = `package bench
default block "no rule allows this"

rule run {
  on ssh
  match shell ["true", "cat"]
  allow
}
`;
const MASKED = `${ALLOW}
rule mask_secrets {
  on ssh
  mask detect credit_card, api_key with redact
}
`;

interface SshGateway {
  name: string;
  port: number;
  pid: number;
  token: string;
  stop(): Promise<void>;
}

const progress = (s: string) => {
  if (!json) process.stderr.write(`${s}\n`);
};

/** `hoop gateway --config hoop.yaml` with only the SSH front door, state under `state`. */
async function startSshGateway(sshd: Sshd, name: string, policy: string, state: string): Promise<SshGateway> {
  mkdirSync(join(state, 'policies'), { recursive: true });
  writeFileSync(join(state, 'policies', 'bench.hoop'), policy);
  const issuer = await openDevIssuer(join(state, 'issuer'));
  const port = await freePort();
  const adminPort = await freePort();
  // The PostgreSQL front door listens by default; on a port of its own here (no postgres resource).
  const pgPort = await freePort();
  const config = join(state, 'hoop.yaml');
  writeFileSync(
    config,
    `listen:
  postgres: 127.0.0.1:${pgPort}
  ssh: 127.0.0.1:${port}
  admin: 127.0.0.1:${adminPort}
identity:
  issuer: ${issuer.issuer}
  audience: ${issuer.audience}
  jwks_file: ${issuer.jwksFile}
  algorithms: [ES256]
  max_token_ttl: 2h
resources:
  - name: box
    kind: ssh
    upstream: ssh://${sshd.user}@127.0.0.1:${sshd.port}
    key_file: ${sshd.clientKeyFile}
    host_key: "${sshd.hostKey}"
policy: ./policies
state: ./state
`,
  );
  // BENCH_GATEWAY_NODE_FLAGS="--cpu-prof --cpu-prof-dir=/tmp/prof" profiles the gateway processes.
  const flags = (process.env.BENCH_GATEWAY_NODE_FLAGS ?? '').split(' ').filter(Boolean);
  const child = spawn(process.execPath, [...flags, '--import', 'tsx', join(repo, 'cli', 'main.ts'), 'gateway', '--config', config], { cwd: repo, stdio: ['ignore', 'ignore', 'pipe'] });
  let log = '';
  await new Promise<void>((res, rej) => {
    child.stderr!.on('data', (d) => {
      log += d.toString();
      if (log.includes('ssh on')) res();
    });
    child.once('exit', (code) => rej(new Error(`hoop gateway exited (${code}): ${log}`)));
  });
  const token = await issuer.mint({ sub: 'bench', groups: ['ops'], ttlMs: 7_000_000 });
  return { name, port, pid: child.pid!, token, stop: () => stopChild(child) };
}

function stopChild(child: ChildProcess): Promise<void> {
  return new Promise((res) => {
    if (child.exitCode !== null) return res();
    child.once('exit', () => res());
    child.kill('SIGTERM');
  });
}

function connect(opts: ssh2.ConnectConfig): Promise<ssh2.Client> {
  return new Promise((res, rej) => {
    const c = new ssh2.Client();
    c.once('ready', () => res(c)).once('error', rej).connect({ host: '127.0.0.1', readyTimeout: 30_000, ...opts });
  });
}

/** Runs `command` on a new exec channel; resolves with the bytes of stdout once the channel closes. */
function exec(c: ssh2.Client, command: string): Promise<{ bytes: number; code: number | null }> {
  return new Promise((res, rej) => {
    c.exec(command, (err, ch) => {
      if (err) return rej(err);
      let bytes = 0;
      let code: number | null = null;
      ch.on('data', (d: Buffer) => (bytes += d.length));
      ch.stderr.resume();
      ch.once('exit', (c: number | null) => (code = c));
      ch.once('close', () => res({ bytes, code }));
    });
  });
}

interface Side {
  name: string;
  client: ssh2.Client;
  pid?: number;
}

async function main(): Promise<void> {
  mkdirSync(join(repo, '.bench-state'), { recursive: true });
  const root = mkdtempSync(join(repo, '.bench-state', 'ssh-'));
  const sshd = await startSshd();
  const gateways: SshGateway[] = [];
  try {
    // A text file of random base64 lines (what masking must scan), read CHUNKS times per `cat`.
    progress(`writing a ${CHUNK_MIB} MiB sample file on the upstream ...`);
    const file = join(sshd.scratch, 'sample.txt');
    sshd.ssh(`head -c ${Math.round((CHUNK_MIB * 1024 * 1024 * 3) / 4)} /dev/urandom | base64 -w 76 > ${file}`);
    const catCommand = `cat ${Array(CHUNKS).fill(file).join(' ')}`;

    const allow = await startSshGateway(sshd, 'gateway allow-all', ALLOW, join(root, 'allow'));
    gateways.push(allow);
    const masked = await startSshGateway(sshd, 'gateway mask detect', MASKED, join(root, 'masked'));
    gateways.push(masked);
    const privateKey = readFileSync(sshd.clientKeyFile);
    const direct: Side = { name: 'direct', client: await connect({ port: sshd.port, username: sshd.user, privateKey }) };
    const through = (g: SshGateway) => connect({ port: g.port, username: 'box', password: g.token }).then((client): Side => ({ name: g.name, client, pid: g.pid }));
    const viaAllow = await through(allow);
    const viaMasked = await through(masked);

    // 1. exec round trips, alternating direct and gateway so both see the same machine.
    progress(`exec round trips: ${EXECS} each, interleaved ...`);
    for (let i = 0; i < 10; i++) {
      await exec(direct.client, 'true');
      await exec(viaAllow.client, 'true');
    }
    const rtt: Record<string, number[]> = { direct: [], gateway: [] };
    const cpu0 = treeCpuSeconds(allow.pid);
    for (let i = 0; i < EXECS; i++) {
      for (const [key, side] of [['direct', direct], ['gateway', viaAllow]] as const) {
        const t0 = process.hrtime.bigint();
        const r = await exec(side.client, 'true');
        rtt[key]!.push(Number(process.hrtime.bigint() - t0) / 1e6);
        if (r.code !== 0) throw new Error(`${side.name}: true exited ${r.code}`);
      }
    }
    const execCpuUs = ((treeCpuSeconds(allow.pid) - cpu0) * 1e6) / EXECS;
    const p50 = { direct: percentile(rtt.direct!, 50), gateway: percentile(rtt.gateway!, 50) };

    // 2. throughput of one large cat, each side ROUNDS times, interleaved.
    const expected = CHUNKS * Number(sshd.ssh(`stat -c %s ${file}`).trim());
    const mibps: Record<string, number[]> = { direct: [], allow: [], masked: [] };
    const cpuPerMiB: Record<string, number[]> = { allow: [], masked: [] };
    for (let round = 0; round < ROUNDS; round++) {
      for (const [key, side] of [['direct', direct], ['allow', viaAllow], ['masked', viaMasked]] as const) {
        progress(`cat ${(expected / 2 ** 20).toFixed(0)} MiB: ${side.name} (round ${round + 1}/${ROUNDS}) ...`);
        const c0 = side.pid ? treeCpuSeconds(side.pid) : 0;
        const t0 = process.hrtime.bigint();
        const r = await exec(side.client, catCommand);
        const s = Number(process.hrtime.bigint() - t0) / 1e9;
        // Masking redacts in place, so the byte count may differ there only.
        if (key !== 'masked' && r.bytes !== expected) throw new Error(`${side.name}: ${r.bytes} bytes, expected ${expected}`);
        mibps[key]!.push(r.bytes / 2 ** 20 / s);
        if (side.pid) cpuPerMiB[key]!.push(((treeCpuSeconds(side.pid) - c0) * 1e3) / (r.bytes / 2 ** 20));
      }
    }
    for (const s of [direct, viaAllow, viaMasked]) s.client.end();

    const best = (xs: number[]) => Math.max(...xs);
    const ratio = { allow: best(mibps.allow!) / best(mibps.direct!), masked: best(mibps.masked!) / best(mibps.direct!) };
    const added = p50.gateway - p50.direct;
    const targets = {
      execAddedP50Ms: { value: added, target: 2, ok: added <= 2 },
      throughputAllow: { value: ratio.allow, target: 0.5, ok: ratio.allow >= 0.5 },
      throughputMasked: { value: ratio.masked, target: 0.25, ok: ratio.masked >= 0.25 },
    };
    const report = {
      execs: EXECS,
      exec_p50_ms: p50,
      exec_p99_ms: { direct: percentile(rtt.direct!, 99), gateway: percentile(rtt.gateway!, 99) },
      gateway_cpu_us_per_exec: execCpuUs,
      cat_bytes: expected,
      cat_mib_per_s: mibps,
      gateway_cpu_ms_per_mib: cpuPerMiB,
      targets,
    };
    if (json) {
      process.stdout.write(`${JSON.stringify(report, null, 2)}\n`);
      return;
    }
    const f = (n: number, d = 2) => n.toFixed(d);
    const verdict = (ok: boolean) => (ok ? 'met' : 'MISSED');
    process.stdout.write(
      [
        `exec 'true' over an open connection (${EXECS} each, interleaved)`,
        `  direct   p50 ${f(p50.direct)} ms  p99 ${f(report.exec_p99_ms.direct)} ms`,
        `  gateway  p50 ${f(p50.gateway)} ms  p99 ${f(report.exec_p99_ms.gateway)} ms  (gateway CPU ${f(execCpuUs, 0)} µs per exec)`,
        `cat of ${f(expected / 2 ** 20, 0)} MiB of text (best of ${ROUNDS})`,
        `  direct              ${f(best(mibps.direct!), 0)} MiB/s`,
        `  gateway allow-all   ${f(best(mibps.allow!), 0)} MiB/s  ${f(ratio.allow)}×  (gateway CPU ${f(Math.min(...cpuPerMiB.allow!))} ms per MiB)`,
        `  gateway mask detect ${f(best(mibps.masked!), 0)} MiB/s  ${f(ratio.masked)}×  (gateway CPU ${f(Math.min(...cpuPerMiB.masked!))} ms per MiB)`,
        `target exec added p50 ≤ 2 ms:             ${f(added)} ms  ${verdict(targets.execAddedP50Ms.ok)}`,
        `target throughput allow-all ≥ 0.5× direct: ${f(ratio.allow)}×  ${verdict(targets.throughputAllow.ok)}`,
        `target throughput masked ≥ 0.25× direct:   ${f(ratio.masked)}×  ${verdict(targets.throughputMasked.ok)}`,
        '',
      ].join('\n'),
    );
  } finally {
    for (const g of gateways) await g.stop();
    await sshd.stop();
    rmSync(root, { recursive: true, force: true });
  }
}

await main();
