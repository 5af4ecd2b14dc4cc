// `hoop mcp --config hoop.yaml`: the MCP front door on stdio. It relays to the gateway's `/mcp`
// (found from the config's listen.admin, or --url) with the token in HOOP_TOKEN (or --token-file,
// read again for every request, so a refreshed token is picked up). It needs none of the
// gateway's secrets: reading the config it takes only listen.admin and whether tls is on.
// Exit codes: 0 when stdin ends, 2 usage.
import { readFileSync } from 'node:fs';
import type { Command } from 'commander';
import { loadAdminEndpoint, renderConfigErrors } from '../../proxy/config.ts';

interface Options {
  config?: string;
  url?: string;
  tokenFile?: string;
}

export function register(program: Command): void {
  program
    .command('mcp')
    .description('the MCP front door on stdio (for Claude Code, Cursor, MCP SDK clients): relays to the gateway\'s /mcp with the token in HOOP_TOKEN')
    .option('--config <file>', 'gateway config (uses its listen.admin)')
    .option('--url <url>', 'the gateway\'s MCP endpoint, e.g. http://127.0.0.1:6480/mcp')
    .option('--token-file <file>', 'read the token from this file for every request instead of HOOP_TOKEN')
    .action(async (o: Options) => {
      let url: URL;
      if (o.url) {
        try {
          url = new URL(o.url);
        } catch {
          return usage(`hoop mcp: --url is not a URL: ${JSON.stringify(o.url)}`);
        }
      } else if (o.config) {
        const r = loadAdminEndpoint(o.config);
        if (!r.ok) return usage(renderConfigErrors(o.config, r.errors));
        url = new URL('/mcp', r.url);
      } else return usage('hoop mcp: give --config FILE (the gateway\'s config; its listen.admin serves /mcp) or --url URL');
      let token: () => string;
      if (o.tokenFile) {
        const file = o.tokenFile;
        const read = () => readFileSync(file, 'utf8').trim();
        try {
          if (!read()) return usage(`hoop mcp: ${file} is empty`);
        } catch (e) {
          return usage(`hoop mcp: cannot read ${file}: ${(e as NodeJS.ErrnoException).code ?? (e as Error).message}`);
        }
        token = () => {
          try {
            return read();
          } catch {
            return '';
          }
        };
      } else {
        const t = process.env.HOOP_TOKEN?.trim();
        if (!t) return usage('hoop mcp: set HOOP_TOKEN to the agent\'s token (in development: `hoop token mint --sub agent-7 --groups data-reader`), or give --token-file');
        token = () => t;
      }
      const { runStdioBridge } = await import('../../proxy/mcp/stdio-bridge.ts');
      await runStdioBridge({ url, token, log: (line) => process.stderr.write(`hoop mcp: ${line}\n`) });
    });
}

function usage(msg: string): void {
  process.stderr.write(msg + '\n');
  process.exitCode = 2;
}
