// Per-session summaries for `hoop sessions list`, computed by streaming each recording.

import { readdirSync, statSync } from 'node:fs';
import { join } from 'node:path';
import type { Verdict } from '../../engine/response.ts';
import { readRecording } from './reader.ts';
import type { RecordingHeader } from './format.ts';

export interface SessionSummary {
  file: string;
  session_id: string;
  sub: string;
  actor?: string;
  resource: string;
  client_addr: string;
  started_at: string;
  ended_at?: string;
  duration_ms?: number;
  statements: number;
  verdicts: Partial<Record<Verdict, number>>;
  /** Corrupt lines skipped while summarising. */
  bad_lines: number;
}

/** Recording files in `dir` (recursively), sorted by name (= start time). */
export function listRecordingFiles(dir: string): string[] {
  const out: string[] = [];
  const walk = (d: string) => {
    for (const name of readdirSync(d).sort()) {
      const p = join(d, name);
      if (statSync(p).isDirectory()) walk(p);
      else if (name.endsWith('.jsonl')) out.push(p);
    }
  };
  walk(dir);
  return out.sort((a, b) => (a.split('/').pop()! < b.split('/').pop()! ? -1 : 1));
}

export async function summarizeRecording(file: string): Promise<SessionSummary> {
  let header: RecordingHeader | undefined;
  let ended: string | undefined;
  let lastTime: string | undefined;
  let statements = 0;
  let bad = 0;
  const verdicts: SessionSummary['verdicts'] = {};
  for await (const e of readRecording(file, { skipBad: true })) {
    if (e.type === 'header') header = e.header;
    else if (e.type === 'statement') {
      statements += 1;
      verdicts[e.event.verdict] = (verdicts[e.event.verdict] ?? 0) + 1;
      lastTime = e.event.time;
    } else if (e.type === 'footer') ended = e.footer.ended_at;
    else bad += 1;
  }
  const h = header!;
  const end = ended ?? lastTime;
  const duration = end ? Date.parse(end) - Date.parse(h.started_at) : undefined;
  return {
    file,
    session_id: h.session_id,
    sub: h.identity.sub,
    actor: h.identity.actor,
    resource: h.resource.name,
    client_addr: h.client_addr,
    started_at: h.started_at,
    ended_at: ended,
    duration_ms: duration !== undefined && Number.isFinite(duration) ? duration : undefined,
    statements,
    verdicts,
    bad_lines: bad,
  };
}
