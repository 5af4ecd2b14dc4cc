// `hoop demo` (and `npm start`): the whole product on one laptop in a few seconds.
//
//   PGlite (embedded PostgreSQL) seeded with examples/demo/seed.sql, served on loopback
//   → the gateway (listen.postgres), deciding with examples/policies/
//   → tokens from the development issuer (its JWKS is the gateway's identity.jwks_file)
//   → the admin API (approvals, /metrics, /healthz) and the MCP front door (/mcp)
//   → the SSH front door (listen.ssh) in front of `bastion-1`, a small ssh2 server of the demo's
//     own with sample files (demo-ssh-upstream.ts), logged in with a key only the gateway holds
//
// It prints ready-to-paste psql lines for a reader and for a DBA, statements that show each
// verdict, ssh lines for an ops agent (one per verdict), and the `hoop approvals` commands.
// PGlite runs one statement at a time for all sessions and does not support COPY FROM STDIN:
// fine for a demo, not for benchmarks.

import type { Command } from 'commander';
import { randomBytes } from 'node:crypto';
import { existsSync, mkdirSync, readFileSync, writeFileSync } from 'node:fs';
import { createServer } from 'node:net';
import { dirname, join, relative, resolve } from 'node:path';
import { fileURLToPath } from 'node:url';
import { parseConfig, renderConfigErrors, type GatewayConfig } from '../../proxy/config.ts';
import { openDevIssuer } from '../../proxy/identity/dev-issuer.ts';
import { untilStopSignal } from '../signals.ts';
import { startDemoSshUpstream } from './demo-ssh-upstream.ts';

const ROOT = resolve(dirname(fileURLToPath(import.meta.url)), '..', '..');

export interface DemoOptions {
  /** State directory (dev issuer key, approvals, audit log, recordings). */
  state: string;
  /** Gateway port (0: any free port). */
  port: number;
  adminPort: number;
  /** The gateway's SSH port (0 or omitted: any free port). */
  sshPort?: number;
  policy?: string;
  log?: (line: string) => void;
}

export interface DemoInfo {
  postgresPort: number;
  adminUrl: string;
  /** The MCP front door (Streamable HTTP) on the admin address. */
  mcpUrl: string;
  resource: string;
  readerToken: string;
  /** bob: groups dba and sre (approves the reader's writes and the ops agent's restarts). */
  dbaToken: string;
  /** The SSH front door and its resource, a machine the demo runs (demo-ssh-upstream.ts). */
  sshPort: number;
  sshResource: string;
  /** agent-9, group ops, acting for alice: the ssh persona. */
  opsToken: string;
  /** A known_hosts file pinning the gateway's SSH host key, for the printed ssh lines. */
  knownHostsFile: string;
  sshHostKey: string;
  /** The folder the demo box runs commands in (its sample files). */
  sshScratch: string;
  state: string;
  policy: string;
  auditFile: string;
  sessionsDir: string;
}

export interface Demo {
  info: DemoInfo;
  close(): Promise<void>;
}

export async function startDemo(opts: DemoOptions): Promise<Demo> {
  const log = opts.log ?? ((l: string) => process.stderr.write(`hoop demo: ${l}\n`));
  const state = resolve(opts.state);
  mkdirSync(state, { recursive: true });
  const closers: (() => Promise<void>)[] = [];
  const closeAll = async () => {
    for (const c of closers.reverse()) await c().catch(() => undefined);
  };
  try {
    // 1. The upstream: PGlite, seeded, served on loopback.
    const { PGlite } = await import('@electric-sql/pglite');
    const { PGLiteSocketServer } = await import('@electric-sql/pglite-socket');
    // A data directory in the state folder: initdb runs once, later starts take seconds.
    // The sample data is re-seeded on every start so each run begins from the same rows.
    const db = new PGlite(join(state, 'pgdata'));
    await db.exec(readFileSync(join(ROOT, 'examples', 'demo', 'seed.sql'), 'utf8'));
    closers.push(() => db.close());
    const upstreamPort = await freePort();
    const upstream = new PGLiteSocketServer({ db, host: '127.0.0.1', port: upstreamPort, maxConnections: 64 });
    await upstream.start();
    closers.push(() => upstream.stop());

    // The SSH upstream: a machine with sample files (one holding a fake AWS key and a test card).
    const box = await startDemoSshUpstream();
    closers.push(() => box.close());

    // 2. The development issuer and the configuration (validated like a real hoop.yaml).
    const issuer = await openDevIssuer(state);
    const policy = resolve(opts.policy ?? join(ROOT, 'examples', 'policies'));
    const port = opts.port === 0 ? await freePort() : opts.port;
    const adminPort = opts.adminPort === 0 ? await freePort() : opts.adminPort;
    const sshPort = !opts.sshPort ? await freePort() : opts.sshPort;
    const parsed = parseConfig(
      {
        listen: { postgres: `127.0.0.1:${port}`, admin: `127.0.0.1:${adminPort}`, ssh: `127.0.0.1:${sshPort}` },
        identity: { issuer: issuer.issuer, audience: issuer.audience, jwks_file: issuer.jwksFile, algorithms: ['ES256'], max_token_ttl: '1h' },
        resources: [
          { name: 'prod-main', kind: 'postgres', upstream: `postgres://127.0.0.1:${upstreamPort}/postgres`, user_env: 'HOOP_DEMO_USER', labels: { env: 'demo' } },
          // The gateway holds the key (agents never see it) and pins the box's host key.
          { name: 'bastion-1', kind: 'ssh', upstream: `ssh://${box.user}@${box.host}:${box.port}`, key_env: 'HOOP_DEMO_SSH_KEY', host_key: box.hostKey, labels: { env: 'demo' } },
        ],
        policy,
        state,
        approvals: { mode: 'hold', timeout: '15m' },
        masking: { hash_key_env: 'HOOP_DEMO_HASH_KEY' },
      },
      { env: { HOOP_DEMO_USER: 'postgres', HOOP_DEMO_HASH_KEY: demoHashKey(state), HOOP_DEMO_SSH_KEY: box.clientPrivateKey }, file: join(state, 'hoop.yaml') },
    );
    if (!parsed.ok) throw new Error(`internal error: demo config invalid:\n${renderConfigErrors('demo', parsed.errors)}`);
    const config: GatewayConfig = parsed.config;

    // 3. The gateway, its admin API and the services they share.
    // Imported here: the gateway pulls in the classifier, engine and masking; other commands need none of it.
    const { runGateway } = await import('../../proxy/run.ts');
    const run = await runGateway(config, { log });
    if (!run.ok) throw new Error(`the gateway did not start:\n${run.errors.join('\n')}`);
    const { gateway, admin, ssh } = run.running;
    closers.push(() => run.running.close());
    if (!ssh) throw new Error('internal error: the demo gateway has no SSH front door');
    // The gateway's host key lives in the state directory (the same across runs); the port may not.
    const knownHostsFile = join(state, 'known_hosts');
    writeFileSync(knownHostsFile, `[127.0.0.1]:${ssh.listener.port} ${ssh.hostKey}\n`);

    // 4. Tokens for the three personas.
    const readerToken = await issuer.mint({ sub: 'agent-7', groups: ['data-reader'], actor: 'alice', ttlMs: 30 * 60_000 });
    const dbaToken = await issuer.mint({ sub: 'bob', groups: ['dba', 'sre'], ttlMs: 30 * 60_000 });
    const opsToken = await issuer.mint({ sub: 'agent-9', groups: ['ops'], actor: 'alice', ttlMs: 30 * 60_000 });

    return {
      info: {
        postgresPort: gateway.postgresPort,
        adminUrl: admin!.url,
        mcpUrl: `${admin!.url}/mcp`,
        resource: 'prod-main',
        readerToken,
        dbaToken,
        sshPort: ssh.listener.port,
        sshResource: 'bastion-1',
        opsToken,
        knownHostsFile,
        sshHostKey: ssh.hostKey,
        sshScratch: box.scratch,
        state,
        policy,
        auditFile: config.audit.file,
        sessionsDir: config.recording.dir,
      },
      close: closeAll,
    };
  } catch (err) {
    await closeAll();
    throw err;
  }
}

/** The `hash` masker's key, kept in the state directory so hashed values stay stable across runs. */
function demoHashKey(state: string): string {
  const file = join(state, 'demo-hash-key');
  if (!existsSync(file)) writeFileSync(file, randomBytes(32).toString('hex') + '\n', { mode: 0o600 });
  return readFileSync(file, 'utf8').trim();
}

export function renderDemoInstructions(i: DemoInfo): string {
  const conn = (token: string) => `psql "host=127.0.0.1 port=${i.postgresPort} dbname=${i.resource} user=agent sslmode=disable password=${token}"`;
  const hoop = 'npm run -s hoop --';
  const rel = (p: string) => {
    const r = relative(process.cwd(), p);
    return r && !r.startsWith('..') ? r : p;
  };
  return `
hoop demo is running: an embedded PostgreSQL with customers and orders (emails, cards, SSNs),
behind the gateway on 127.0.0.1:${i.postgresPort}, deciding with ${rel(i.policy)}.

1. Connect as a reader agent (agent-7, group data-reader, acting for alice):

   ${conn(i.readerToken)}

   Then try each verdict:
     mask     SELECT id, name, email, card_number, ssn FROM customers;
     allow    EXPLAIN SELECT * FROM orders;
     block    DELETE FROM customers;
     approve  UPDATE orders SET status = 'refunded' WHERE id = 3;
              (psql waits: the statement is held until a DBA decides; the notice shows its id)

2. In another terminal, approve it as a DBA (bob, groups dba and sre), in the browser:

   export HOOP_TOKEN=${i.dbaToken}
   ${hoop} approvals open --admin ${i.adminUrl}      (prints a one-time sign-in link to ${i.adminUrl}/ui/)

   or on the command line:

   ${hoop} approvals list --admin ${i.adminUrl}
   ${hoop} approvals approve <id> --admin ${i.adminUrl} --reason "refund ticket 42"

   The held UPDATE runs in the reader's session. The DBA can also connect directly:

   ${conn(i.dbaToken)}

3. SSH through the same gateway: ${i.sshResource} is a small SSH host the demo runs (its files are in
   ${i.sshScratch}), reached with a key only the gateway holds. As an ops agent
   (agent-9, group ops, acting for alice), the token is the password:

   export SSHPASS=${i.opsToken}

   Then try each verdict:
     allow    ${sshLine(i, SSH_COMMANDS.allow)}
     mask     ${sshLine(i, SSH_COMMANDS.mask)}
              (the AWS access key and the card number arrive as [REDACTED])
     block    ${sshLine(i, SSH_COMMANDS.block)}
              (stderr: hoop: blocked by ops.ssh.no_recursive_delete: ..., exit status 126; nothing is deleted)
     approve  ${sshLine(i, SSH_COMMANDS.approve)}
              (ssh waits: "hoop: waiting for approval <id> from sre"; bob is in sre too, so approve
              it as in 2: ${hoop} approvals approve <id> --admin ${i.adminUrl} --reason "deploy 7")

   ${rel(i.knownHostsFile)} pins the gateway's host key (${i.sshHostKey}).
   No sshpass? Leave out \`sshpass -e\` and paste the token when ssh asks for the password.

4. The same policy for an MCP client (Claude Code, Cursor, any MCP SDK client; see docs/mcp.md).
   Claude Code, over stdio (\`hoop mcp\` relays to the gateway with the agent's token):

   claude mcp add hoop --env HOOP_TOKEN=${i.readerToken} -- node ${join(ROOT, 'bin', 'hoop.js')} mcp --url ${i.mcpUrl}

   or over Streamable HTTP:

   claude mcp add --transport http hoop ${i.mcpUrl} --header "Authorization: Bearer ${i.readerToken}"

   A generic MCP client (mcp.json / .cursor/mcp.json / claude_desktop_config.json):

${mcpJson(i)
  .split('\n')
  .map((l) => `   ${l}`)
  .join('\n')}

   Then ask it to "describe prod-main", "query SELECT id, name, email, card_number FROM customers"
   (masked) and "query DELETE FROM customers" (blocked by no_unbounded_writes).

5. Afterwards:
   ${hoop} sessions list ${rel(i.sessionsDir)}
   ${hoop} audit verify ${rel(i.auditFile)}
   curl -s ${i.adminUrl}/metrics | grep hoop_decisions

Tokens expire in 30 minutes; mint more with
   ${hoop} token mint --sub agent-7 --groups data-reader --state ${rel(i.state)}
   ${hoop} token mint --sub agent-9 --groups ops --state ${rel(i.state)}
Press Ctrl-C to stop.
`;
}

/** The commands the printed ssh lines run, one per verdict under examples/policies/ops.hoop. */
export const SSH_COMMANDS = { allow: 'ls -l', mask: 'cat secrets.env', block: 'rm -rf ./*', approve: 'systemctl restart nginx' } as const;

/** A ready-to-paste ssh line: the token from $SSHPASS as the password, the gateway's host key pinned. */
export function sshLine(i: DemoInfo, command: string): string {
  return `sshpass -e ssh -p ${i.sshPort} -o UserKnownHostsFile=${i.knownHostsFile} -o PreferredAuthentications=password ${i.sshResource}@127.0.0.1 '${command}'`;
}

/** The MCP client configuration block: the stdio server (`hoop mcp`) and the HTTP one, both with the reader's token. */
export function mcpJson(i: DemoInfo): string {
  return JSON.stringify(
    {
      mcpServers: {
        hoop: { command: 'node', args: [join(ROOT, 'bin', 'hoop.js'), 'mcp', '--url', i.mcpUrl], env: { HOOP_TOKEN: i.readerToken } },
        'hoop-http': { type: 'http', url: i.mcpUrl, headers: { Authorization: `Bearer ${i.readerToken}` } },
      },
    },
    null,
    2,
  );
}

export function register(program: Command): void {
  program
    .command('demo')
    .description('run the gateway in front of an embedded PostgreSQL with sample data and a small SSH host, with example policies and a dev token issuer')
    .option('--state <dir>', 'state directory (dev issuer key, approvals, audit, recordings)', '.hoop/demo')
    .option('--port <port>', 'gateway port (0 = any free port)', '6432')
    .option('--admin-port <port>', 'admin API port (0 = any free port)', '6480')
    .option('--ssh-port <port>', 'gateway SSH port (0 = any free port)', '2222')
    .option('--policy <path>', 'policy file or folder (default: examples/policies)')
    .action(async (o: { state: string; port: string; adminPort: string; sshPort: string; policy?: string }) => {
      const port = Number(o.port);
      const adminPort = Number(o.adminPort);
      const sshPort = Number(o.sshPort);
      if (![port, adminPort, sshPort].every((p) => Number.isInteger(p) && p >= 0 && p <= 65535)) {
        process.stderr.write('hoop demo: --port, --admin-port and --ssh-port must be port numbers\n');
        process.exitCode = 2;
        return;
      }
      let demo: Demo;
      try {
        demo = await startDemo({ state: o.state, port, adminPort, sshPort, policy: o.policy });
      } catch (err) {
        const e = err as NodeJS.ErrnoException;
        process.stderr.write(
          e.code === 'EADDRINUSE' ? `hoop demo: a port is in use (${e.message}); try --port 0 --admin-port 0 --ssh-port 0\n` : `hoop demo: ${e.message}\n`,
        );
        process.exitCode = 2;
        return;
      }
      process.stdout.write(renderDemoInstructions(demo.info));
      await untilStopSignal();
      process.stderr.write('\nhoop demo: stopping\n');
      await demo.close();
    });
}

function freePort(): Promise<number> {
  return new Promise((resolve, reject) => {
    const srv = createServer();
    srv.once('error', reject);
    srv.listen(0, '127.0.0.1', () => {
      const p = (srv.address() as { port: number }).port;
      srv.close(() => resolve(p));
    });
  });
}
