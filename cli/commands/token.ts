// `hoop token mint`: tokens from the development issuer (its key lives in the state directory).
// Development only: a real deployment's tokens come from its OIDC issuer.
import type { Command } from 'commander';
import { resolve } from 'node:path';
import { loadConfigFile, renderConfigErrors } from '../../proxy/config.ts';
import { parseDuration } from '../../proxy/duration.ts';
import { DEV_ISSUER, openDevIssuer } from '../../proxy/identity/dev-issuer.ts';

export function register(program: Command): void {
  const token = program.command('token').description('development tokens (development issuer only)');
  token
    .command('mint')
    .description('mint a token from the development issuer (prints the JWT)')
    .requiredOption('--sub <subject>', 'the agent identity (`sub`)')
    .option('--groups <groups>', 'comma-separated groups', '')
    .option('--ttl <duration>', 'lifetime, e.g. 15m', '15m')
    .option('--actor <name>', 'the human on whose behalf the agent acts (`act.sub`)')
    .option('--audience <aud>', 'audience (`aud`)')
    .option('--state <dir>', 'state directory holding the dev issuer key', '.hoop')
    .option('--config <file>', 'take the state directory from this gateway config')
    .option('--json', 'print {token, sub, groups, expires_at, jwks_file} as JSON')
    .action(async (o: { sub: string; groups: string; ttl: string; actor?: string; audience?: string; state: string; config?: string; json?: boolean }) => {
      const ttlMs = parseDuration(o.ttl);
      if (ttlMs === undefined || ttlMs <= 0) {
        process.stderr.write(`hoop token mint: --ttl: expected a duration like 15m, got ${JSON.stringify(o.ttl)}\n`);
        process.exitCode = 2;
        return;
      }
      let state = resolve(o.state);
      if (o.config) {
        const r = loadConfigFile(o.config);
        if (!r.ok) {
          process.stderr.write(renderConfigErrors(o.config, r.errors) + '\n');
          process.exitCode = 2;
          return;
        }
        state = r.config.state;
        if (!r.config.identity.some((i) => i.issuer === DEV_ISSUER)) {
          process.stderr.write(`hoop token mint: warning: ${o.config} trusts ${r.config.identity.map((i) => i.issuer).join(', ')}, not the development issuer; its gateway will refuse this token\n`);
        }
      }
      const issuer = await openDevIssuer(state);
      const groups = o.groups.split(',').map((g) => g.trim()).filter(Boolean);
      const jwt = await issuer.mint({ sub: o.sub, groups, ttlMs, actor: o.actor, audience: o.audience });
      if (o.json) {
        const expires_at = new Date(Date.now() + ttlMs).toISOString();
        process.stdout.write(JSON.stringify({ token: jwt, sub: o.sub, groups, actor: o.actor, expires_at, issuer: issuer.issuer, jwks_file: issuer.jwksFile }) + '\n');
      } else {
        process.stdout.write(jwt + '\n');
      }
    });
}
