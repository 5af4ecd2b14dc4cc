// The policy the gateway enforces, loaded through the engine's public API and reloaded on SIGHUP
// and on file change. A reload compiles the new set off to the side and swaps one reference, so a
// statement is decided entirely by the old set or entirely by the new one. An invalid set never
// replaces a valid one: the old one stays and the diagnostics are logged, rendered with carets.

import { watch, type FSWatcher } from 'node:fs';
import { compilePolicy, loadPolicySources, type PreparedPolicy } from '../engine/index.ts';
import { renderDiagnostics } from '../language/render.ts';

export interface ReloadResult {
  ok: boolean;
  /** Rendered diagnostics (errors and warnings), one string per diagnostic block. */
  diagnostics: string[];
  /** The hash of the set now in force. */
  hash?: string;
}

export interface PolicySource {
  /** The set in force; undefined only until the first successful load. */
  current(): PreparedPolicy | undefined;
  /** Recompiles now. On failure the previous set stays in force. Concurrent calls are serialised. */
  reload(): Promise<ReloadResult>;
  /** Called after every successful swap (not for rejected sets). Returns an unsubscribe function. */
  onChange(listener: (policy: PreparedPolicy, previous: PreparedPolicy | undefined) => void): () => void;
  close(): void;
}

export interface PolicySourceOptions {
  /** A `.hoop` file or a folder of them. */
  path: string;
  /** Watch the path (fs.watch, debounced). Default true. */
  watch?: boolean;
  /** Reload on SIGHUP. Default: same as `watch`. */
  sighup?: boolean;
  debounceMs?: number;
  /**
   * A reload reads the files twice, this far apart (ms), and compiles only when both reads agree.
   * Default 50. Editors and deploy tools often write in place (truncate, then write): a read in
   * between sees an empty or cut file, which may well compile — to a policy with rules missing.
   */
  settleMs?: number;
  log?: (line: string) => void;
}

/** Re-reads before a reload gives up on files that keep changing (the next change event retries). */
const MAX_SETTLE_READS = 10;

type LoadedSources = Awaited<ReturnType<typeof loadPolicySources>>;

function sameSources(a: LoadedSources, b: LoadedSources): boolean {
  if (a.sources.length !== b.sources.length || a.diagnostics.length !== b.diagnostics.length) return false;
  return a.sources.every((s, i) => s.file === b.sources[i]!.file && s.text === b.sources[i]!.text);
}

/** Loads the policy once (awaiting the first compile) and keeps it current. */
export async function openPolicySource(opts: PolicySourceOptions): Promise<{ source: PolicySource; first: ReloadResult }> {
  const log = opts.log ?? ((line: string) => process.stderr.write(`hoop: ${line}\n`));
  let current: PreparedPolicy | undefined;
  const listeners = new Set<(p: PreparedPolicy, prev: PreparedPolicy | undefined) => void>();
  let inFlight: Promise<ReloadResult> | undefined;
  let again = false;
  let lastRejected: string | undefined;

  /** The files as they stand once two reads `settleMs` apart agree, or undefined if they never did. */
  async function settledSources(): Promise<LoadedSources | undefined> {
    const settleMs = opts.settleMs ?? 50;
    let loaded = await loadPolicySources(opts.path);
    for (let i = 0; i < MAX_SETTLE_READS; i++) {
      await new Promise((r) => setTimeout(r, settleMs));
      const again = await loadPolicySources(opts.path);
      if (sameSources(loaded, again)) return loaded;
      loaded = again;
    }
    return undefined;
  }

  async function compileOnce(): Promise<ReloadResult> {
    const loaded = await settledSources();
    if (!loaded) {
      log(`policy files under ${opts.path} are still changing; keeping the policy in force${current ? ` (${current.hash.slice(0, 12)})` : ''} until they settle`);
      return { ok: false, diagnostics: [], hash: current?.hash };
    }
    const texts = new Map(loaded.sources.map((s) => [s.file, s.text]));
    const out = loaded.sources.length > 0 ? compilePolicy(loaded.sources) : undefined;
    const diags = [...loaded.diagnostics, ...(out?.diagnostics ?? [])];
    const rendered = diags.length > 0 ? renderDiagnostics(diags, texts).trimEnd().split('\n\n') : [];
    const failed = loaded.diagnostics.some((d) => d.severity === 'error') || !out?.policy;
    if (failed || !out?.policy) {
      // A save and a SIGHUP for the same edit compile the same broken set twice: say it once.
      const text = rendered.join('\n\n');
      if (text === lastRejected) return { ok: false, diagnostics: rendered, hash: current?.hash };
      lastRejected = text;
      log(
        current
          ? `policy reload rejected, keeping the policy in force (${current.hash.slice(0, 12)}):\n${rendered.join('\n\n')}`
          : `policy ${opts.path} does not compile:\n${rendered.join('\n\n')}`,
      );
      return { ok: false, diagnostics: rendered, hash: current?.hash };
    }
    lastRejected = undefined;
    const next = out.policy;
    const previous = current;
    if (previous && previous.hash === next.hash) return { ok: true, diagnostics: rendered, hash: next.hash };
    current = next;
    if (previous) log(`policy reloaded: ${next.ruleCount} rules (${next.hash.slice(0, 12)})`);
    for (const l of listeners) {
      try {
        l(next, previous);
      } catch (err) {
        log(`policy change listener failed: ${(err as Error).message}`);
      }
    }
    return { ok: true, diagnostics: rendered, hash: next.hash };
  }

  function reload(): Promise<ReloadResult> {
    // One compile at a time; a request arriving during a compile schedules exactly one more,
    // so the last edit always gets compiled.
    if (inFlight) {
      again = true;
      return inFlight.then(() => (inFlight ? inFlight : reload()));
    }
    inFlight = compileOnce().finally(() => {
      inFlight = undefined;
      if (again) {
        again = false;
        void reload();
      }
    });
    return inFlight;
  }

  const first = await reload();

  let watcher: FSWatcher | undefined;
  let timer: NodeJS.Timeout | undefined;
  const onHup = (): void => {
    log('SIGHUP: reloading the policy');
    void reload();
  };
  const sighup = opts.sighup ?? opts.watch !== false;
  if (sighup) process.on('SIGHUP', onHup);
  if (opts.watch !== false) {
    try {
      watcher = watch(opts.path, { recursive: true }, () => {
        // Editors save in several steps (truncate, write, rename): wait for the burst to end.
        clearTimeout(timer);
        timer = setTimeout(() => void reload(), opts.debounceMs ?? 200);
      });
      watcher.on('error', (err) => log(`policy watch stopped (${err.message}); SIGHUP still reloads`));
    } catch (err) {
      log(`cannot watch ${opts.path} (${(err as Error).message}); SIGHUP still reloads`);
    }
  }

  return {
    first,
    source: {
      current: () => current,
      reload,
      onChange(listener) {
        listeners.add(listener);
        return () => listeners.delete(listener);
      },
      close() {
        if (sighup) process.off('SIGHUP', onHup);
        clearTimeout(timer);
        watcher?.close();
      },
    },
  };
}
