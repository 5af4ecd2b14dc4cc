// The `run` tool's upstream side: one command on an ssh resource, decided through the SSH front
// door's enforcement port (proxy/ssh/enforcement-port.ts: the same shell classification, policy,
// approvals in return mode, audit and recording as `ssh resource@gateway 'command'`), then run on
// the gateway's own SSH connection to the resource (gateway-held key, pinned host key), its stdout
// and stderr masked by the verdict's content detectors and capped.
//
// Each call opens and closes its own SSH connection and enforcement session: a command never
// shares a shell, a working directory or an environment with another call.

import type { Resource } from '../../stdlib/facts.ts';
import type { SshUpstream } from '../ssh/config.ts';
import type { SshEnforcement, SshResult } from '../ssh/enforcement-port.ts';
import { TIME_LIMIT_EXIT } from '../ssh/server.ts';
import { buildStreamMasker } from '../ssh/stream-mask.ts';
import { connectUpstream, signalUpstream } from '../ssh/upstream.ts';
import type { McpCaller } from './port.ts';

export type RunResult =
  | { ok: true; exitCode: number | null; signal?: string; stdout: string; stderr: string; truncated: boolean; rules: string[] }
  | { ok: false; reason: 'blocked' | 'approval_required' | 'unsupported' | 'upstream_error' | 'token_expired'; message: string; approvalId?: string };

export interface SshRunnerOptions {
  enforcement: SshEnforcement;
  upstreams: ReadonlyMap<string, SshUpstream>;
  hashKey?: string;
  maxBytes: number;
  timeoutMs: number;
}

export class SshRunner {
  constructor(private readonly opts: SshRunnerOptions) {}

  async run(caller: McpCaller, resource: Resource, command: string): Promise<RunResult> {
    const upstream = this.opts.upstreams.get(resource.name);
    if (!upstream) return { ok: false, reason: 'unsupported', message: `hoop: ${resource.name} has no ssh upstream configured` };
    const session = await this.opts.enforcement.open({
      sessionId: `${caller.sessionId}-${resource.name}-${Date.now().toString(36)}`,
      identity: caller.identity,
      expiresAt: caller.expiresAt,
      resource,
      clientAddr: caller.clientAddr,
      user: resource.name,
      approvalMode: 'return',
    });
    try {
      // A file transfer hidden in a command (legacy scp, rsync --server) needs a stdin stream a tool call does not have.
      if (session.execFacts(command).transfer) {
        return { ok: false, reason: 'unsupported', message: 'hoop: blocked: scp and rsync transfers are not available through MCP tools' };
      }
      const out = await session.decide({ type: 'exec', command }, { onHold: () => undefined });
      if (out.kind === 'refuse') {
        if (out.expired) return { ok: false, reason: 'token_expired', message: out.message };
        return out.approvalId
          ? { ok: false, reason: 'approval_required', message: out.message, approvalId: out.approvalId }
          : { ok: false, reason: 'blocked', message: out.message };
      }
      const masker = buildStreamMasker(out.masks, this.opts.hashKey);
      if (!masker.ok) {
        out.finish({ bytesIn: 0, bytesOut: 0, error: masker.reason });
        return { ok: false, reason: 'blocked', message: `hoop: blocked: ${masker.reason}` };
      }
      const outMask = masker.masker;
      const errMaskBuild = buildStreamMasker(out.masks, this.opts.hashKey);
      const errMask = errMaskBuild.ok ? errMaskBuild.masker : outMask;
      let limited: SshResult['limited'];
      const conn = await connectUpstream(upstream);
      if (!conn.ok) {
        out.finish({ bytesIn: 0, bytesOut: 0, error: conn.reason });
        return { ok: false, reason: 'upstream_error', message: `hoop: ${conn.reason}` };
      }
      const result = await new Promise<{ exitCode: number | null; signal?: string; stdout: Buffer[]; stderr: Buffer[]; bytes: number; truncated: boolean; error?: string }>((resolve) => {
        const stdout: Buffer[] = [];
        const stderr: Buffer[] = [];
        let kept = 0;
        let bytes = 0;
        let truncated = false;
        const keep = (into: Buffer[], b: Buffer) => {
          if (b.length === 0) return;
          if (kept + b.length > this.opts.maxBytes) {
            truncated = true;
            b = b.subarray(0, Math.max(0, this.opts.maxBytes - kept));
          }
          kept += b.length;
          if (b.length > 0) into.push(b);
        };
        let timer: NodeJS.Timeout | undefined;
        let limitTimer: NodeJS.Timeout | undefined;
        conn.conn.exec(command, (err, ch) => {
          if (err) return resolve({ exitCode: null, stdout, stderr, bytes, truncated, error: err.message });
          ch.end();
          let exitCode: number | null = null;
          let signal: string | undefined;
          timer = setTimeout(() => {
            signal = 'timeout';
            ch.close();
          }, this.opts.timeoutMs);
          // limit time (shorter than the tool's own timeout): the command is ended as on the wire
          // (SIGTERM, then the channel closed), with the front door's line on stderr and exit 124.
          const limit = out.timeLimit && out.timeLimit.ms < this.opts.timeoutMs ? out.timeLimit : undefined;
          if (limit) {
            limitTimer = setTimeout(() => {
              limited = { ms: limit.ms, rule: limit.rule, signal: 'TERM' };
              signalUpstream(ch, 'TERM');
              limitTimer = setTimeout(() => {
                ch.close();
                // sshd did not signal it (a root login, a forced command): answer without it.
                limitTimer = setTimeout(() => {
                  limited!.unconfirmed = true;
                  settle();
                }, 2000);
              }, 2000);
            }, limit.ms);
          }
          ch.on('data', (b: Buffer) => {
            bytes += b.length;
            keep(stdout, outMask.push(b));
          });
          ch.stderr.on('data', (b: Buffer) => {
            bytes += b.length;
            keep(stderr, errMask.push(b));
          });
          ch.on('exit', (code: number | null, sig?: string) => {
            exitCode = code;
            if (sig) signal = sig;
            if (!limited) clearTimeout(limitTimer);
          });
          let settled = false;
          const settle = (): void => {
            if (settled) return;
            settled = true;
            clearTimeout(timer);
            clearTimeout(limitTimer);
            keep(stdout, outMask.end());
            keep(stderr, errMask.end());
            if (limited) {
              keep(stderr, Buffer.from(`${out.timeLimit!.message}\n`));
              resolve({ exitCode: TIME_LIMIT_EXIT, ...(signal ? { signal } : {}), stdout, stderr, bytes, truncated });
              return;
            }
            resolve({ exitCode, ...(signal ? { signal } : {}), stdout, stderr, bytes, truncated });
          };
          ch.on('close', settle);
        });
      });
      conn.conn.end();
      out.finish({ ...(limited ? { limited } : {}), ...(result.exitCode !== null ? { exitCode: result.exitCode } : {}), ...(result.signal ? { signal: result.signal } : {}), bytesIn: 0, bytesOut: result.bytes, ...(result.error ? { error: result.error } : {}) });
      // The result is the command's answer: it goes out once its record is durable enough.
      await out.beforeAnswer();
      if (result.error) return { ok: false, reason: 'upstream_error', message: `hoop: the command could not be started: ${result.error}` };
      return {
        ok: true,
        exitCode: result.exitCode,
        ...(result.signal ? { signal: result.signal } : {}),
        stdout: Buffer.concat(result.stdout).toString('utf8'),
        stderr: Buffer.concat(result.stderr).toString('utf8'),
        truncated: result.truncated,
        rules: out.rules,
      };
    } finally {
      await session.close().catch(() => undefined);
    }
  }
}
