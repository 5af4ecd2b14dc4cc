// Streams a session recording line by line (constant memory, whatever the file size), in
// chunks of 64 KiB split on newlines (node:readline costs more per line).
//
// Errors are coded (`RecordingError.code`) and carry `file:line`. A recording from a newer format
// version, or one without a header, is always an error (nothing after it can be trusted to mean
// what this reader thinks). A corrupt line is an error too, unless `skipBad` is set: then it is
// yielded as a `bad` entry so the caller can report it, and reading goes on.

import { createReadStream } from 'node:fs';
import { StringDecoder } from 'node:string_decoder';
import { RECORDING_VERSION, type RecordingFooter, type RecordingHeader, type RecordingStatement } from './format.ts';

export type RecordingErrorCode = 'unreadable' | 'missing_header' | 'future_version' | 'malformed';

export class RecordingError extends Error {
  constructor(
    readonly code: RecordingErrorCode,
    readonly file: string,
    readonly line: number,
    readonly detail: string,
  ) {
    super(`${file}:${line}: ${detail}`);
    this.name = 'RecordingError';
  }
}

export type RecordingEntry =
  | { type: 'header'; line: number; header: RecordingHeader }
  | { type: 'statement'; line: number; event: RecordingStatement }
  | { type: 'footer'; line: number; footer: RecordingFooter }
  | { type: 'bad'; line: number; error: RecordingError };

export interface ReadOptions {
  /** Yield corrupt lines as `bad` entries instead of throwing. */
  skipBad?: boolean;
}

const VERDICTS = new Set(['allow', 'mask', 'approve', 'block']);

export async function* readRecording(file: string, opts: ReadOptions = {}): AsyncGenerator<RecordingEntry> {
  for await (const batch of readRecordingBatches(file, opts)) yield* batch;
}

/**
 * Like `readRecording`, one array of entries per chunk read (64 KiB): a caller that goes
 * through millions of lines (dry-run) pays one await per chunk instead of one per line. Entries
 * before a line that throws are yielded first, so both readers see the same entries.
 */
export async function* readRecordingBatches(file: string, opts: ReadOptions = {}): AsyncGenerator<RecordingEntry[]> {
  const input = createReadStream(file, { highWaterMark: 1 << 16 });
  const decoder = new StringDecoder('utf8');
  let lineNo = 0;
  let sawHeader = false;
  let rest = '';
  let batch: RecordingEntry[] = [];
  let failure: RecordingError | undefined;

  // Parses one line into `batch`; a fatal problem is left in `failure`.
  const take = (line: string): void => {
    lineNo += 1;
    if (!sawHeader) {
      try {
        batch.push({ type: 'header', line: lineNo, header: parseHeader(line, file, lineNo) });
        sawHeader = true;
      } catch (err) {
        failure = err as RecordingError;
      }
      return;
    }
    if (line.length === 0 || line.trim() === '') return;
    const parsed = parseEntry(line);
    if (typeof parsed === 'string') {
      const error = new RecordingError('malformed', file, lineNo, parsed);
      if (opts.skipBad) batch.push({ type: 'bad', line: lineNo, error });
      else failure = error;
      return;
    }
    if (parsed.type === 'statement') batch.push({ type: 'statement', line: lineNo, event: parsed });
    else batch.push({ type: 'footer', line: lineNo, footer: parsed });
  };

  try {
    for await (const chunk of input as AsyncIterable<Buffer>) {
      const text = rest + decoder.write(chunk);
      let start = 0;
      for (let nl = text.indexOf('\n'); nl !== -1 && failure === undefined; nl = text.indexOf('\n', start)) {
        take(text.slice(start, nl > start && text.charCodeAt(nl - 1) === 13 ? nl - 1 : nl));
        start = nl + 1;
      }
      if (failure) break;
      rest = text.slice(start);
      if (batch.length > 0) {
        yield batch;
        batch = [];
      }
    }
    if (!failure) {
      rest += decoder.end();
      // A last line without a newline (a recording cut off mid-write) is read like any other.
      if (rest.length > 0) take(rest.charCodeAt(rest.length - 1) === 13 ? rest.slice(0, -1) : rest);
    }
  } catch (err) {
    throw new RecordingError('unreadable', file, lineNo, `cannot read: ${(err as NodeJS.ErrnoException).code ?? (err as Error).message}`);
  } finally {
    input.destroy();
  }
  if (batch.length > 0) yield batch;
  if (failure) throw failure;
  if (!sawHeader) throw new RecordingError('missing_header', file, 1, 'empty file: a recording starts with a header line');
}

function parseHeader(line: string, file: string, lineNo: number): RecordingHeader {
  let obj: Record<string, unknown>;
  try {
    obj = JSON.parse(line) as Record<string, unknown>;
  } catch {
    throw new RecordingError('missing_header', file, lineNo, 'the first line is not a JSON header');
  }
  if (!isObject(obj) || obj.type !== 'header') throw new RecordingError('missing_header', file, lineNo, 'the first line is not a header (`"type":"header"`)');
  if (typeof obj.version !== 'number' || !Number.isInteger(obj.version) || obj.version < 1) {
    throw new RecordingError('malformed', file, lineNo, 'the header has no valid `version`');
  }
  if (obj.version > RECORDING_VERSION) {
    throw new RecordingError('future_version', file, lineNo, `recording format version ${obj.version} is newer than this hoop understands (${RECORDING_VERSION}); upgrade hoop`);
  }
  if (typeof obj.session_id !== 'string' || !isObject(obj.identity) || typeof (obj.identity as Record<string, unknown>).sub !== 'string' || !isObject(obj.resource) || typeof obj.started_at !== 'string') {
    throw new RecordingError('malformed', file, lineNo, 'the header lacks session_id, identity.sub, resource or started_at');
  }
  return obj as unknown as RecordingHeader;
}

/** The entry, or why the line is bad. */
function parseEntry(line: string): RecordingStatement | RecordingFooter | string {
  let obj: unknown;
  try {
    obj = JSON.parse(line);
  } catch {
    return 'not valid JSON (truncated or corrupt line)';
  }
  if (!isObject(obj)) return 'not a JSON object';
  if (obj.type === 'statement') {
    if (typeof obj.text !== 'string') return 'statement without `text`';
    if (typeof obj.verdict !== 'string' || !VERDICTS.has(obj.verdict)) return `statement with an unknown verdict ${JSON.stringify(obj.verdict)}`;
    if (typeof obj.time !== 'string') return 'statement without `time`';
    if (!Array.isArray(obj.reasons) || !Array.isArray(obj.masks)) return 'statement without `reasons`/`masks` lists';
    return obj as unknown as RecordingStatement;
  }
  if (obj.type === 'footer') {
    if (typeof obj.ended_at !== 'string') return 'footer without `ended_at`';
    return obj as unknown as RecordingFooter;
  }
  if (obj.type === 'header') return 'a second header';
  return `unknown entry type ${JSON.stringify(obj.type)}`;
}

function isObject(v: unknown): v is Record<string, unknown> {
  return typeof v === 'object' && v !== null && !Array.isArray(v);
}
