// Writes session recordings. `statement()` never blocks the session: lines are queued on the
// file's write stream, which writes them asynchronously and in order. A recording that cannot be
// written is reported through `onError` (the gateway logs it); it never fails a statement —
// the audit log, not the recording, is the durable record of what ran.
//
// Result values are dropped unless `results` is configured; the session passes values that were
// already masked, so an unmasked value never reaches the recording.

import { createWriteStream, mkdirSync, type WriteStream } from 'node:fs';
import { join } from 'node:path';
import type { SessionHeader, SessionRecorder, SessionRecording, StatementEvent } from '../ports.ts';
import { RECORDING_VERSION, recordingFileName, type RecordingFooter } from './format.ts';

export interface RecorderOptions {
  dir: string;
  /** Keep `StatementEvent.results` (masked values). Default false. */
  results?: boolean;
  onError?: (err: Error, file: string) => void;
}

export interface FileSessionRecording extends SessionRecording {
  readonly file: string;
}

export interface FileSessionRecorder extends SessionRecorder {
  open(header: SessionHeader): Promise<FileSessionRecording>;
}

export function createSessionRecorder(opts: RecorderOptions): FileSessionRecorder {
  const onError = opts.onError ?? ((err, file) => process.stderr.write(`hoop: recording ${file}: ${err.message}\n`));
  return {
    async open(header: SessionHeader): Promise<FileSessionRecording> {
      mkdirSync(opts.dir, { recursive: true, mode: 0o750 });
      const file = join(opts.dir, recordingFileName(header));
      const stream = await openExclusive(file);
      let failed = false;
      stream.on('error', (err) => {
        if (!failed) onError(err, file);
        failed = true;
      });
      const write = (obj: unknown) => {
        if (!failed) stream.write(JSON.stringify(obj) + '\n');
      };
      write({ type: 'header', version: RECORDING_VERSION, ...header });
      let statements = 0;
      const verdicts: RecordingFooter['verdicts'] = {};
      let closed = false;
      return {
        file,
        statement(event: StatementEvent): void {
          if (closed) return;
          statements += 1;
          verdicts[event.verdict] = (verdicts[event.verdict] ?? 0) + 1;
          if (!opts.results && event.results !== undefined) {
            const { results: _dropped, ...rest } = event;
            write({ type: 'statement', ...rest });
          } else {
            write({ type: 'statement', ...event });
          }
        },
        async close(endedAt: string): Promise<void> {
          if (closed) return;
          closed = true;
          const footer: RecordingFooter = { type: 'footer', ended_at: endedAt, statements, verdicts };
          write(footer);
          await new Promise<void>((resolve) => {
            if (stream.destroyed) return resolve();
            stream.end(() => resolve());
            stream.once('error', () => resolve());
          });
        },
      };
    },
  };
}

function openExclusive(file: string): Promise<WriteStream> {
  return new Promise((resolve, reject) => {
    const s = createWriteStream(file, { flags: 'wx', mode: 0o640 });
    s.once('open', () => {
      s.removeListener('error', reject);
      resolve(s);
    });
    s.once('error', reject);
  });
}
