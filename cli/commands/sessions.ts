// `hoop sessions list [DIR]`, `hoop sessions show FILE` and `hoop sessions play ID`: read session recordings.
import type { Command } from 'commander';
import { existsSync } from 'node:fs';
import { loadConfigFile, renderConfigErrors } from '../../proxy/config.ts';
import { escapeControls as esc, jsonForTerminal, oneLine } from '../../stdlib/terminal-text.ts';
import { listRecordingFiles, playCast, readCast, readRecording, RecordingError, sessionCasts, summarizeRecording, type Cast, type SessionSummary } from '../../proxy/recording/index.ts';

export function register(program: Command): void {
  const sessions = program.command('sessions').description('recorded gateway sessions');
  sessions
    .command('list')
    .description('one line per recorded session: identity, resource, start, duration, statements, verdicts')
    .argument('[dir]', 'recordings folder (default: recording.dir of --config, else .hoop/sessions)')
    .option('--config <file>', 'gateway config whose recording.dir to use')
    .option('--json', 'print JSON (one array of objects)')
    .action(async (dirArg: string | undefined, o: { config?: string; json?: boolean }) => {
      let dir = dirArg ?? '.hoop/sessions';
      if (!dirArg && o.config) {
        const r = loadConfigFile(o.config);
        if (!r.ok) return usage(renderConfigErrors(o.config, r.errors));
        dir = r.config.recording.dir;
      }
      if (!existsSync(dir)) return usage(`hoop sessions list: no such folder ${dir}`);
      const out: SessionSummary[] = [];
      for (const file of listRecordingFiles(dir)) {
        try {
          out.push(await summarizeRecording(file));
        } catch (err) {
          if (!(err instanceof RecordingError)) throw err;
          process.stderr.write(`hoop: skipping ${err.message}\n`);
        }
      }
      if (o.json) {
        process.stdout.write(jsonForTerminal(out, 2) + '\n');
        return;
      }
      const rows = out.map((s) => [
        esc(s.started_at),
        esc(s.session_id),
        s.actor ? `${esc(s.sub)} (for ${esc(s.actor)})` : esc(s.sub),
        esc(s.resource),
        s.duration_ms === undefined ? '-' : `${(s.duration_ms / 1000).toFixed(1)}s`,
        String(s.statements),
        VERDICT_ORDER.filter((v) => s.verdicts[v]).map((v) => `${v}:${s.verdicts[v]}`).join(' ') || '-',
      ]);
      printTable(['STARTED', 'SESSION', 'IDENTITY', 'RESOURCE', 'DURATION', 'STATEMENTS', 'VERDICTS'], rows);
    });

  sessions
    .command('show')
    .description('the timeline of one recorded session')
    .argument('<file>', 'a recording (.jsonl)')
    .option('--json', 'print the entries as JSON Lines')
    .option('--skip-bad', 'report corrupt lines and go on')
    .action(async (file: string, o: { json?: boolean; skipBad?: boolean }) => {
      try {
        for await (const e of readRecording(file, { skipBad: o.skipBad })) {
          if (o.json) {
            if (e.type === 'header') process.stdout.write(jsonForTerminal(e.header) + '\n');
            else if (e.type === 'statement') process.stdout.write(jsonForTerminal(e.event) + '\n');
            else if (e.type === 'footer') process.stdout.write(jsonForTerminal(e.footer) + '\n');
            else process.stderr.write(`hoop: ${esc(e.error.message)}\n`);
            continue;
          }
          if (e.type === 'header') {
            const h = e.header;
            process.stdout.write(
              esc(`session ${h.session_id}: ${h.identity.sub}${h.identity.actor ? ` (for ${h.identity.actor})` : ''} [${h.identity.groups.join(', ')}] on ${h.resource.kind}/${h.resource.name} from ${h.client_addr}, started ${h.started_at}`) + '\n',
            );
          } else if (e.type === 'statement') {
            const s = e.event;
            const extra = [
              s.reasons.length ? `rules ${s.reasons.join(', ')}` : '',
              s.decision_masks?.length ? `policy masks ${s.decision_masks.join('; ')}` : '',
              s.masks.length ? `masked ${s.masks.join(', ')}` : '',
              s.approvers?.length ? `approvers ${s.approvers.join(', ')}` : '',
              s.approval_id ? `approval ${s.approval_id}` : '',
              s.rows !== undefined ? `${s.rows} rows` : '',
              s.duration_ms !== undefined ? `${s.duration_ms.toFixed(1)}ms` : '',
              s.error ? `error: ${s.error}` : '',
              s.ssh ? `${s.ssh.exit_code !== undefined ? `exit ${s.ssh.exit_code}` : s.ssh.signal ? `signal ${s.ssh.signal}` : 'no exit status'}, ${s.ssh.bytes_in} bytes in, ${s.ssh.bytes_out} out` : '',
              s.ssh?.cast ? `output ${s.ssh.cast} (hoop sessions play)` : '',
            ].filter(Boolean);
            process.stdout.write(`${esc(s.time)}  ${esc(s.verdict.padEnd(7))} ${esc(s.outcome.padEnd(16))} ${oneLine(s.text, 120)}\n${extra.length ? `    ${esc(extra.join('; '))}\n` : ''}`);
          } else if (e.type === 'footer') {
            process.stdout.write(`ended ${esc(e.footer.ended_at)}: ${e.footer.statements} statements\n`);
          } else {
            process.stderr.write(`hoop: ${esc(e.error.message)}\n`);
          }
        }
      } catch (err) {
        if (!(err instanceof RecordingError)) throw err;
        process.stderr.write(`hoop: ${err.message}\n`);
        process.exitCode = err.code === 'unreadable' || err.code === 'future_version' ? 2 : 1;
      }
    });

  sessions
    .command('play')
    .description('replay the terminal output of a recorded ssh session (its exec and shell channels, asciicast v2; recorded with recording.results)')
    .argument('<session>', 'a session id, a recording (.jsonl) or a cast (.cast)')
    .argument('[dir]', 'recordings folder (default: recording.dir of --config, else .hoop/sessions)')
    .option('--config <file>', 'gateway config whose recording.dir to use')
    .option('--speed <n>', 'play N times as fast (default 1: real pace)', '1')
    .option('--max-idle <seconds>', 'shorten longer pauses to this')
    .action(async (what: string, dirArg: string | undefined, o: { config?: string; speed: string; maxIdle?: string }) => {
      let dir = dirArg ?? '.hoop/sessions';
      if (!dirArg && o.config) {
        const r = loadConfigFile(o.config);
        if (!r.ok) return usage(renderConfigErrors(o.config, r.errors));
        dir = r.config.recording.dir;
      }
      const speed = Number(o.speed);
      if (!Number.isFinite(speed) || speed <= 0) return usage(`hoop sessions play: --speed must be a positive number, got ${JSON.stringify(o.speed)}`);
      const maxIdle = o.maxIdle === undefined ? undefined : Number(o.maxIdle);
      if (maxIdle !== undefined && (!Number.isFinite(maxIdle) || maxIdle < 0)) return usage(`hoop sessions play: --max-idle must be a number of seconds, got ${JSON.stringify(o.maxIdle)}`);
      if (!what.endsWith('.cast') && !what.endsWith('.jsonl') && !existsSync(dir)) return usage(`hoop sessions play: no such folder ${dir}`);
      let found: Awaited<ReturnType<typeof sessionCasts>>;
      try {
        found = await sessionCasts(what, dir);
      } catch (err) {
        if (!(err instanceof RecordingError)) throw err;
        process.stderr.write(`hoop: ${err.message}\n`);
        process.exitCode = 2;
        return;
      }
      if (!found) return usage(`hoop sessions play: no recording of session ${JSON.stringify(what)} in ${dir}`);
      if (found.casts.length === 0) {
        process.stderr.write(`hoop: ${found.recording ?? what} has no terminal output recorded (output is recorded for ssh channels with recording.results: true)\n`);
        process.exitCode = 1;
        return;
      }
      for (const c of found.casts) {
        let cast: Cast;
        try {
          cast = readCast(c.file);
        } catch (err) {
          process.stderr.write(`hoop: ${(err as Error).message}\n`);
          process.exitCode = 1;
          continue;
        }
        process.stderr.write(`hoop: ${oneLine(c.title, 120)} (${cast.header.width}x${cast.header.height})\n`);
        await playCast(cast, { speed, ...(maxIdle !== undefined ? { maxIdle } : {}), write: (d) => process.stdout.write(d) });
      }
    });
}

const VERDICT_ORDER = ['allow', 'mask', 'approve', 'block'] as const;

function usage(msg: string): void {
  process.stderr.write(msg + '\n');
  process.exitCode = 2;
}

function printTable(head: string[], rows: string[][]): void {
  const widths = head.map((h, i) => Math.max(h.length, ...rows.map((r) => r[i].length)));
  const fmt = (r: string[]) => r.map((c, i) => (i === r.length - 1 ? c : c.padEnd(widths[i]))).join('  ');
  process.stdout.write([fmt(head), ...rows.map(fmt)].join('\n') + '\n');
}
