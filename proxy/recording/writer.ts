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
import { StringDecoder } from 'node:string_decoder';
import type { ChannelCast, ChannelCastStart, SessionHeader, SessionRecorder, SessionRecording, StatementEvent } from '../ports.ts';
import { RECORDING_VERSION, recordingFileName, type RecordingFooter } from './format.ts';

/** How long a recorded line may wait in memory before it is written. */
const FLUSH_MS = 100;
/** A batch this large is written at once. */
const FLUSH_BYTES = 64 * 1024;
/**
 * A statement text longer than this is written in slices of this size, one per event-loop turn:
 * serialising a 10 MB statement at once would hold every session for tens of milliseconds.
 */
const LONG_TEXT = 256 * 1024;

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
      // While a long line is being written in slices, later lines wait here, in order.
      let backlog: (() => void)[] | undefined;
      let drained: Promise<void> = Promise.resolve();
      const write = (obj: unknown) => {
        if (failed) return;
        if (backlog) {
          backlog.push(() => write(obj));
          return;
        }
        pending += JSON.stringify(obj) + '\n';
        if (pending.length >= FLUSH_BYTES) flush();
        else timer ??= setTimeout(flush, FLUSH_MS);
      };
      /** `obj` with `text` added last, the text escaped a slice per turn (same JSON as `write`, text last). */
      const writeLong = (obj: Record<string, unknown>, text: string) => {
        if (failed) return;
        if (backlog) {
          backlog.push(() => writeLong(obj, text));
          return;
        }
        flush();
        const head = JSON.stringify(obj);
        stream.write(`${head.slice(0, -1)}${head.length > 2 ? ',' : ''}"text":"`);
        backlog = [];
        let at = 0;
        let done!: () => void;
        const mine = new Promise<void>((resolve) => (done = resolve));
        drained = mine;
        {
          const step = (): void => {
            if (!failed) {
              const end = Math.min(text.length, at + LONG_TEXT);
              // A slice may end inside a surrogate pair: each half is then escaped (\udxxx), which
              // still reads back as the pair.
              stream.write(JSON.stringify(text.slice(at, end)).slice(1, -1));
              at = end;
              if (at < text.length) {
                setImmediate(step);
                return;
              }
              stream.write('"}\n');
            }
            const waiting = backlog ?? [];
            backlog = undefined;
            for (const w of waiting) w();
            // A long line among the waiting ones started its own backlog: wait for that one too.
            if (drained === mine) done();
            else void drained.then(done);
          };
          step();
        }
      };
      write({ type: 'header', version: RECORDING_VERSION, ...header });
      let casts = 0;
      const openCasts = new Set<ChannelCast>();
      /** Settle once each cast's file is written and closed: `close` waits for them. */
      const castsWritten: Promise<void>[] = [];
      let statements = 0;
      const verdicts: RecordingFooter['verdicts'] = {};
      let closed = false;
      return {
        file,
        statement(event: StatementEvent): void {
          if (closed) return;
          statements += 1;
          verdicts[event.verdict] = (verdicts[event.verdict] ?? 0) + 1;
          let line: Record<string, unknown> = { type: 'statement', ...event };
          if (!opts.results && event.results !== undefined) {
            const { results: _dropped, ...rest } = event;
            line = { type: 'statement', ...rest };
          }
          if (event.text.length > LONG_TEXT) {
            const { text, ...rest } = line;
            writeLong(rest, event.text);
          } else write(line);
        },
        cast(start: ChannelCastStart): ChannelCast | undefined {
          if (!opts.results || closed) return undefined;
          const name = `${recordingFileName(header).replace(/\.jsonl$/, '')}.${++casts}.cast`;
          const { cast: c, done } = openCast(join(opts.dir, name), name, start, (err) => onError(err, name), () => openCasts.delete(c));
          openCasts.add(c);
          castsWritten.push(done);
          return c;
        },
        async close(endedAt: string): Promise<void> {
          if (closed) return;
          closed = true;
          for (const c of [...openCasts]) c.end();
          await Promise.all(castsWritten);
          const footer: RecordingFooter = { type: 'footer', ended_at: endedAt, statements, verdicts };
          write(footer);
          await drained;
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

/**
 * An asciicast v2 file (https://docs.asciinema.org/manual/asciicast/v2/): a header line, then one
 * `[seconds, "o", text]` line per piece of output and `[seconds, "r", "COLSxROWS"]` per resize.
 * Output is decoded as UTF-8 across pieces (a character split between writes stays whole); bytes
 * that are not UTF-8 become U+FFFD, as a terminal would show them. Written through one stream, in
 * order, never waited for by the channel.
 */
/** How much cast output may wait for the disk before more is left out (bytes). */
const CAST_BACKLOG = 8 * 1024 * 1024;

function openCast(file: string, name: string, start: ChannelCastStart, onError: (err: Error) => void, onEnd: () => void): { cast: ChannelCast; done: Promise<void> } {
  const stream = createWriteStream(file, { flags: 'wx', mode: 0o640 });
  const done = new Promise<void>((resolve) => {
    stream.once('close', () => resolve());
    stream.once('error', () => resolve());
  });
  let failed = false;
  stream.on('error', (err) => {
    if (!failed) onError(err);
    failed = true;
  });
  const t0 = performance.now();
  const decoder = new StringDecoder('utf8');
  const at = () => Math.round(performance.now() - t0) / 1000;
  // The channel never waits for the file: while the disk is this far behind, output is left out
  // (once, with a marker saying how much), so a slow disk cannot grow the gateway's memory.
  let dropped = 0;
  const line = (obj: unknown) => {
    if (failed || ended) return;
    stream.write(JSON.stringify(obj) + '\n');
  };
  const room = (bytes: number): boolean => {
    if (stream.writableLength + bytes <= CAST_BACKLOG) {
      if (dropped > 0) {
        line([at(), 'm', `hoop: ${dropped} bytes of output not recorded (the recording fell behind)`]);
        dropped = 0;
      }
      return true;
    }
    dropped += bytes;
    return false;
  };
  let ended = false;
  line({ version: 2, width: start.cols, height: start.rows, timestamp: Math.floor(Date.now() / 1000), title: start.title, env: { TERM: start.term ?? '', SHELL: '' } });
  const cast: ChannelCast = {
    file: name,
    output(data: Buffer) {
      if (!room(data.length)) return;
      const text = decoder.write(data);
      if (text !== '') line([at(), 'o', text]);
    },
    resize(cols: number, rows: number) {
      line([at(), 'r', `${cols}x${rows}`]);
    },
    end() {
      if (ended) return;
      const rest = decoder.end();
      if (rest !== '') line([at(), 'o', rest]);
      if (dropped > 0) line([at(), 'm', `hoop: ${dropped} bytes of output not recorded (the recording fell behind)`]);
      ended = true;
      stream.end();
      onEnd();
    },
  };
  return { cast, done };
}
