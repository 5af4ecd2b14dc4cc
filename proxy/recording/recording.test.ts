import { describe, expect, it } from 'vitest';
import { execFileSync } from 'node:child_process';
import { appendFileSync, createWriteStream, mkdtempSync, readFileSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { createSessionRecorder } from './writer.ts';
import { readRecording, type RecordingEntry } from './reader.ts';
import { listRecordingFiles, summarizeRecording } from './summary.ts';
import type { SessionHeader, StatementEvent } from '../ports.ts';

const header = (id = 'sess-1'): SessionHeader => ({
  session_id: id,
  identity: { sub: 'agent-7', groups: ['data-reader'], actor: 'alice', claims: { sub: 'agent-7' }, token_id: 'j1' },
  resource: { kind: 'postgres', name: 'prod-main', labels: {} },
  client_addr: '127.0.0.1:50000',
  user_param: 'agent-7',
  started_at: '2026-11-26T01:02:03.456Z',
});

const event = (i: number, verdict: StatementEvent['verdict'] = 'allow'): StatementEvent => ({
  time: new Date(Date.parse('2026-11-26T01:02:04Z') + i * 1000).toISOString(),
  text: `SELECT ${i}`,
  protocol: 'simple',
  verdict,
  reasons: ['prod.db.readers_select'],
  masks: verdict === 'mask' ? ['public.customers.email'] : [],
  outcome: verdict === 'block' ? 'blocked' : 'executed',
  rows: 1,
  duration_ms: 0.5,
  results: [['secret-but-masked']],
});

async function collect(file: string, skipBad = false): Promise<RecordingEntry[]> {
  const out: RecordingEntry[] = [];
  for await (const e of readRecording(file, { skipBad })) out.push(e);
  return out;
}

async function record(dir: string, n: number, results = false, id = 'sess-1'): Promise<string> {
  const rec = await createSessionRecorder({ dir, results }).open(header(id));
  for (let i = 0; i < n; i++) rec.statement(event(i, (['allow', 'mask', 'block', 'approve'] as const)[i % 4]));
  await rec.close('2026-11-26T01:05:03.456Z');
  return rec.file;
}

describe('session recordings', () => {
  it('writes a long statement text in slices without reordering the lines around it (issue 14 item 11)', async () => {
    const dir = mkdtempSync(join(tmpdir(), 'hoop-rec-'));
    const rec = await createSessionRecorder({ dir }).open(header());
    // Past the slice size, with a surrogate pair and characters JSON escapes at slice boundaries.
    const long = ('x'.repeat(256 * 1024 - 1) + '😀"\\\n').repeat(3) + 'end';
    rec.statement(event(0));
    rec.statement({ ...event(1, 'mask'), text: long });
    rec.statement(event(2));
    rec.statement({ ...event(3), text: long.toUpperCase() });
    rec.statement(event(4));
    await rec.close('2026-11-26T01:05:03.456Z');
    const entries = await collect(rec.file);
    expect(entries.map((e) => e.type)).toEqual(['header', 'statement', 'statement', 'statement', 'statement', 'statement', 'footer']);
    const texts = entries.flatMap((e) => (e.type === 'statement' ? [e.event.text] : []));
    expect(texts).toEqual(['SELECT 0', long, 'SELECT 2', long.toUpperCase(), 'SELECT 4']);
    const second = entries[2];
    expect(second?.type === 'statement' && second.event).toMatchObject({ verdict: 'mask', rows: 1 });
    expect(second?.type === 'statement' && 'results' in second.event).toBe(false);
  });

  it('writes header, statements in order and a footer; reads them back', async () => {
    const dir = mkdtempSync(join(tmpdir(), 'hoop-rec-'));
    const file = await record(dir, 6);
    expect(file).toBe(join(dir, '20261126T010203Z-sess-1.jsonl'));
    const entries = await collect(file);
    expect(entries.map((e) => e.type)).toEqual(['header', 'statement', 'statement', 'statement', 'statement', 'statement', 'statement', 'footer']);
    const h = entries[0];
    expect(h.type === 'header' && h.header).toMatchObject({ type: 'header', version: 1, session_id: 'sess-1', identity: { sub: 'agent-7', actor: 'alice' } });
    const texts = entries.flatMap((e) => (e.type === 'statement' ? [e.event.text] : []));
    expect(texts).toEqual(['SELECT 0', 'SELECT 1', 'SELECT 2', 'SELECT 3', 'SELECT 4', 'SELECT 5']);
    const f = entries[7];
    expect(f.type === 'footer' && f.footer).toMatchObject({ statements: 6, verdicts: { allow: 2, mask: 2, block: 1, approve: 1 } });
  });

  it('drops result values unless configured', async () => {
    const dir = mkdtempSync(join(tmpdir(), 'hoop-rec-'));
    const without = await record(dir, 2, false, 'a');
    expect(readFileSync(without, 'utf8')).not.toContain('secret-but-masked');
    const withResults = await record(dir, 2, true, 'b');
    expect(readFileSync(withResults, 'utf8')).toContain('secret-but-masked');
  });

  it('rejects a corrupt line with file:line, or skips it when asked', async () => {
    const dir = mkdtempSync(join(tmpdir(), 'hoop-rec-'));
    const file = await record(dir, 3);
    const lines = readFileSync(file, 'utf8').split('\n');
    lines[2] = lines[2].slice(0, 20);
    writeFileSync(file, lines.join('\n'));
    await expect(collect(file)).rejects.toMatchObject({ code: 'malformed', line: 3, message: `${file}:3: not valid JSON (truncated or corrupt line)` });
    const skipped = await collect(file, true);
    expect(skipped.map((e) => e.type)).toEqual(['header', 'statement', 'bad', 'statement', 'footer']);
  });

  it('reads a recording cut off mid-line (gateway crash) with skipBad', async () => {
    const dir = mkdtempSync(join(tmpdir(), 'hoop-rec-'));
    const file = join(dir, 'cut.jsonl');
    const full = readFileSync(await record(dir, 2), 'utf8').split('\n');
    writeFileSync(file, full.slice(0, 3).join('\n') + '\n' + full[3].slice(0, 10));
    const entries = await collect(file, true);
    expect(entries.map((e) => e.type)).toEqual(['header', 'statement', 'statement', 'bad']);
  });

  it('rejects a future version, a missing header, a statement with an unknown verdict', async () => {
    const dir = mkdtempSync(join(tmpdir(), 'hoop-rec-'));
    const future = join(dir, 'future.jsonl');
    writeFileSync(future, JSON.stringify({ ...header(), type: 'header', version: 2 }) + '\n');
    await expect(collect(future, true)).rejects.toMatchObject({ code: 'future_version', line: 1 });
    const noHeader = join(dir, 'nohdr.jsonl');
    writeFileSync(noHeader, JSON.stringify({ type: 'statement', ...event(1) }) + '\n');
    await expect(collect(noHeader, true)).rejects.toMatchObject({ code: 'missing_header' });
    const empty = join(dir, 'empty.jsonl');
    writeFileSync(empty, '');
    await expect(collect(empty)).rejects.toMatchObject({ code: 'missing_header' });
    const badVerdict = join(dir, 'verdict.jsonl');
    writeFileSync(badVerdict, JSON.stringify({ ...header(), type: 'header', version: 1 }) + '\n');
    appendFileSync(badVerdict, JSON.stringify({ type: 'statement', ...event(1), verdict: 'maybe' }) + '\n');
    await expect(collect(badVerdict)).rejects.toMatchObject({ code: 'malformed', line: 2 });
    await expect(collect(join(dir, 'missing.jsonl'))).rejects.toMatchObject({ code: 'unreadable' });
  });

  it('streams: entries arrive before the input ends (so memory stays flat on any size)', async () => {
    // A named pipe whose writer waits for the reader: a reader that needed the whole input first
    // (or a size, or EOF) would never yield, and this test would time out.
    const dir = mkdtempSync(join(tmpdir(), 'hoop-rec-'));
    const fifo = join(dir, 'live.jsonl');
    execFileSync('mkfifo', [fifo]);
    const writer = createWriteStream(fifo);
    const seen: string[] = [];
    let wake: () => void = () => undefined;
    const reading = (async () => {
      for await (const e of readRecording(fifo)) {
        seen.push(e.type === 'statement' ? e.event.text : e.type);
        wake();
      }
    })();
    const waitSeen = (n: number) => new Promise<void>((resolve) => {
      wake = () => seen.length >= n && resolve();
      wake();
    });
    writer.write(JSON.stringify({ ...header(), type: 'header', version: 1 }) + '\n');
    writer.write(JSON.stringify({ type: 'statement', ...event(0) }) + '\n');
    await waitSeen(2);
    expect(seen).toEqual(['header', 'SELECT 0']);
    writer.write(JSON.stringify({ type: 'statement', ...event(1) }) + '\n');
    await waitSeen(3);
    writer.end(JSON.stringify({ type: 'footer', ended_at: '2026-11-26T01:05:00.000Z', statements: 2, verdicts: { allow: 2 } }) + '\n');
    await reading;
    expect(seen).toEqual(['header', 'SELECT 0', 'SELECT 1', 'footer']);
  });

  it('summarises sessions for `sessions list`', async () => {
    const dir = mkdtempSync(join(tmpdir(), 'hoop-rec-'));
    await record(dir, 4, false, 'b');
    await record(dir, 2, false, 'a');
    const files = listRecordingFiles(dir);
    expect(files.map((f) => f.split('/').pop())).toEqual(['20261126T010203Z-a.jsonl', '20261126T010203Z-b.jsonl']);
    const s = await summarizeRecording(files[1]);
    expect(s).toMatchObject({ session_id: 'b', sub: 'agent-7', resource: 'prod-main', statements: 4, duration_ms: 180_000, verdicts: { allow: 1, mask: 1, block: 1, approve: 1 } });
  });
});

describe('asciicast files of ssh channels (recording.results)', () => {
  const sshHeader = (): SessionHeader => ({ ...header('ssh-1'), resource: { kind: 'ssh', name: 'bastion-1', labels: {} } });

  it('are only opened with results; hold output decoded across pieces, resizes, and a marker for what a stalled disk left out', async () => {
    const dir = mkdtempSync(join(tmpdir(), 'hoop-cast-'));
    const off = await createSessionRecorder({ dir }).open(header('quiet'));
    expect(off.cast?.({ cols: 80, rows: 24, title: 'ls' })).toBeUndefined();
    await off.close(new Date().toISOString());

    const rec = await createSessionRecorder({ dir, results: true }).open(sshHeader());
    const c = rec.cast!({ cols: 100, rows: 30, term: 'xterm', title: 'cat big' })!;
    expect(c.file).toMatch(/-ssh-1\.1\.cast$/);
    const e = Buffer.from('é');
    c.output(Buffer.concat([Buffer.from('caf'), e.subarray(0, 1)]));
    c.output(Buffer.concat([e.subarray(1), Buffer.from('\n')]));
    c.resize(132, 40);
    // 20 MB in one turn: the stream cannot write any of it meanwhile, so past the backlog it is left out.
    const chunk = Buffer.alloc(1024 * 1024, 'x');
    for (let i = 0; i < 20; i++) c.output(chunk);
    c.end();
    c.end();
    await rec.close(new Date().toISOString());
    const { parseCast } = await import('./cast.ts');
    const cast = parseCast(readFileSync(join(dir, c.file), 'utf8'));
    expect(cast.header).toMatchObject({ version: 2, width: 100, height: 30, title: 'cat big', env: { TERM: 'xterm' } });
    expect(cast.events[0]![2]).toBe('caf');
    expect(cast.events[1]![2]).toBe('é\n');
    expect(cast.events[2]!.slice(1)).toEqual(['r', '132x40']);
    const kept = cast.events.filter((x) => x[1] === 'o').slice(2).reduce((n, x) => n + x[2].length, 0);
    expect(kept).toBeGreaterThan(0);
    expect(kept).toBeLessThanOrEqual(9 * 1024 * 1024);
    const marker = cast.events.filter((x) => x[1] === 'm');
    expect(marker).toHaveLength(1);
    expect(marker[0]![2]).toBe(`hoop: ${20 * 1024 * 1024 - kept} bytes of output not recorded (the recording fell behind)`);
  });
});
