// The one seam between the SSH front door and enforcement: "decide this request → outcome".
//
// The front door (server.ts, channels) speaks SSH only: it turns each channel request into an
// `SshRequest`, asks `decide`, and speaks the outcome in SSH terms (run upstream, stderr + exit 126,
// SSH_FX_PERMISSION_DENIED). Classification, the policy, approvals, audit and recording are all on
// the other side of this interface (DESIGN.md "Layout": a front door never calls the engine, the
// audit log or the approval store itself).

import type { Identity, Resource, SftpOp } from '../../stdlib/facts.ts';
import type { DetectorMask } from '../../engine/response.ts';
import type { ApprovalMode, ChannelCast, ChannelCastStart, TokenResult } from '../ports.ts';

export type SshRequest =
  /** An exec channel: the command string exactly as the client sent it. */
  | { type: 'exec'; command: string; /** The login's working directory, when the command is a file transfer with relative paths. */ cwd?: string }
  /** A shell channel (with or without a PTY). */
  | { type: 'interactive'; pty: boolean; term?: string }
  /** One SFTP request; paths already normalised and absolute (sftp-paths.ts). */
  | { type: 'sftp'; op: SftpOp; path: string; target?: string }
  | { type: 'forward'; host: string; port: number }
  /** Requests the gateway does not relay unless a rule says so: agent/X11 forwarding, other subsystems. */
  | { type: 'other'; request: string };

/** What the front door learns about the exec it is about to run (file transfers hidden in commands). */
export interface ExecFacts {
  /** Legacy `scp -t/-f` or `rsync --server`: decided as file operations, not as a shell command. */
  transfer?: { via: 'scp' | 'rsync'; op: 'read' | 'write'; paths: string[] };
}

export type SshOutcome =
  | {
      kind: 'forward';
      /** Content detectors to run on stdout/stderr (exec and interactive channels). */
      masks: DetectorMask[];
      /** The rules that allowed it (for messages). */
      rules: string[];
      /**
       * `limit time`: the smallest of the permits' (DESIGN.md "Limits": an ssh exec is ended after
       * it). The front door ends the running command (exec or shell) once it has run `ms`, tells the
       * client on stderr (`message`) and answers exit status 124; `finish` gets `limited`.
       */
      timeLimit?: { ms: number; rule: string; message: string };
      /**
       * Resolves once the request's audit record is durable enough for its result to be answered
       * (a command's exit status, an SFTP write's status); rejects when it cannot be (end the session).
       */
      beforeAnswer(): Promise<void>;
      /** Called once when the request has finished (exit status, bytes), for audit and recording. */
      finish(result: SshResult): void;
      /**
       * Records the channel's output as the client sees it (asciicast v2), when output is recorded
       * (`recording.results`); undefined otherwise. The front door feeds it what it sends and ends it
       * before `finish`.
       */
      cast(start: ChannelCastStart): ChannelCast | undefined;
    }
  | {
      kind: 'refuse';
      /** One line for the client: `hoop: blocked by <rule>: <message>` and friends. */
      message: string;
      /** The identity's token has expired: the front door ends the connection's channels. */
      expired?: boolean;
      approvalId?: string;
    };

export interface SshResult {
  exitCode?: number;
  signal?: string;
  bytesIn: number;
  bytesOut: number;
  error?: string;
  /** The asciicast file of its output (from `cast`). */
  cast?: string;
  /** The gateway ended the command because it ran past its `limit time` (audited as failed, with the rule). */
  limited?: {
    ms: number;
    rule: string;
    /** The last signal sent upstream before the channel ended (`TERM`, `KILL`). */
    signal?: string;
    /** The upstream never closed the command's channel (sshd could not signal it): the client was answered without it. */
    unconfirmed?: boolean;
  };
}

export interface SshHooks {
  /** Approve (hold): called once with `hoop: waiting for approval <id> from <group>` before the wait. */
  onHold(message: string): void;
  /** Aborts a held request (the channel closed). */
  signal?: AbortSignal;
}

export interface SshSessionStart {
  sessionId: string;
  identity: Identity;
  /** epoch ms */
  expiresAt: number;
  resource: Resource;
  clientAddr: string;
  /** The SSH user name the client logged in with (it selects the resource). */
  user: string;
  approvalMode: ApprovalMode;
}

export interface SshEnforcedSession {
  decide(request: SshRequest, hooks: SshHooks): Promise<SshOutcome>;
  /** The facts the front door needs before running an exec (legacy scp and rsync are file transfers). */
  execFacts(command: string): ExecFacts;
  close(): Promise<void>;
}

export interface SshConnectionRefusal {
  sessionId: string;
  clientAddr: string;
  resource?: Resource;
  identity?: Identity;
  claims?: Record<string, unknown>;
  /** `code: detail`, e.g. `bad_signature: ...`, `upstream_host_key: ...` */
  reason: string;
}

export interface SshEnforcement {
  verifyToken(token: string): Promise<TokenResult>;
  /** Audits a refused connection (bad token, unknown resource, upstream host key mismatch...). */
  refused(refusal: SshConnectionRefusal): Promise<void>;
  open(start: SshSessionStart): Promise<SshEnforcedSession>;
}
