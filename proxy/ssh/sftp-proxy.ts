// SFTP through the gateway: the client's SFTP requests are answered by ssh2's SFTP server and
// carried out on an SFTP session of the gateway's own upstream connection, each request decided
// first with its op and its path. A refused request answers SSH_FX_PERMISSION_DENIED with the
// rule in the message, and the session goes on.
//
// Paths: a relative path is resolved against the upstream's working directory (its REALPATH of
// "."), `.`/`..` and repeated slashes are resolved lexically, then symbolic links are resolved by
// the upstream (REALPATH), so `allowed/link-to-etc/passwd` is decided as `/etc/passwd`. Requests
// on a link itself (remove, rename, symlink, lstat, readlink) resolve only the parent directory.
// The operation then runs on the resolved path.

import { posix } from 'node:path';
import ssh2, { type SFTPWrapper, type Client as ClientT, type Attributes, type FileEntry } from 'ssh2';
import type { SftpOp } from '../../stdlib/facts.ts';
import type { SshEnforcedSession, SshOutcome, SshRequest, SshResult } from './enforcement-port.ts';
import { sftpUpstream } from './upstream.ts';
import { normalisePath } from './paths.ts';

export { normalisePath };

const { utils } = ssh2;
const STATUS = utils.sftp.STATUS_CODE;
const OPEN = utils.sftp.OPEN_MODE;

export interface SftpProxyContext {
  session: SshEnforcedSession;
  upstream(): Promise<{ ok: true; conn: ClientT } | { ok: false; reason: string }>;
  decide(req: SshRequest): Promise<SshOutcome>;
  log: (line: string) => void;
}


type Err = Error & { code?: number };

function code(err: Err): number {
  return typeof err.code === 'number' ? err.code : STATUS.FAILURE;
}

interface OpenHandle {
  path: string;
  beforeAnswer: () => Promise<void>;
  finish: (r: SshResult) => void;
  result: SshResult;
}

export function serveSftp(sftp: SFTPWrapper, ctx: SftpProxyContext): void {
  const handles = new Map<string, OpenHandle>();
  let up: SFTPWrapper | undefined;
  let home = '/';
  const ready: Promise<string | undefined> = (async () => {
    const r = await ctx.upstream();
    if (!r.ok) return r.reason;
    try {
      up = await sftpUpstream(r.conn);
    } catch (e) {
      return `the upstream refused SFTP: ${(e as Error).message}`;
    }
    home = await new Promise<string>((resolve) => up!.realpath('.', (err, p) => resolve(err ? '/' : p)));
    up.on('close', () => sftp.end());
    return undefined;
  })();

  const realpath = (p: string): Promise<string | undefined> => new Promise((resolve) => up!.realpath(p, (err, r) => resolve(err ? undefined : r)));

  /** The path the request is decided on and run against. */
  const resolvePath = async (raw: string, onLink: boolean): Promise<string> => {
    const lexical = normalisePath(raw, home);
    if (!onLink) {
      const real = await realpath(lexical);
      if (real) return real;
    }
    if (lexical === '/') return lexical;
    const parent = await realpath(posix.dirname(lexical));
    return parent ? posix.join(parent, posix.basename(lexical)) : lexical;
  };

  /**
   * Decide and run one request. `run` gets the resolved paths and answers the client itself;
   * a refusal (or an upstream that cannot be reached) is answered here.
   */
  const handle = (reqid: number, op: SftpOp, raw: string, onLink: boolean, run: (path: string, outcome: Extract<SshOutcome, { kind: 'forward' }>, target?: string) => void, rawTarget?: string) => {
    void (async () => {
      const failure = await ready;
      if (failure) return sftp.status(reqid, STATUS.FAILURE, `hoop: ${failure}`);
      const path = await resolvePath(raw, onLink);
      const target = rawTarget === undefined ? undefined : op === 'symlink' ? normalisePath(rawTarget, posix.dirname(path)) : await resolvePath(rawTarget, true);
      const outcome = await ctx.decide({ type: 'sftp', op, path, ...(target !== undefined ? { target } : {}) });
      if (outcome.kind === 'refuse') return sftp.status(reqid, STATUS.PERMISSION_DENIED, outcome.message);
      run(path, outcome, target);
    })().catch((e: Error) => {
      ctx.log(`sftp: ${e.message}`);
      sftp.status(reqid, STATUS.FAILURE, 'hoop: internal error');
    });
  };

  /** Answers a plain status from an upstream callback and finishes the request's outcome. */
  const statusOf = (reqid: number, outcome: Extract<SshOutcome, { kind: 'forward' }>) => (err?: Err | null) => {
    outcome.finish({ bytesIn: 0, bytesOut: 0, ...(err ? { error: err.message } : {}) });
    if (err) return sftp.status(reqid, code(err), err.message);
    // A change is not reported done before its audit record is durable.
    outcome.beforeAnswer().then(
      () => sftp.status(reqid, STATUS.OK),
      () => sftp.status(reqid, STATUS.FAILURE, 'hoop: the audit log could not be synced'),
    );
  };

  const attrsOf = (reqid: number, outcome: Extract<SshOutcome, { kind: 'forward' }>) => (err: Err | undefined, attrs: Attributes) => {
    outcome.finish({ bytesIn: 0, bytesOut: 0, ...(err ? { error: err.message } : {}) });
    if (err) sftp.status(reqid, code(err), err.message);
    else sftp.attrs(reqid, attrs);
  };

  /** A handle's operations are covered by the decision that opened it. */
  const withHandle = (reqid: number, h: Buffer, run: (open: OpenHandle) => void) => {
    const open = handles.get(h.toString('hex'));
    if (!open || !up) return sftp.status(reqid, STATUS.FAILURE, 'invalid handle');
    run(open);
  };

  sftp.on('OPEN', (reqid: number, filename: string, flags: number, attrs: Attributes) => {
    const writes = (flags & (OPEN.WRITE | OPEN.APPEND | OPEN.CREAT | OPEN.TRUNC | OPEN.EXCL)) !== 0;
    handle(reqid, writes ? 'write' : 'read', filename, false, (path, outcome) => {
      up!.open(path, flags, attrs, (err, h) => {
        if (err) {
          outcome.finish({ bytesIn: 0, bytesOut: 0, error: err.message });
          return sftp.status(reqid, code(err), err.message);
        }
        handles.set(h.toString('hex'), { path, beforeAnswer: outcome.beforeAnswer, finish: outcome.finish, result: { bytesIn: 0, bytesOut: 0 } });
        sftp.handle(reqid, h);
      });
    });
  });

  sftp.on('READ', (reqid: number, h: Buffer, offset: number, length: number) => {
    withHandle(reqid, h, (open) => {
      const buf = Buffer.allocUnsafe(length);
      up!.read(h, buf, 0, length, offset, (err, n) => {
        if (err) return sftp.status(reqid, code(err), err.message);
        if (n === 0) return sftp.status(reqid, STATUS.EOF);
        open.result.bytesOut += n;
        sftp.data(reqid, buf.subarray(0, n));
      });
    });
  });

  sftp.on('WRITE', (reqid: number, h: Buffer, offset: number, data: Buffer) => {
    withHandle(reqid, h, (open) => {
      up!.write(h, data, 0, data.length, offset, (err) => {
        if (err) return sftp.status(reqid, code(err), err.message);
        open.result.bytesIn += data.length;
        sftp.status(reqid, STATUS.OK);
      });
    });
  });

  sftp.on('FSTAT', (reqid: number, h: Buffer) => {
    withHandle(reqid, h, () => up!.fstat(h, (err, attrs) => (err ? sftp.status(reqid, code(err), err.message) : sftp.attrs(reqid, attrs))));
  });

  sftp.on('FSETSTAT', (reqid: number, h: Buffer, attrs: Attributes) => {
    // Changing a file's attributes through a handle is a setstat of its path, whatever the handle was opened for.
    withHandle(reqid, h, (open) => handle(reqid, 'setstat', open.path, true, (_p, outcome) => up!.fsetstat(h, attrs, statusOf(reqid, outcome))));
  });

  sftp.on('CLOSE', (reqid: number, h: Buffer) => {
    withHandle(reqid, h, (open) => {
      handles.delete(h.toString('hex'));
      up!.close(h, (err) => {
        open.finish({ ...open.result, ...(err ? { error: err.message } : {}) });
        if (err) return sftp.status(reqid, code(err), err.message);
        open.beforeAnswer().then(
          () => sftp.status(reqid, STATUS.OK),
          () => sftp.status(reqid, STATUS.FAILURE, 'hoop: the audit log could not be synced'),
        );
      });
    });
  });

  sftp.on('OPENDIR', (reqid: number, raw: string) => {
    handle(reqid, 'list', raw, false, (path, outcome) => {
      up!.opendir(path, (err, h) => {
        if (err) {
          outcome.finish({ bytesIn: 0, bytesOut: 0, error: err.message });
          return sftp.status(reqid, code(err), err.message);
        }
        handles.set(h.toString('hex'), { path, beforeAnswer: outcome.beforeAnswer, finish: outcome.finish, result: { bytesIn: 0, bytesOut: 0 } });
        sftp.handle(reqid, h);
      });
    });
  });

  sftp.on('READDIR', (reqid: number, h: Buffer) => {
    withHandle(reqid, h, () => {
      (up!.readdir as unknown as (h: Buffer, o: { full: boolean }, cb: (err: Err | undefined, list: FileEntry[]) => void) => void).call(up, h, { full: true }, (err, list) => {
        if (err) return sftp.status(reqid, code(err), err.message);
        sftp.name(reqid, list);
      });
    });
  });

  const statLike = (event: 'STAT' | 'LSTAT') =>
    sftp.on(event, (reqid: number, raw: string) => {
      handle(reqid, 'stat', raw, event === 'LSTAT', (path, outcome) => (event === 'STAT' ? up!.stat(path, attrsOf(reqid, outcome)) : up!.lstat(path, attrsOf(reqid, outcome))));
    });
  statLike('STAT');
  statLike('LSTAT');

  sftp.on('SETSTAT', (reqid: number, raw: string, attrs: Attributes) => {
    handle(reqid, 'setstat', raw, false, (path, outcome) => up!.setstat(path, attrs, statusOf(reqid, outcome)));
  });

  sftp.on('REMOVE', (reqid: number, raw: string) => {
    handle(reqid, 'remove', raw, true, (path, outcome) => up!.unlink(path, statusOf(reqid, outcome)));
  });

  sftp.on('RMDIR', (reqid: number, raw: string) => {
    handle(reqid, 'rmdir', raw, true, (path, outcome) => up!.rmdir(path, statusOf(reqid, outcome)));
  });

  sftp.on('MKDIR', (reqid: number, raw: string, attrs: Attributes) => {
    handle(reqid, 'mkdir', raw, true, (path, outcome) => up!.mkdir(path, attrs, statusOf(reqid, outcome)));
  });

  sftp.on('RENAME', (reqid: number, from: string, to: string) => {
    handle(reqid, 'rename', from, true, (path, outcome, target) => up!.rename(path, target!, statusOf(reqid, outcome)), to);
  });

  sftp.on('READLINK', (reqid: number, raw: string) => {
    handle(reqid, 'stat', raw, true, (path, outcome) =>
      up!.readlink(path, (err, target) => {
        outcome.finish({ bytesIn: 0, bytesOut: 0, ...(err ? { error: err.message } : {}) });
        if (err) sftp.status(reqid, code(err), err.message);
        else sftp.name(reqid, [{ filename: target, longname: target, attrs: {} as Attributes }]);
      }),
    );
  });

  sftp.on('SYMLINK', (reqid: number, linkPath: string, targetPath: string) => {
    // The link's target is kept as written (relative links stay relative); the decision sees it resolved against the link's folder.
    handle(reqid, 'symlink', linkPath, true, (path, outcome) => up!.symlink(targetPath, path, statusOf(reqid, outcome)), targetPath);
  });

  // REALPATH is name resolution (what `cd` and the client's start-up do), not access: answered
  // without a decision, so a policy that allows one folder still lets a client find its home.
  // Every access to what it names is decided.
  sftp.on('REALPATH', (reqid: number, raw: string) => {
    void ready.then(async (failure) => {
      if (failure) return sftp.status(reqid, STATUS.FAILURE, `hoop: ${failure}`);
      const path = await resolvePath(raw, false);
      sftp.name(reqid, [{ filename: path, longname: path, attrs: {} as Attributes }]);
    });
  });

  sftp.on('EXTENDED', (reqid: number) => sftp.status(reqid, STATUS.OP_UNSUPPORTED, 'hoop: SFTP extensions are not relayed'));

  // The client is done (EOF): end our side too, so the channel closes and the client exits.
  // Like sshd after sftp-server exits: exit status 0, EOF, close (scp's SFTP mode checks the status).
  sftp.on('end', () => {
    const ch = sftp as unknown as { outgoing: { id: number; state: string }; _protocol: { exitStatus(id: number, status: number): void; channelEOF(id: number): void } };
    if (ch.outgoing.state === 'open') {
      ch._protocol.exitStatus(ch.outgoing.id, 0);
      ch._protocol.channelEOF(ch.outgoing.id);
    }
    sftp.end();
  });
  sftp.on('close', () => {
    for (const open of handles.values()) open.finish({ ...open.result, error: 'the client closed the SFTP session with the file open' });
    handles.clear();
    up?.end();
  });
}
