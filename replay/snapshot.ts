// Verdict snapshots: the decision of every distinct recorded statement under a policy, written as
// sorted JSON Lines so that a policy change shows up in a pull request as a readable diff.
//
//   {"type":"snapshot","version":1}
//   {"key":"3f9c…","resource":"postgres/prod-main","sub":"agent-7","groups":["data-reader"],"text":"SELECT …","verdict":"mask","masks":[…],"rules":[…]}
//
// A statement is identified by `key`: sha256 over resource, subject, actor, groups and the exact
// text (not the token id, the time or the session, so the same statement by the same agent is one
// entry however often it ran). What is compared is the verdict, the masks and the approvers (as
// in a dry-run; rule ids are shown, not compared). If one key is decided differently on different
// occasions (a condition on the context, a different prepared statement behind `EXECUTE`), each
// distinct decision is its own line.

import { createHash } from 'node:crypto';
import { createReadStream } from 'node:fs';
import { createInterface } from 'node:readline';
import type { PreparedPolicy, Verdict } from '../engine/index.ts';
import { readRecording, RecordingError, type RecordingHeader } from '../proxy/recording/index.ts';
import { decidedOutcome } from './compare.ts';
import { createRedecider, type Classifiers } from './redecide.ts';

export const SNAPSHOT_VERSION = 1;

export interface SnapshotEntry {
  key: string;
  resource: string;
  sub: string;
  actor?: string;
  groups: string[];
  text: string;
  verdict: Verdict;
  masks?: string[];
  approvers?: string[];
  rules: string[];
}

export type SnapshotResult = { ok: true; entries: SnapshotEntry[]; statements: number; bad_lines: number } | { ok: false; error: RecordingError };

export function statementKey(header: Pick<RecordingHeader, 'identity' | 'resource'>, text: string): string {
  const id = header.identity;
  const material = JSON.stringify([header.resource.kind, header.resource.name, id.sub, id.actor ?? '', [...id.groups].sort(), text]);
  return createHash('sha256').update(material).digest('hex').slice(0, 24);
}

/** What a snapshot compares: two entries with the same key and outcome are the same decision. */
export function outcomeOf(e: Pick<SnapshotEntry, 'verdict' | 'masks' | 'approvers'>): string {
  return JSON.stringify([e.verdict, e.masks ?? [], e.approvers ?? []]);
}

/** Decide every recorded statement of `files` under `policy`; deduplicated and sorted. */
export async function buildSnapshot(policy: PreparedPolicy, classifiers: Classifiers, files: readonly string[], opts: { skipBad?: boolean } = {}): Promise<SnapshotResult> {
  const redecider = createRedecider(policy, classifiers);
  const byKey = new Map<string, Map<string, SnapshotEntry>>();
  let statements = 0;
  let bad = 0;
  for (const file of files) {
    try {
      let header: RecordingHeader | undefined;
      let session: ReturnType<typeof redecider.session> | undefined;
      for await (const e of readRecording(file, { skipBad: opts.skipBad })) {
        if (e.type === 'header') {
          header = e.header;
          session = redecider.session(header);
        } else if (e.type === 'bad') bad += 1;
        else if (e.type === 'statement') {
          statements += 1;
          const h = header!;
          const o = decidedOutcome(session!.decide(e.event).decision);
          const key = statementKey(h, e.event.text);
          const entry: SnapshotEntry = {
            key,
            resource: `${h.resource.kind}/${h.resource.name}`,
            sub: h.identity.sub,
            ...(h.identity.actor ? { actor: h.identity.actor } : {}),
            groups: [...h.identity.groups].sort(),
            text: e.event.text,
            verdict: o.verdict,
            ...(o.masks && o.masks.length > 0 ? { masks: o.masks } : {}),
            ...(o.approvers.length > 0 ? { approvers: o.approvers } : {}),
            rules: o.rules,
          };
          let variants = byKey.get(key);
          if (!variants) byKey.set(key, (variants = new Map()));
          const outcome = outcomeOf(entry);
          if (!variants.has(outcome)) variants.set(outcome, entry);
        }
      }
    } catch (err) {
      if (!(err instanceof RecordingError)) throw err;
      if (!opts.skipBad || err.code === 'future_version' || err.code === 'unreadable') return { ok: false, error: err };
      bad += 1;
    }
  }
  const entries = [...byKey.values()].flatMap((v) => [...v.values()]);
  entries.sort(compareEntries);
  return { ok: true, entries, statements, bad_lines: bad };
}

/** Readable order for diffs: resource, subject, text, then the rest. */
function compareEntries(a: SnapshotEntry, b: SnapshotEntry): number {
  const ka = [a.resource, a.sub, a.text, a.key, outcomeOf(a)];
  const kb = [b.resource, b.sub, b.text, b.key, outcomeOf(b)];
  for (let i = 0; i < ka.length; i++) if (ka[i] !== kb[i]) return ka[i]! < kb[i]! ? -1 : 1;
  return 0;
}

export function serializeSnapshot(entries: readonly SnapshotEntry[]): string {
  const lines = [JSON.stringify({ type: 'snapshot', version: SNAPSHOT_VERSION })];
  for (const e of entries) lines.push(JSON.stringify(e));
  return `${lines.join('\n')}\n`;
}

export type ReadSnapshotResult = { ok: true; entries: SnapshotEntry[] } | { ok: false; message: string };

/** Reads a snapshot file; a bad line is an error naming file:line. */
export async function readSnapshot(file: string): Promise<ReadSnapshotResult> {
  const entries: SnapshotEntry[] = [];
  let lineNo = 0;
  try {
    const rl = createInterface({ input: createReadStream(file), crlfDelay: Infinity });
    for await (const line of rl) {
      lineNo += 1;
      if (line.trim() === '') continue;
      let obj: Record<string, unknown>;
      try {
        obj = JSON.parse(line) as Record<string, unknown>;
      } catch {
        return { ok: false, message: `${file}:${lineNo}: not valid JSON` };
      }
      if (lineNo === 1) {
        if (obj?.type !== 'snapshot') return { ok: false, message: `${file}:1: not a hoop verdict snapshot (the first line must be {"type":"snapshot",...})` };
        if (typeof obj.version !== 'number' || obj.version > SNAPSHOT_VERSION) return { ok: false, message: `${file}:1: snapshot version ${String(obj.version)} is not supported (this hoop writes ${SNAPSHOT_VERSION})` };
        continue;
      }
      if (typeof obj?.key !== 'string' || typeof obj.verdict !== 'string' || typeof obj.text !== 'string') return { ok: false, message: `${file}:${lineNo}: an entry needs key, text and verdict` };
      entries.push(obj as unknown as SnapshotEntry);
    }
  } catch (err) {
    return { ok: false, message: `${file}: cannot read: ${(err as NodeJS.ErrnoException).code ?? (err as Error).message}` };
  }
  if (lineNo === 0) return { ok: false, message: `${file}:1: empty file: not a hoop verdict snapshot` };
  return { ok: true, entries };
}

export interface SnapshotChange {
  kind: 'changed' | 'new';
  /** The current decision(s) for the key. */
  now: SnapshotEntry[];
  /** What the snapshot holds for the key (empty for `new`). */
  was: SnapshotEntry[];
}

export interface SnapshotDiff {
  /** Keys whose decisions differ from the snapshot, or that the snapshot lacks: failures. */
  changes: SnapshotChange[];
  /** Snapshot keys no recording has any more (harmless; `--update-snapshot` drops them). */
  stale: number;
}

export function diffSnapshot(expected: readonly SnapshotEntry[], current: readonly SnapshotEntry[]): SnapshotDiff {
  const group = (entries: readonly SnapshotEntry[]) => {
    const m = new Map<string, SnapshotEntry[]>();
    for (const e of entries) {
      const list = m.get(e.key);
      if (list) list.push(e);
      else m.set(e.key, [e]);
    }
    return m;
  };
  const was = group(expected);
  const now = group(current);
  const changes: SnapshotChange[] = [];
  for (const [key, list] of now) {
    const before = was.get(key);
    if (!before) {
      changes.push({ kind: 'new', now: list, was: [] });
      continue;
    }
    const a = new Set(before.map(outcomeOf));
    const b = new Set(list.map(outcomeOf));
    if (a.size !== b.size || [...a].some((x) => !b.has(x))) changes.push({ kind: 'changed', now: list, was: before });
  }
  let stale = 0;
  for (const key of was.keys()) if (!now.has(key)) stale += 1;
  return { changes, stale };
}
