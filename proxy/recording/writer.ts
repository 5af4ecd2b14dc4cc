// Writes session recordings. `statement()` never blocks the session: lines are gathered in memory
// and handed to the file's write stream in batches (every FLUSH_MS, or at FLUSH_BYTES), which
// writes them asynchronously and in order. Batching matters on the hot path: one thread-pool write
// per statement cost more CPU (hand-offs, wake-ups) than everything else the recording does.
// A crash can lose the last FLUSH_MS of recording, never an audit record. A recording that cannot be
// written is reported through `onError` (the gateway logs it); it never fails a statement —
// the audit log, not the recording, is the durable record of what ran.
//
// Result values are dropped unless `results` is configured; the session passes values that were
// already masked, so an unmasked value never reaches the recording.

import { createWriteStream, mkdirSync, type WriteStream } from 'node:fs';
import { join } from 'node:path';
import type { SessionHeader, SessionRecorder, SessionRecording, StatementEvent } from '../ports.ts';
import { RECORDING_VERSION, recordingFileName, type RecordingFooter } from './format.ts';

/** How long a recorded line may wait in memory before it is written. */
const FLUSH_MS = 100;
/** A batch this large is written at once. */
const FLUSH_BYTES = 64 * 1024;

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
      let pending = '';
      let timer: NodeJS.Timeout | undefined;
      const flush = () => {
        if (timer) clearTimeout(timer);
        timer = undefined;
        if (pending === '' || failed) return;
        stream.write(pending);
        pending = '';
      };
      const write = (obj: unknown) => {
        if (failed) return;
        pending += JSON.stringify(obj) + '\n';
        if (pending.length >= FLUSH_BYTES) flush();
        else timer ??= setTimeout(flush, FLUSH_MS);
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
          flush();
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
