// Reading and replaying the asciicast v2 files the gateway writes for ssh channels (writer.ts
// `cast`; https://docs.asciinema.org/manual/asciicast/v2/): `hoop sessions play` and any asciicast
// player (`asciinema play FILE`) read the same file.

import { readFileSync } from 'node:fs';
import { basename, dirname, join } from 'node:path';
import { readRecording } from './reader.ts';
import { listRecordingFiles } from './summary.ts';

export interface CastHeader {
  version: 2;
  width: number;
  height: number;
  timestamp?: number;
  title?: string;
  env?: Record<string, string>;
}

export type CastEvent = [seconds: number, type: 'o' | 'i' | 'r' | 'm', data: string];

export interface Cast {
  header: CastHeader;
  events: CastEvent[];
}

/** Parses an asciicast v2 text; throws with the line number on anything else. */
export function parseCast(text: string, name = 'cast'): Cast {
  const lines = text.split('\n').filter((l) => l.trim() !== '');
  const header = JSON.parse(lines[0] ?? 'null') as CastHeader | null;
  if (!header || header.version !== 2 || typeof header.width !== 'number' || typeof header.height !== 'number') throw new Error(`${name}:1: not an asciicast v2 header`);
  const events: CastEvent[] = [];
  for (const [i, line] of lines.slice(1).entries()) {
    let e: unknown;
    try {
      e = JSON.parse(line);
    } catch {
      throw new Error(`${name}:${i + 2}: not JSON`);
    }
    if (!Array.isArray(e) || typeof e[0] !== 'number' || typeof e[1] !== 'string' || typeof e[2] !== 'string') throw new Error(`${name}:${i + 2}: not an asciicast event`);
    events.push(e as CastEvent);
  }
  return { header, events };
}

export function readCast(file: string): Cast {
  return parseCast(readFileSync(file, 'utf8'), basename(file));
}

/** The casts of a session, in the order their requests ended: `what` is a .cast file, a recording (.jsonl), or a session id in `dir`. */
export async function sessionCasts(what: string, dir: string): Promise<{ recording?: string; casts: { file: string; title: string }[] } | undefined> {
  if (what.endsWith('.cast')) return { casts: [{ file: what, title: basename(what) }] };
  let recording: string | undefined;
  if (what.endsWith('.jsonl')) recording = what;
  else {
    const safe = what.replace(/[^A-Za-z0-9_.-]/g, '_');
    recording = listRecordingFiles(dir).find((f) => basename(f).endsWith(`-${safe}.jsonl`));
  }
  if (!recording) return undefined;
  const casts: { file: string; title: string }[] = [];
  for await (const e of readRecording(recording)) {
    if (e.type === 'statement' && e.event.ssh?.cast) casts.push({ file: join(dirname(recording), basename(e.event.ssh.cast)), title: e.event.text });
  }
  return { recording, casts };
}

export interface PlayOptions {
  /** 2 plays twice as fast; default 1. */
  speed?: number;
  /** A pause longer than this (seconds, before speed) is shortened to it; default none. */
  maxIdle?: number;
  write(data: string): void;
  sleep?(ms: number): Promise<void>;
}

/** Writes a cast's output at its own pace (divided by `speed`); resizes and input are not replayed. */
export async function playCast(cast: Cast, o: PlayOptions): Promise<void> {
  const speed = o.speed ?? 1;
  const sleep = o.sleep ?? ((ms: number) => new Promise<void>((r) => setTimeout(r, ms)));
  let last = 0;
  for (const [t, type, data] of cast.events) {
    let gap = Math.max(0, t - last);
    if (o.maxIdle !== undefined) gap = Math.min(gap, o.maxIdle);
    last = t;
    if (gap > 0) await sleep((gap * 1000) / speed);
    if (type === 'o') o.write(data);
  }
}
