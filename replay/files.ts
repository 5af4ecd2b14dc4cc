// `--sessions DIR|FILE...` → the recording files to read, in a stable order (file name, then path),
// so the same recordings always give the same report whatever order the paths were given in.

import { statSync } from 'node:fs';
import { basename } from 'node:path';
import { listRecordingFiles } from '../proxy/recording/index.ts';

export type FilesResult = { ok: true; files: string[] } | { ok: false; message: string };

export function recordingFiles(paths: readonly string[]): FilesResult {
  const files = new Set<string>();
  for (const p of paths) {
    let isDir: boolean;
    try {
      isDir = statSync(p).isDirectory();
    } catch {
      return { ok: false, message: `no such file or folder: ${p}` };
    }
    if (isDir) for (const f of listRecordingFiles(p)) files.add(f);
    else files.add(p);
  }
  const out = [...files].sort((a, b) => {
    const x = basename(a);
    const y = basename(b);
    if (x !== y) return x < y ? -1 : 1;
    return a < b ? -1 : a > b ? 1 : 0;
  });
  return { ok: true, files: out };
}
