// Progress on stderr for long commands: a bar redrawn in place on a terminal; on anything else
// (CI logs, pipes, `CI=true`) plain lines, at most one every few seconds, so logs stay readable.

export interface ProgressState {
  done: number;
  total: number;
  /** e.g. `120000 statements` */
  detail: string;
}

export interface Progress {
  update(s: ProgressState): void;
  finish(summary: string): void;
}

export function createProgress(label: string, opts: { stream?: NodeJS.WriteStream; env?: NodeJS.ProcessEnv; intervalMs?: number } = {}): Progress {
  const stream = opts.stream ?? process.stderr;
  const env = opts.env ?? process.env;
  const ci = env.CI !== undefined && env.CI !== '' && env.CI !== 'false' && env.CI !== '0';
  const tty = stream.isTTY === true && !ci;
  const interval = opts.intervalMs ?? (tty ? 100 : 5000);
  let last = 0;
  let drawn = false;
  return {
    update(s) {
      const now = Date.now();
      if (now - last < interval && s.done < s.total) return;
      last = now;
      if (tty) {
        const width = 30;
        const filled = s.total > 0 ? Math.round((s.done / s.total) * width) : 0;
        stream.write(`\r${label} [${'#'.repeat(filled)}${'.'.repeat(width - filled)}] ${s.done}/${s.total} files, ${s.detail}\u001b[K`);
        drawn = true;
      } else {
        stream.write(`${label}: ${s.done}/${s.total} files, ${s.detail}\n`);
      }
    },
    finish(summary) {
      if (tty && drawn) stream.write('\r\u001b[K');
      stream.write(`${label}: ${summary}\n`);
    },
  };
}
