// `hoop gateway --config hoop.yaml`: runs the gateway until SIGINT/SIGTERM.
// Exit codes: 0 clean shutdown, 2 configuration or policy errors (nothing started).
import type { Command } from 'commander';
import { loadConfigFile, renderConfigErrors } from '../../proxy/config.ts';
import { untilStopSignal } from '../signals.ts';

export function register(program: Command): void {
  program
    .command('gateway')
    .description('run the gateway: PostgreSQL and SSH listeners, admin API, policy reload on SIGHUP or file change')
    .requiredOption('-c, --config <file>', 'gateway configuration (hoop.yaml)')
    .action(async (o: { config: string }) => {
      const loaded = loadConfigFile(o.config);
      if (!loaded.ok) {
        process.stderr.write(renderConfigErrors(o.config, loaded.errors) + '\n');
        process.exitCode = 2;
        return;
      }
      const config = loaded.config;
      // Loaded on demand: every other `hoop` command should not pay for the whole gateway's imports.
      const { runGateway } = await import('../../proxy/run.ts');
      const started = await runGateway(config);
      if (!started.ok) {
        process.stderr.write(started.errors.map((e) => `hoop gateway: ${e}`).join('\n') + '\n');
        process.exitCode = 2;
        return;
      }
      const { gateway, admin, ssh } = started.running;
      const pg = config.listen.postgres;
      process.stderr.write(
        `hoop gateway: postgres on ${pg.host}:${gateway.postgresPort}` +
          (admin && config.listen.admin ? `, admin API on ${config.listen.admin.host}:${config.listen.admin.port}` : '') +
          (ssh && config.listen.ssh ? `, ssh on ${config.listen.ssh.host}:${ssh.listener.port} (host key ${ssh.hostKey})` : '') +
          `; resources: ${config.resources.map((r) => r.name).join(', ')}\n`,
      );
      await untilStopSignal();
      process.stderr.write('hoop gateway: shutting down\n');
      await started.running.close();
      process.exitCode = 0;
    });
}
