// One client connection: the client-side state machine (startup → token → ready), the upstream
// connection, and the relay between them with a verdict on every statement.
//
// Shape (pgbouncer's client_proto/server_proto): each direction has a framer and a pump. A pump
// frames whatever bytes have arrived and hands each message to one handler; a handler either
// relays the message (zero-copy, coalesced by an Outbox) or returns a promise (a decision to audit,
// an approval to wait for, a mask to plan), during which that direction is paused.
//
// The relay keeps a FIFO of the responses it expects from the upstream (one entry per forwarded
// Query/Parse/Bind/Describe/Execute/Close/Sync), so every backend message is attributed to the
// statement that caused it: masking plans, row counts, recording and the blocked-statement
// substitution all hang off that queue.
//
// Blocking keeps ordering and transaction state exact by letting the upstream fail in our place:
// a blocked statement is replaced by a harmless text that cannot parse (`hoop_blocked_<nonce>`),
// the upstream answers ErrorResponse (putting an open transaction into the failed state exactly
// as PostgreSQL would for the real statement, and discarding to Sync in the extended protocol),
// and the gateway swaps that ErrorResponse for its own 42501 naming the rule. ReadyForQuery then
// carries the upstream's true transaction status.

import { randomBytes, randomUUID } from 'node:crypto';
import type { Socket } from 'node:net';
import { TLSSocket } from 'node:tls';
import type { Identity, SqlAction } from '../../../stdlib/facts.ts';
import type { MaskPlan } from '../../ports.ts';
import { isLoopback } from '../../config.ts';
import { DEFAULT_LIMITS, type GatewayLimits } from '../../limits.ts';
import { decidingIndex, type EnforcementRequest, type EnforcementSession, type Forward, type Outcome, type Permit, type Refuse } from '../../enforcement/index.ts';
import type { Decision } from '../../../engine/response.ts';
import { classifyStatements, parserRefusal, statementItems, unclassified, type PgStatement, type StatementResolution } from '../enforcement/statements.ts';
import { BackendCode, decodeBackend, encodeBackend, encodeDataRow, errorField, gatewayError, gatewayNotice, type TransactionStatus } from '../wire/backend.ts';
import { Framer, type Frame } from '../wire/framer.ts';
import { decodeFrontend, decodePasswordBody, encodeFrontend, FrontendCode } from '../wire/frontend.ts';
import { decodeStartup } from '../wire/startup.ts';
import { Reader } from '../wire/writer.ts';
import { maskFatalText, maskServerText, recordedErrorText } from './masked-errors.ts';
import { NotificationMasking } from './notifications.ts';
import { boundParams, functionCallArgs } from '../enforcement/bind-params.ts';
import { Outbox } from './outbox.ts';
import type { RoutedResource, SessionServices } from './services.ts';
import { canMoveClient, canMoveServer, type ClientState, type ServerState } from './states.ts';
import { connectUpstream } from './upstream.ts';
import { oversizeMessage, parseStatementName, statementSize } from './statement-limit.ts';
import { asFatal, endsSession } from './upstream-fatal.ts';
import { clientHead, clientStreaming, oversizedServerText, serverStreaming } from './streaming.ts';
import { functionCallHead } from './function-call-head.ts';
import { settle, type Ticket } from './name-ledger.ts';
import { ServerNames, type NameDependency } from './server-names.ts';
import { analyzeText } from '../enforcement/classify-text.ts';
import { APPROVAL_OPTION, readOptions, refusedStartupSetting, upstreamOptions, type StartupSetting } from './startup-settings.ts';
import { SessionNames, startupPathRisk } from './search-path.ts';
import { dropRow, exhaustedAnswer, portalBudget, runLimits, timeLimitError, truncatedAnswer, type RowBudget, type RunLimits } from './result-limits.ts';
import { sendCancel, type CancelTarget } from '../cancel.ts';
import { parameterStatus, PIPELINED_BACKSLASH, ReadyWaiters, textGate, textSettingRefusal, unreadableParameter, unreadableStartup } from './text-reading.ts';

/** A statement the session has decided: a simple-protocol statement or a Parse'd one. */
interface DecidedStatement {
  text: string;
  action: SqlAction | undefined;
  /** What enforcement let it run with (masks, limits, its audit handle); undefined when nothing was decided (an empty message). */
  permit: Permit<PgStatement> | undefined;
  /** Masks must be applied to its results. */
  masked: boolean;
  paramTypes?: number[];
  /** Its parameter types as the server described them (to show binary values to an approver). */
  describedTypes?: number[];
  /** How running it changes prepared statements and cursors (PREPARE, DECLARE, CLOSE, COMMIT...). */
  change?: PgStatement['change'];
  /** The text whose lineage masks its rows, when not its own (a FETCH: its cursor's query). */
  lineageText?: string;
  /** Parse'd `EXECUTE name` / `FETCH name`: what the name held when it was decided. */
  dependsOn?: NameDependency;
}

/** One execution of a decided statement. */
interface Run {
  stmt: DecidedStatement | undefined;
  protocol: 'simple' | 'extended';
  started: number;
  rows: number;
  /** Masking plan for its rows (null: rows pass untouched). */
  plan: MaskPlan | null;
  /** Its pending effect on prepared statement and cursor names, confirmed at its CommandComplete. */
  names?: Ticket[];
  /** `limit rows` / `limit time` (result-limits.ts); absent for the many runs without. */
  limits?: RunLimits;
  /** This run's portal had spent its row budget before it started (its rows are all dropped). */
  exhausted?: boolean;
  finished?: boolean;
}

type Expect =
  | { k: 'query'; runs: Run[]; idx: number; blocked?: Buffer; names?: Ticket[] }
  | { k: 'parse'; blocked?: Buffer; stmt?: DecidedStatement; names?: Ticket[] }
  | { k: 'bind'; blocked?: Buffer; stmt?: DecidedStatement; names?: Ticket[] }
  | { k: 'close'; names?: Ticket[] }
  | { k: 'sync' }
  | { k: 'describe'; hidden?: Run; statement?: DecidedStatement }
  | { k: 'execute'; run: Run }
  | { k: 'function'; run: Run; error?: string };

/** Client messages that start work upstream: they wait while a cancel the gateway sent is in flight. */
const STARTS_WORK: ReadonlySet<number> = new Set([FrontendCode.Query, FrontendCode.Parse, FrontendCode.Bind, FrontendCode.Execute, FrontendCode.FunctionCall]);

const PAUSE_ASYNC = 1;
/** Bytes a direction may accumulate while its pump waits on a decision before reading stops. */
const MAX_BUFFERED_WHILE_BUSY = 1024 * 1024;
const PAUSE_BACKPRESSURE = 2;

/** A startup packet's limit before anything is known about the peer (PostgreSQL's is 10,000 bytes). */
const STARTUP_PACKET_LIMIT = 64 * 1024;

/** Startup parameters that are the gateway's business, never passed upstream. */
const GATEWAY_PARAMS = new Set(['user', 'database', 'replication', 'hoop_approval']);
/** Startup parameters that would change the upstream identity: refused (policy bypass). */
const FORBIDDEN_PARAMS = new Set(['role', 'session_authorization']);

const APP_NAME_MODE = /#approval=(hold|return)$/;

function blockedText(): string {
  return `hoop_blocked_${randomBytes(6).toString('hex')}`;
}

function rowsFromTag(tag: string): number | undefined {
  const sp = tag.lastIndexOf(' ');
  if (sp < 0) return undefined;
  const n = Number(tag.slice(sp + 1));
  return Number.isInteger(n) ? n : undefined;
}

/** ReadyForQuery's status byte for an open transaction block ('I' idle and 'E' failed are not). */
const TX_BLOCK = 0x54;

/** Messages that answer a statement: a state-changing one's wait for its audit record to be durable. */
const ANSWERS: ReadonlySet<number> = new Set([BackendCode.CommandComplete, BackendCode.EmptyQueryResponse, BackendCode.PortalSuspended, BackendCode.ErrorResponse, BackendCode.FunctionCallResponse]);

/** The session's view of one decided statement, from what enforcement let run. */
function decidedFrom(p: Permit<PgStatement>): DecidedStatement {
  const item = p.item;
  return { text: p.text, action: item.action, permit: p, masked: p.masked, change: item.change, ...(item.lineageText !== undefined ? { lineageText: item.lineageText } : {}) };
}

/** A FunctionCall's function OID and argument count, or null when the message is malformed. */
function functionCallShape(raw: Buffer): { oid: number; args: number } | null {
  // 'F', int32 length, int32 oid, int16 n + n int16 formats, int16 args + args, int16 result format.
  if (raw.length < 15) return null;
  const oid = raw.readUInt32BE(5);
  const formats = raw.readInt16BE(9);
  const at = 11 + 2 * formats;
  if (formats < 0 || at + 2 > raw.length) return null;
  const args = raw.readInt16BE(at);
  if (args < 0) return null;
  let p = at + 2;
  for (let i = 0; i < args; i++) {
    if (p + 4 > raw.length) return null;
    const len = raw.readInt32BE(p);
    p += 4 + (len > 0 ? len : 0);
  }
  return p + 2 === raw.length ? { oid, args } : null;
}

function dependsOn(dep: NameDependency | undefined): { dependsOn?: NameDependency } {
  return dep ? { dependsOn: dep } : {};
}

function quoteIdent(name: string): string {
  return /^[a-z_][a-z0-9_]*$/.test(name) ? name : `"${name.replace(/"/g, '""')}"`;
}

function readCString(buf: Buffer, pos: number): [string, number] {
  const nul = buf.indexOf(0, pos);
  if (nul < 0) return ['', buf.length];
  return [buf.toString('utf8', pos, nul), nul + 1];
}

export class PgSession {
  readonly id = randomUUID();
  private client: Socket;
  private server: Socket | undefined;
  private clientState: ClientState = 'startup';
  private serverState: ServerState = 'none';
  private readonly clientFramer: Framer;
  private serverFramer: Framer;
  private readonly upOut = new Outbox();
  private readonly downOut = new Outbox();
  private clientBusy = false;
  private serverBusy = false;
  private clientPause = 0;
  private serverPause = 0;
  private readonly clientAddr: string;
  private tlsActive = false;

  // Set once authenticated.
  private identity: Identity | undefined;
  private expiresAt = 0;
  private routed: RoutedResource | undefined;
  private params: Record<string, string> = {};
  /** The settings the client's `options` asks for, as the server would read them. */
  private optionSettings: StartupSetting[] = [];
  /** Decisions, approvals, masks, audit and recording of this session (proxy/enforcement), once authenticated. */
  private enforcement: EnforcementSession<PgStatement> | undefined;
  private cancelKey: { pid: number; secret: number; release(): void } | undefined;
  private approvalMode: 'hold' | 'return';

  // Relay state.
  private readonly expect: Expect[] = [];
  private expectHead = 0;
  private txStatus: TransactionStatus = 'I';
  /** Some statement of this session ran with `limit rows`/`limit time`: rows and answers are checked against them. */
  private anyLimits = false;
  /** Row budgets of portals fetched in batches, by portal name (reset when the portal is bound again). */
  private readonly portalBudgets = new Map<string, RowBudget>();
  /** The upstream backend's cancel key (for the gateway's own cancels: limit rows, limit time). */
  private upstreamCancel: CancelTarget | undefined;
  /** A cancel the gateway sent: statements wait until it was delivered and answered (it must not land on them). */
  private cancelGate: Promise<void> | undefined;
  /** Extended protocol: after a refused message, drop everything until Sync. */
  private discarding = false;
  /** Messages waiting for a ReadyForQuery to tell how the server reads their text (text-reading.ts). */
  private readonly readyWaiters = new ReadyWaiters();
  /** The session's search_path and temporary tables, followed to resolve unqualified names (search-path.ts). */
  private names: SessionNames | undefined;
  /** The names' resolution of a statement and the session's own refusals, for statementItems (made once). */
  private resolution: StatementResolution | undefined;
  /** Prepared statements and portals (cursors) as the server has them, for both protocols. */
  private readonly serverNames = new ServerNames<DecidedStatement>();
  /** An ErrorResponse arrived since the last ReadyForQuery (an implicit transaction rolled back). */
  private errorSinceReady = false;
  /** The masking plan for rows now arriving, or null (fast path). */
  private plan: MaskPlan | null = null;
  /** LISTEN/NOTIFY payloads under the session's masks (made at the first notification). */
  private notifications: NotificationMasking | undefined;
  /** The last masked statement that ran since the last ReadyForQuery (errors and notices at Sync are about it). */
  private maskedSinceReady: DecidedStatement | undefined;
  /** A mask plan refused the current result: drop its rows, end it with this error. */
  private suppressed: string | undefined;
  /** The pieces of the streamed message now arriving are relayed (else dropped); see streaming.ts. */
  private clientPieces = false;
  private serverPieces = false;
  private ended = false;
  /** The upstream's own FATAL was relayed: its closing needs no word from the gateway. */
  private upstreamSaidFatal = false;
  private upstreamClosed = false;

  // Before authentication (released once ready or ended).
  private readonly limits: GatewayLimits;
  private authTimer: NodeJS.Timeout | undefined;
  private unauthenticatedBytes = 0;
  private countedUnauthenticated = false;
  /** A connection refusal is being audited; nothing more from the client is read. */
  private refusing = false;

  constructor(
    socket: Socket,
    private readonly svc: SessionServices,
  ) {
    this.client = socket;
    this.clientAddr = (socket.remoteAddress ?? '').replace(/^::ffff:/, '');
    this.limits = svc.limits ?? DEFAULT_LIMITS;
    this.clientFramer = new Framer({ startup: true, maxMessageSize: STARTUP_PACKET_LIMIT });
    this.serverFramer = new Framer({ maxMessageSize: this.limits.maxMessageSize });
    this.serverFramer.stream = serverStreaming();
    this.approvalMode = svc.approvalMode;
    socket.setNoDelay(true);
    this.attachClient(socket);
    this.guardUnauthenticated();
  }

  /**
   * Until it authenticates, a connection is on a short leash: counted against its address's
   * limit of unauthenticated connections, and closed after the authentication timeout.
   */
  private guardUnauthenticated(): void {
    if (this.svc.unauthenticated) {
      if (!this.svc.unauthenticated.acquire(this.clientAddr)) {
        void this.refuse('too_many_unauthenticated', `hoop: too many unauthenticated connections from ${this.clientAddr}`, '53300');
        return;
      }
      this.countedUnauthenticated = true;
    }
    this.authTimer = setTimeout(() => {
      void this.refuse('authentication_timeout', `hoop: authentication timed out after ${this.limits.authenticationTimeoutMs / 1000}s`, '08006');
    }, this.limits.authenticationTimeoutMs);
  }

  /** The connection authenticated or ended: it no longer counts as unauthenticated. */
  private releaseUnauthenticated(): void {
    clearTimeout(this.authTimer);
    this.authTimer = undefined;
    if (this.countedUnauthenticated) {
      this.countedUnauthenticated = false;
      this.svc.unauthenticated?.release(this.clientAddr);
    }
  }

  // -------------------------------------------------------------------------------------------
  // State changes (one place each).

  private setClientState(to: ClientState): void {
    if (this.clientState === to) return;
    if (!canMoveClient(this.clientState, to)) throw new Error(`internal error: client state ${this.clientState} → ${to}`);
    this.clientState = to;
  }

  private setServerState(to: ServerState): void {
    if (this.serverState === to) return;
    if (!canMoveServer(this.serverState, to)) throw new Error(`internal error: server state ${this.serverState} → ${to}`);
    this.serverState = to;
  }

  // -------------------------------------------------------------------------------------------
  // Sockets and pumps.

  private attachClient(sock: Socket): void {
    this.client = sock;
    sock.on('data', (chunk: Buffer) => {
      if (this.refusing) return;
      if (this.clientState !== 'ready') {
        this.unauthenticatedBytes += chunk.length;
        if (this.unauthenticatedBytes > this.limits.maxUnauthenticatedBytes) {
          void this.refuse('unauthenticated_bytes', `hoop: more than ${this.limits.maxUnauthenticatedBytes} bytes sent before authentication`, '54000');
          return;
        }
      }
      this.clientFramer.push(chunk);
      // While a decision is pending, keep what arrives (pipelined messages) but stop reading once
      // it piles up: a client cannot make the gateway buffer without bound (e.g. during a held approval).
      if (this.clientBusy) {
        if (this.clientFramer.buffered > MAX_BUFFERED_WHILE_BUSY) this.pauseClient(PAUSE_ASYNC);
        return;
      }
      this.clientPump();
    });
    sock.on('error', () => this.end());
    sock.on('close', () => this.end());
    sock.on('drain', () => this.resumeServer(PAUSE_BACKPRESSURE));
  }

  private attachServer(sock: Socket, rest: Buffer): void {
    this.server = sock;
    sock.on('data', (chunk: Buffer) => {
      this.serverFramer.push(chunk);
      if (this.serverBusy) {
        if (this.serverFramer.buffered > MAX_BUFFERED_WHILE_BUSY) this.pauseServer(PAUSE_ASYNC);
        return;
      }
      this.serverPump();
    });
    sock.on('error', () => this.upstreamLost());
    sock.on('close', () => this.upstreamLost());
    sock.on('drain', () => this.resumeClient(PAUSE_BACKPRESSURE));
    if (rest.length > 0) this.serverFramer.push(rest);
  }

  private pauseClient(bit: number): void {
    if (this.clientPause === 0) this.client.pause();
    this.clientPause |= bit;
  }

  private resumeClient(bit: number): void {
    if ((this.clientPause & bit) === 0) return;
    this.clientPause &= ~bit;
    if (this.clientPause === 0 && !this.ended) this.client.resume();
  }

  private pauseServer(bit: number): void {
    if (!this.server) return;
    if (this.serverPause === 0) this.server.pause();
    this.serverPause |= bit;
  }

  private resumeServer(bit: number): void {
    if ((this.serverPause & bit) === 0) return;
    this.serverPause &= ~bit;
    if (this.serverPause === 0 && !this.ended) this.server?.resume();
  }

  /** Sends what is queued for the upstream; a full socket buffer pauses the client. */
  private flushUp(): void {
    if (!this.server || this.upOut.empty) return;
    if (!this.upOut.flush(this.server)) this.pauseClient(PAUSE_BACKPRESSURE);
  }

  /** Sends what is queued for the client; a full socket buffer pauses the upstream. */
  private flushDown(): void {
    if (this.downOut.empty) return;
    if (!this.downOut.flush(this.client)) this.pauseServer(PAUSE_BACKPRESSURE);
  }

  private clientPump(): void {
    if (this.clientBusy || this.ended) return;
    for (;;) {
      const f = this.clientFramer.next();
      if (f === null) break;
      if ('error' in f) {
        this.onFramingError(f.error, f.length);
        return;
      }
      if (f.piece) {
        if (this.clientPieces) this.upOut.pass(f.raw);
        continue;
      }
      let p: Promise<void> | void;
      try {
        p = this.clientState === 'ready' ? this.onClientMessage(f) : this.onStartupFrame(f);
      } catch (e) {
        this.internalError(e);
        return;
      }
      if (p) {
        // No pause here: pausing and resuming the socket costs two syscalls per statement; the
        // data handler pauses only if bytes pile up while this is pending.
        this.clientBusy = true;
        this.flushUp();
        this.flushDown();
        p.then(
          () => {
            this.clientBusy = false;
            this.resumeClient(PAUSE_ASYNC);
            this.clientPump();
          },
          (e: unknown) => this.internalError(e),
        );
        return;
      }
      if (this.ended) return;
    }
    this.flushUp();
    this.flushDown();
  }

  private onFramingError(error: 'too_large' | 'bad_length', length: number): void {
    if (this.clientState === 'startup') {
      // Not a startup packet (node-postgres sends a Terminate when it disconnects before its
      // StartupMessage went out): PostgreSQL closes without a word, and so does the gateway.
      void this.refuse('invalid_startup_packet', `hoop: invalid length of startup packet (${length})`, '08P01', undefined, { silent: true });
      return;
    }
    if (this.clientState === 'awaiting_token' && error === 'too_large') {
      void this.refuse('password_too_large', `hoop: the password message (${length} bytes) exceeds the limit of ${this.limits.maxPasswordMessage} bytes for a token`, '08P01');
      return;
    }
    const msg = error === 'too_large' ? `message of ${length} bytes exceeds the gateway's limit` : `invalid message length ${length}`;
    this.fatal('08P01', `hoop: protocol violation: ${msg}`);
  }

  private serverPump(): void {
    if (this.serverBusy || this.ended) return;
    for (;;) {
      const f = this.serverFramer.next();
      if (f === null) break;
      if ('error' in f) {
        this.fatal('08P01', 'hoop: invalid message from the upstream server');
        return;
      }
      if (f.piece) {
        if (this.serverPieces) this.downOut.pass(f.raw);
        continue;
      }
      let p: Promise<void> | void;
      try {
        p = this.onServerMessage(f);
      } catch (e) {
        this.internalError(e);
        return;
      }
      if (p) {
        // Not flushed here: what is queued (a RowDescription waiting for its mask plan) goes out
        // with the rows after it, one write instead of two per masked statement.
        this.serverBusy = true;
        p.then(
          () => {
            this.serverBusy = false;
            this.resumeServer(PAUSE_ASYNC);
            this.serverPump();
          },
          (e: unknown) => this.internalError(e),
        );
        return;
      }
      if (this.ended) return;
    }
    this.flushDown();
    if (this.upstreamClosed) this.upstreamLost();
  }

  // -------------------------------------------------------------------------------------------
  // Startup: SSLRequest / GSSENCRequest / CancelRequest / StartupMessage, then the token.

  private onStartupFrame(f: Frame): Promise<void> | void {
    if (this.clientState === 'awaiting_token') return this.onToken(f);
    if (this.clientState !== 'startup') return this.fatal('08P01', 'hoop: unexpected message during startup');
    const d = decodeStartup(f);
    if (!d.ok) return this.fatal('08P01', `hoop: invalid startup packet: ${d.reason}`);
    const m = d.message;
    switch (m.name) {
      case 'sslRequest':
        if (this.tlsActive || !this.svc.tls) {
          this.client.write('N');
          return;
        }
        // Bytes after the SSLRequest but before the handshake would be unencrypted: refuse (pgbouncer).
        if (this.clientFramer.buffered > 0) return this.fatal('08P01', 'hoop: unencrypted data after SSLRequest');
        return this.startTls();
      case 'gssEncRequest':
        this.client.write('N');
        return;
      case 'cancelRequest':
        // Close only once the server has closed its cancel connection, as PostgreSQL does after
        // signalling the backend: libpq's PQcancel returns at that close, and a client's next
        // statement must not be the one a late cancel lands on.
        void this.svc.cancels.cancel(m.pid, m.secret).then(
          () => this.end(),
          () => this.end(),
        );
        return;
      case 'startup':
        return this.onStartupMessage(m.version, m.params);
    }
  }

  /**
   * Switches the client to TLS. Not routed through the pump's async pause: pausing a socket that
   * a TLSSocket is about to take over would stall the handshake. Nothing else can arrive meanwhile
   * (the client waits for 'S' before its ClientHello, and leftover plaintext was refused).
   */
  private startTls(): void {
    this.setClientState('tls_handshake');
    const raw = this.client;
    raw.removeAllListeners('data');
    raw.removeAllListeners('drain');
    raw.write('S');
    const t = new TLSSocket(raw, { isServer: true, secureContext: this.svc.tls! });
    this.attachClient(t);
    t.once('secure', () => {
      this.tlsActive = true;
      this.setClientState('startup');
    });
  }

  private onStartupMessage(version: number, params: Record<string, string>): Promise<void> | void {
    if (version >> 16 !== 3) return this.fatal('08P01', `hoop: unsupported protocol version ${version >> 16}.${version & 0xffff}`);
    // A newer 3.x minor version or `_pq_.` protocol options: answer as PostgreSQL does, with the
    // newest minor version we speak (3.0) and the options we do not know, then carry on in 3.0.
    const pqOptions = Object.keys(params).filter((k) => k.startsWith('_pq_.'));
    if ((version & 0xffff) > 0 || pqOptions.length > 0) {
      this.client.write(encodeBackend({ name: 'negotiateProtocolVersion', minor: 0, options: pqOptions }));
    }
    if (!params.user) return this.fatal('28000', 'hoop: no user name specified in the startup packet');
    // Each of these is a refused connection: audited as `connection_refused` and counted.
    if (params.replication && !['false', 'off', 'no', '0'].includes(params.replication.toLowerCase())) {
      return this.refuse('replication', 'hoop: replication connections are not supported through the gateway', '28000');
    }
    for (const k of Object.keys(params)) {
      if (FORBIDDEN_PARAMS.has(k.toLowerCase())) return this.refuse('forbidden_parameter', `hoop: startup parameter "${k}" is not allowed: identity comes from the token`, '42501');
    }
    // Settings the classifier would call `grant` must not slip in through the startup packet,
    // neither as parameters nor inside `options` (read exactly as the server reads it).
    const options = readOptions(params.options ?? '');
    if (!options.ok) return this.refuse('unreadable_options', `hoop: the options startup parameter is refused: ${options.reason}`, '42601');
    const settings = [
      ...Object.entries(params).filter(([k]) => !GATEWAY_PARAMS.has(k) && k !== 'options' && k !== 'application_name').map(([name, value]) => ({ name, value })),
      ...options.settings,
    ];
    for (const { name, value } of settings) {
      const why = refusedStartupSetting(name, value);
      if (why) return this.refuse('forbidden_setting', `hoop: ${why}`, '42501');
    }
    this.params = params;
    this.optionSettings = options.settings;
    // The token travels as a cleartext password: only over TLS or on loopback.
    if (!this.tlsActive && !isLoopback(this.clientAddr)) {
      return this.refuse('tls_required', 'hoop: TLS is required for connections from other hosts', '28000');
    }
    this.setClientState('awaiting_token');
    this.clientFramer.startup = false;
    // The token is a few KiB: an unauthenticated peer cannot make the gateway buffer more.
    this.clientFramer.maxMessageSize = this.limits.maxPasswordMessage;
    this.client.write(encodeBackend({ name: 'authenticationCleartextPassword' }));
  }

  private async onToken(f: Frame): Promise<void> {
    if (f.code !== FrontendCode.Password) return this.fatal('08P01', 'hoop: expected a password message carrying the token');
    const token = decodePasswordBody(f.raw.subarray(f.bodyStart));
    this.setClientState('authenticating');
    if (!token) return this.refuse('no_token', 'hoop: no token: pass the identity token as the password', '28P01');
    let result;
    try {
      result = await this.svc.verifier.verify(token);
    } catch (e) {
      result = { ok: false as const, code: 'verifier_error', reason: (e as Error).message };
    }
    if (!result.ok) {
      const claims = result.claims;
      return this.refuse(result.code, `hoop: token rejected: ${result.reason}`, '28P01', claims);
    }
    this.identity = result.identity;
    this.expiresAt = result.expiresAt;
    if (this.expiresAt <= Date.now()) return this.refuse('expired', 'hoop: token rejected: the token has expired', '28P01');
    const dbname = this.params.database ?? this.params.user!;
    const routed = this.svc.resources.get(dbname);
    if (!routed) return this.refuse('unknown_resource', `hoop: no resource named "${dbname}" (the database name selects the resource)`, '3D000');
    this.routed = routed;
    const mode = this.requestedApprovalMode();
    if (mode) this.approvalMode = mode;

    this.setServerState('connecting');
    const upstreamParams: Record<string, string> = {};
    for (const [k, v] of Object.entries(this.params)) {
      if (!GATEWAY_PARAMS.has(k) && !k.startsWith('_pq_.')) upstreamParams[k] = v;
    }
    if (upstreamParams.application_name) upstreamParams.application_name = upstreamParams.application_name.replace(APP_NAME_MODE, '');
    delete upstreamParams.options;
    const options = upstreamOptions(this.optionSettings);
    if (options !== undefined) upstreamParams.options = options;
    const up = await connectUpstream(routed.target, upstreamParams);
    if (this.ended) {
      if (up.ok) up.socket.destroy();
      return;
    }
    if (!up.ok) {
      this.setServerState('closed');
      return this.refuse('upstream_unavailable', `hoop: resource "${routed.resource.name}" is unavailable: ${up.reason}`, up.code.startsWith('28') ? '08006' : up.code);
    }
    const pathRisk = startupPathRisk(up.session.searchPath);
    if (pathRisk) {
      up.socket.destroy();
      this.setServerState('closed');
      return this.refuse('forbidden_setting', `hoop: ${pathRisk}`, '42501');
    }
    // A role's or database's default (ALTER ROLE ... SET) the gateway cannot read statements under.
    const unreadable = unreadableStartup(up.parameterStatus);
    if (unreadable) {
      up.socket.destroy();
      this.setServerState('closed');
      return this.refuse('forbidden_setting', `hoop: ${unreadable}`, '42501');
    }
    this.setServerState('ready');
    const names = (this.names = new SessionNames({ startupPath: up.session.searchPath, user: up.session.user, catalog: this.svc.names?.(routed.resource) }));
    this.resolution = { resolve: (a) => names.resolve(a), refusal: (a) => textSettingRefusal(a) ?? names.refusal(a) };
    this.attachServer(up.socket, up.rest);
    this.txStatus = up.status;
    const out: Buffer[] = [encodeBackend({ name: 'authenticationOk' }), ...up.parameterStatus, ...up.notices];
    if (up.backendKey) {
      this.upstreamCancel = { host: routed.target.host, port: routed.target.port, tls: routed.target.tls, pid: up.backendKey.pid, secret: up.backendKey.secret };
      this.cancelKey = this.svc.cancels.register(
        { host: routed.target.host, port: routed.target.port, tls: routed.target.tls, pid: up.backendKey.pid, secret: up.backendKey.secret },
        // A statement held for approval is not running upstream: the cancel is for the wait.
        () => this.enforcement?.cancel(),
      );
      out.push(encodeBackend({ name: 'backendKeyData', pid: this.cancelKey.pid, secret: this.cancelKey.secret }));
    }
    const opened = await this.svc.enforcer.openSession<PgStatement>({
      protocol: 'postgres',
      id: this.id,
      identity: this.identity,
      expiresAt: this.expiresAt,
      resource: routed.resource,
      clientAddr: this.clientAddr,
      client: { ...(this.params.user ? { user: this.params.user } : {}), ...(this.params.application_name ? { application_name: this.params.application_name } : {}) },
      approvalMode: this.approvalMode,
      hooks: {
        // What the session resolved a statement's unqualified table names to (not for a stand-in lineage text).
        relationSchemas: (item) => (item.lineageText === undefined ? names.schemasOf(item.action) : undefined),
        refusalText: parserRefusal,
        // Cost facts: EXPLAIN under the search_path the statement will see.
        searchPath: () => names.searchPath?.map((schema) => `"${schema.replace(/"/g, '""')}"`).join(', '),
        // An fsync that fails while one of this session's records may not be on disk ends the session.
        auditLost: () => this.auditSyncFailed(),
      },
    });
    if (!opened.ok) return this.fatal('58000', opened.message);
    if (this.ended) return opened.session.close();
    this.enforcement = opened.session;
    this.releaseUnauthenticated();
    this.clientFramer.maxMessageSize = this.limits.maxMessageSize;
    this.clientFramer.stream = clientStreaming(this.limits);
    this.setClientState('ready');
    out.push(encodeBackend({ name: 'readyForQuery', status: up.status }));
    for (const b of out) this.downOut.push(b);
    this.flushDown();
    this.serverPump();
  }

  /** Per-connection approval mode: startup parameter `hoop_approval`, `options=-c hoop.approval=...`, or an application_name suffix `#approval=...`. */
  private requestedApprovalMode(): 'hold' | 'return' | undefined {
    const opt = this.params.hoop_approval;
    if (opt === 'hold' || opt === 'return') return opt;
    const o = this.optionSettings.filter((x) => x.name.toLowerCase() === APPROVAL_OPTION).pop()?.value;
    if (o === 'hold' || o === 'return') return o;
    const m = APP_NAME_MODE.exec(this.params.application_name ?? '');
    return m ? (m[1] as 'hold' | 'return') : undefined;
  }

  private refuse(code: string, message: string, sqlstate: string, claims?: Record<string, unknown>, how: { silent?: boolean } = {}): Promise<void> {
    if (this.refusing || this.ended) return Promise.resolve();
    this.refusing = true;
    this.releaseUnauthenticated();
    // The refusal is audited before the client hears of it; a failing audit still refuses.
    const done = how.silent ? () => this.end() : () => this.fatal(sqlstate, message);
    return this.svc.enforcer
      .refuseConnection({ protocol: 'postgres', sessionId: this.id, clientAddr: this.clientAddr, code, message, identity: this.identity, claims, resource: this.routed?.resource })
      .then(done);
  }

  // -------------------------------------------------------------------------------------------
  // Relay: client → upstream.

  private pushExpect(e: Expect): void {
    this.expect.push(e);
  }

  private headExpect(): Expect | undefined {
    return this.expect[this.expectHead];
  }

  private popExpect(): void {
    this.expectHead++;
    if (this.expectHead > 64 && this.expectHead * 2 > this.expect.length) {
      this.expect.splice(0, this.expectHead);
      this.expectHead = 0;
    }
  }

  private onClientMessage(f: Frame): Promise<void> | void {
    if (this.cancelGate !== undefined && STARTS_WORK.has(f.code)) return this.afterCancel(f);
    if (f.rest !== undefined) {
      // The head of a long message (streaming.ts): decode it whole, or relay or drop its pieces.
      this.clientPieces = false;
      if (clientHead(f.raw, this.limits) === 'whole') return this.clientFramer.whole();
    }
    switch (f.code) {
      case FrontendCode.Query:
        // After an extended-protocol error PostgreSQL ignores everything but Sync, Query included.
        if (this.discarding) return;
        if (statementSize(f.raw)! > this.limits.maxStatementSize) return this.refuseOversized(f);
        return this.onQuery(f);
      case FrontendCode.Parse:
        if (this.discarding) return;
        if ((statementSize(f.raw) ?? Infinity) > this.limits.maxStatementSize) return this.refuseOversized(f);
        return this.onParse(f);
      case FrontendCode.Bind: {
        if (this.discarding) return;
        if (this.tokenExpired()) return;
        const [portal, p] = readCString(f.raw, 5);
        const [stmt] = readCString(f.raw, p);
        const found = this.serverNames.prepared.lookup(stmt);
        if (found.t === 'ambiguous') return this.afterNamesSettle(f);
        const decided = found.t === 'known' && found.entry.via === 'protocol' ? found.entry.stmt : undefined;
        if (!decided) {
          // A statement the gateway never decided (e.g. made by SQL-level PREPARE, which shares the
          // protocol's namespace): running it would skip the policy and the masks. The upstream
          // fails a Bind of a name that cannot exist in its place, and discards to Sync.
          const message = `hoop: blocked: prepared statement "${stmt}" was not prepared through the extended protocol of this session`;
          return this.enforcement!.refuse(message).then(() => {
            this.pushExpect({ k: 'bind', blocked: gatewayError('ERROR', '42501', message) });
            this.upOut.push(encodeFrontend({ name: 'bind', portal, statement: blockedText(), paramFormats: [], params: [], resultFormats: [] }));
            this.discarding = true;
          });
        }
        const drift = decided.action ? this.names?.bindCheck(decided.action) : undefined;
        if (drift) {
          const message = `hoop: blocked: ${drift}`;
          return this.enforcement!.refuse(message).then(() => this.refuseBind(portal, gatewayError('ERROR', '42501', message)));
        }
        if (decided.permit?.needsApproval) {
          if (f.rest === undefined) return this.bindWithApproval(f, portal, decided, decided.permit);
          // A long Bind streams, but the approver must see its values: decoded whole, within the cap.
          if (f.raw.length + f.rest <= this.limits.maxMessageSize) return this.clientFramer.whole();
          return this.refuseBind(portal, gatewayError('ERROR', '54000', `hoop: blocked: the parameters of a statement that needs approval may not exceed ${this.limits.maxMessageSize} bytes (limits.max_message_size)`));
        }
        if (this.anyLimits || decided.permit?.decision.limits) this.portalBudgets.delete(portal);
        this.pushExpect({ k: 'bind', stmt: decided, names: this.serverNames.cursors.bind(portal, decided) });
        this.upOut.pass(f.raw);
        this.clientPieces = true;
        return;
      }
      case FrontendCode.Execute: {
        if (this.discarding) return;
        if (this.tokenExpired()) return;
        const [portal] = readCString(f.raw, 5);
        const found = this.serverNames.cursors.lookup(portal);
        if (found.t === 'ambiguous') return this.afterNamesSettle(f);
        const stmt = found.t === 'known' && found.entry.via === 'protocol' ? found.entry.stmt : undefined;
        if (!stmt) {
          // A portal the gateway never saw bound (a SQL cursor, one opened by a function, one the
          // server already closed): its rows would run undecided. Refused like an unknown statement.
          const message = `hoop: blocked: portal "${portal}" was not bound through the extended protocol of this session`;
          return this.enforcement!.refuse(message).then(() => {
            this.pushExpect({ k: 'bind', blocked: gatewayError('ERROR', '42501', message) });
            this.upOut.push(encodeFrontend({ name: 'execute', portal: blockedText(), maxRows: 0 }));
            this.discarding = true;
          });
        }
        const holds = stmt.dependsOn ? this.serverNames.stillHolds(stmt.dependsOn) : 'yes';
        if (holds === 'ambiguous') return this.afterNamesSettle(f);
        if (holds === 'no') {
          // Decided at Parse for what the name held then; it holds something else now.
          const what = stmt.dependsOn!.namespace === 'prepared' ? 'prepared statement' : 'cursor';
          const message = `hoop: blocked: ${what} "${stmt.dependsOn!.name}" changed since this statement was parsed; parse it again`;
          return this.enforcement!.refuse(message).then(() => {
            this.pushExpect({ k: 'bind', blocked: gatewayError('ERROR', '42501', message) });
            this.upOut.push(encodeFrontend({ name: 'execute', portal: blockedText(), maxRows: 0 }));
            this.discarding = true;
          });
        }
        const run: Run = { stmt, protocol: 'extended', started: performance.now(), rows: 0, plan: null, names: this.serverNames.statement(stmt) };
        const permit = stmt.permit;
        if (permit?.decision.limits) {
          // A portal fetched in batches spends one budget across its Executes.
          let budget = this.portalBudgets.get(portal);
          if (!budget && permit.limits.rows) this.portalBudgets.set(portal, (budget = portalBudget(permit.limits)!));
          const limits = runLimits(permit.limits, stmt.action, budget);
          if (limits) {
            run.limits = limits;
            if (budget?.cut) run.exhausted = true;
            this.anyLimits = true;
          }
          if (permit.limits.rate.length > 0) return this.executeAdmitted(f, run, portal);
        }
        this.names?.forward([stmt?.action]);
        if (stmt?.masked) {
          // Rows of a masked statement need its RowDescription: ask for it ourselves and keep the answer.
          this.upOut.push(encodeFrontend({ name: 'describe', target: 'P', objectName: portal }));
          this.pushExpect({ k: 'describe', hidden: run });
        }
        this.pushExpect({ k: 'execute', run });
        this.upOut.pass(f.raw);
        if (this.anyLimits) this.armTimeLimit();
        return;
      }
      case FrontendCode.Describe: {
        if (this.discarding) return;
        // A statement Describe: its ParameterDescription tells the types an approver's view decodes.
        const named = f.raw[5] === 0x53 ? this.serverNames.prepared.lookup(readCString(f.raw, 6)[0]) : undefined;
        const st = named?.t === 'known' && named.entry.via === 'protocol' ? named.entry.stmt : undefined;
        this.pushExpect(st?.permit?.needsApproval ? { k: 'describe', statement: st } : { k: 'describe' });
        this.upOut.pass(f.raw);
        return;
      }
      case FrontendCode.Close: {
        if (this.discarding) return;
        const d = decodeFrontend(f);
        const names = d.ok && d.message.name === 'close' ? (d.message.target === 'S' ? this.serverNames.prepared : this.serverNames.cursors).close(d.message.objectName) : undefined;
        this.pushExpect({ k: 'close', ...(names ? { names } : {}) });
        this.upOut.pass(f.raw);
        return;
      }
      case FrontendCode.Sync:
        this.discarding = false;
        this.names?.boundary();
        this.pushExpect({ k: 'sync' });
        this.serverNames.endBatch();
        this.upOut.pass(f.raw);
        return;
      case FrontendCode.Flush:
        if (this.discarding) return;
        this.upOut.pass(f.raw);
        return;
      case FrontendCode.CopyData:
      case FrontendCode.CopyDone:
      case FrontendCode.CopyFail:
        // Only meaningful while the upstream is in COPY FROM STDIN (for a statement already decided);
        // otherwise the upstream ignores or rejects them itself.
        this.upOut.pass(f.raw);
        this.clientPieces = true;
        return;
      case FrontendCode.Terminate:
        this.upOut.pass(f.raw);
        this.flushUp();
        this.end();
        return;
      case FrontendCode.FunctionCall:
        // Ignored like everything but Sync after an extended-protocol error (PostgreSQL does too).
        if (this.discarding) return;
        return this.onFunctionCall(f);
      default:
        return this.fatal('08P01', `hoop: protocol violation: unexpected message type ${JSON.stringify(String.fromCharCode(f.code))}`);
    }
  }

  private tokenExpired(): boolean {
    if (!this.enforcement!.expired()) return false;
    this.enforcement!.close({ outcome: 'refused', reason: 'expired: the token expired during the session' });
    this.fatal('28000', 'hoop: the token has expired; reconnect with a fresh token');
    return true;
  }

  private async onQuery(f: Frame): Promise<void> {
    if (this.tokenExpired()) return;
    if (!(await this.textReadable(f))) return this.ended ? undefined : this.blockSimple(gatewayError('ERROR', '42501', PIPELINED_BACKSLASH));
    const [text] = readCString(f.raw, 5);
    const t0 = performance.now();
    const items = await this.classify(text);
    if (this.ended) return;
    const enforced = await this.enforce({ items, text, started: t0, protocol: 'simple' });
    if (this.ended) return;
    if (!enforced.ok) {
      this.blockSimple(enforced.error);
      return;
    }
    this.names?.forward(items.map((v) => v.action));
    this.names?.boundary();
    const names = this.serverNames.query();
    const runs: Run[] = enforced.permits.map((p) => {
      const stmt = decidedFrom(p);
      const run: Run = { stmt, protocol: 'simple', started: t0, rows: 0, plan: null, names: this.serverNames.statement(stmt) };
      const limits = p.decision.limits && runLimits(p.limits, stmt.action);
      if (limits) {
        run.limits = limits;
        this.anyLimits = true;
      }
      return run;
    });
    if (runs.length === 0) runs.push({ stmt: undefined, protocol: 'simple', started: t0, rows: 0, plan: null });
    this.pushExpect({ k: 'query', runs, idx: 0, names });
    this.serverNames.endBatch();
    this.upOut.pass(f.raw);
    if (this.anyLimits) this.armTimeLimit();
  }

  /**
   * A FunctionCall (the legacy fast path; libpq's large-object functions use it) names its
   * function by OID only. Looked up in the resource's catalog, it is decided, audited and recorded
   * as `SELECT schema.name($1, ...)`, like any statement. An unknown OID, a failed lookup, and a
   * decision with masks (a fast-path result is not rows a mask plan can rewrite) are refused.
   */
  private async onFunctionCall(f: Frame): Promise<void> {
    if (this.tokenExpired()) return;
    // A long call arrives as its head (streaming.ts): decided from it, its arguments streamed after.
    const call = f.rest === undefined ? functionCallShape(f.raw) : functionCallHead(f.raw);
    if (!call) return this.fatal('08P01', 'hoop: protocol violation: malformed function call message');
    let fn: { schema: string; name: string; argTypes?: number[] } | undefined;
    let lookupError: string | undefined;
    try {
      fn = this.svc.functions ? await this.svc.functions.byOid(this.routed!.resource, call.oid) : undefined;
    } catch (e) {
      lookupError = (e as Error).message;
    }
    if (this.ended) return;
    if (!fn) {
      const why = lookupError !== undefined ? `its function (oid ${call.oid}) could not be looked up: ${lookupError}` : `no function has oid ${call.oid}`;
      const message = `hoop: blocked: function call refused: ${why}`;
      await this.enforcement!.refuse(message);
      if (this.ended) return;
      return this.blockSimple(gatewayError('ERROR', '42501', message));
    }
    const params = Array.from({ length: call.args }, (_, i) => `$${i + 1}`).join(', ');
    const text = `SELECT ${quoteIdent(fn.schema)}.${quoteIdent(fn.name)}(${params})`;
    const t0 = performance.now();
    const items = classifyStatements(this.svc.classifier, text, this.serverNames.options);
    const req: EnforcementRequest<PgStatement> = { items, text, started: t0, protocol: 'simple', unmaskable: 'a function call cannot be masked: its result does not come back as rows (use SELECT)' };
    const decisions = this.enforcement!.evaluate(req);
    // An approval of a call shows (and is bound to) its argument values, like a Bind's.
    const at = decidingIndex(decisions);
    const approving = at >= 0 && decisions[at]!.verdict === 'approve';
    if (approving && f.rest !== undefined) {
      // A long call streams, but the approver must see its values: decoded whole, within the cap.
      if (f.raw.length + f.rest - 1 <= this.limits.maxMessageSize) return this.clientFramer.whole();
      const message = `hoop: blocked: the arguments of a function call that needs approval may not exceed ${this.limits.maxMessageSize} bytes (limits.max_message_size)`;
      await this.enforcement!.refuse(message);
      if (this.ended) return;
      return this.blockSimple(gatewayError('ERROR', '54000', message));
    }
    const args = approving ? functionCallArgs(f.raw) : undefined;
    const bound = args && boundParams(args.values, args.formats, fn.argTypes);
    const enforced = await this.enforce(bound ? { ...req, params: bound } : req, decisions);
    if (this.ended) return;
    if (!enforced.ok) return this.blockSimple(enforced.error);
    const stmt = enforced.permits[0] && decidedFrom(enforced.permits[0]);
    this.names?.forwardFunction(fn.schema, fn.name);
    this.names?.boundary();
    this.pushExpect({ k: 'function', run: { stmt, protocol: 'simple', started: t0, rows: 0, plan: null } });
    this.serverNames.endBatch();
    this.upOut.pass(f.raw);
    this.clientPieces = true;
  }

  /**
   * A Query or Parse longer than `limits.max_statement_size`: refused unread (54000), with its
   * decision record; a Parse discards to Sync like any refused Parse.
   */
  private async refuseOversized(f: Frame): Promise<void> {
    const size = statementSize(f.raw);
    const message = size === undefined ? `hoop: statement name too long` : oversizeMessage(size, this.limits.maxStatementSize);
    await this.enforcement!.refuse(message);
    if (this.ended) return;
    const error = gatewayError('ERROR', '54000', message);
    if (f.code === FrontendCode.Query) return this.blockSimple(error);
    const statement = parseStatementName(f.raw) ?? '';
    this.pushExpect({ k: 'parse', blocked: error, names: this.serverNames.prepared.parse(statement, undefined) });
    this.upOut.push(encodeFrontend({ name: 'parse', statement, text: blockedText(), paramTypes: [] }));
    this.discarding = true;
  }

  /**
   * One message's statements, with unqualified table names resolved as the server will (the
   * session's search_path and temporary tables over the catalog), for enforcement to decide.
   */
  private async classify(text: string): Promise<PgStatement[]> {
    // A prepared statement or cursor name that holds different things until earlier batches are answered.
    const unsettled = this.serverNames.settledIfAmbiguous();
    if (unsettled) await unsettled;
    // Classified inline, or off the event loop when long (classify-text.ts).
    const analyzed = await analyzeText({ classifier: this.svc.classifier, pool: this.svc.classifierPool }, text, this.serverNames.options);
    if (this.ended) return [];
    if (!analyzed.ok) return unclassified(text, analyzed.reason);
    const names = this.names;
    if (names) await names.prepare(analyzed.statements);
    return this.serverNames.lineageTexts(statementItems(analyzed.statements, this.resolution));
  }

  /** A refused simple Query (or FunctionCall): the upstream fails a harmless text in its place. */
  private blockSimple(error: Buffer): void {
    this.names?.boundary();
    // The stand-in is a Query too: the server drops the unnamed statement and portal for it.
    this.pushExpect({ k: 'query', runs: [], idx: 0, blocked: error, names: this.serverNames.query() });
    this.serverNames.endBatch();
    this.upOut.push(encodeFrontend({ name: 'query', text: blockedText() }));
  }

  /**
   * A message containing a backslash waits until no earlier statement that may change how the
   * server reads text is unanswered (text-reading.ts); false: refused (audited), or the session ended.
   */
  private async textReadable(f: Frame): Promise<boolean> {
    for (;;) {
      const gate = textGate(f.raw, this.expect.slice(this.expectHead));
      if (gate === 'go') return true;
      if (gate === 'refuse') {
        await this.enforcement!.refuse(PIPELINED_BACKSLASH);
        return false;
      }
      await this.readyWaiters.next();
      if (this.ended) return false;
    }
  }

  /** The server reports a text setting the gateway cannot read statements under: the session ends, audited. */
  private endUnreadable(why: string): void {
    this.enforcement?.close({ outcome: 'refused', reason: `unreadable_setting: ${why}` });
    this.fatal('42501', `hoop: ${why}; the session is ended`);
  }

  private afterNamesSettle(f: Frame): Promise<void> {
    // The frame's bytes may be the framer's buffer, reused while this waits (a long Bind: its head).
    const copy: Frame = { ...f, raw: Buffer.from(f.raw) };
    return this.serverNames.settled().then(async () => {
      if (!this.ended) await this.onClientMessage(copy);
    });
  }

  private async onParse(f: Frame): Promise<void> {
    if (this.tokenExpired()) return;
    const d = decodeFrontend(f);
    if (!d.ok || d.message.name !== 'parse') return this.fatal('08P01', `hoop: protocol violation: ${d.ok ? 'bad parse' : d.reason}`);
    const { statement, text, paramTypes } = d.message;
    if (!(await this.textReadable(f))) {
      if (this.ended) return;
      this.pushExpect({ k: 'parse', blocked: gatewayError('ERROR', '42501', PIPELINED_BACKSLASH), names: this.serverNames.prepared.parse(statement, undefined) });
      this.upOut.push(encodeFrontend({ name: 'parse', statement, text: blockedText(), paramTypes: [] }));
      this.discarding = true;
      return;
    }
    const t0 = performance.now();
    const items = await this.classify(text);
    // What a Parse'd EXECUTE or FETCH was decided with: checked again at each Execute.
    const dependency = this.serverNames.dependency(items[0]?.change);
    if (this.ended) return;
    // The extended protocol allows one statement per Parse; the upstream refuses more, but decide all.
    // An approval is for one execution with its values: requested at each Bind, not here.
    const enforced = await this.enforce({ items, text, started: t0, protocol: 'extended', paramTypes, recordedText: text, approval: 'per_execution', rate: 'per_execution' });
    if (this.ended) return;
    if (!enforced.ok) {
      // PostgreSQL drops the unnamed statement before parsing; a named one that exists survives
      // the failed Parse upstream, so its decision stays too.
      this.pushExpect({ k: 'parse', blocked: enforced.error, names: this.serverNames.prepared.parse(statement, undefined) });
      this.upOut.push(encodeFrontend({ name: 'parse', statement, text: blockedText(), paramTypes: [] }));
      this.discarding = true;
      return;
    }
    const first = enforced.permits[0];
    const decided: DecidedStatement = first
      ? { text, action: first.action as SqlAction, permit: first, masked: enforced.permits.some((p) => p.masked), paramTypes, change: first.item.change, ...(first.item.lineageText !== undefined ? { lineageText: first.item.lineageText } : {}), ...dependsOn(dependency) }
      : { text, action: undefined, permit: undefined, masked: false, paramTypes };
    // The name holds this statement once the server says ParseComplete (42P05 keeps the first one).
    this.pushExpect({ k: 'parse', stmt: decided, names: this.serverNames.prepared.parse(statement, decided) });
    this.upOut.pass(f.raw);
  }

  /**
   * A Bind of a statement whose verdict is approve (issue 14 item 9): an approval covers one
   * execution with the values the approver was shown, so it is requested (or waited for) here with
   * this Bind's values and audited as a decision of its own; the portal runs only once approved,
   * and the next Bind of the same statement needs its own approval.
   */
  private async bindWithApproval(f: Frame, portal: string, decided: DecidedStatement, permit: Permit<PgStatement>): Promise<void> {
    const d = decodeFrontend(f);
    if (!d.ok || d.message.name !== 'bind') return this.fatal('08P01', `hoop: protocol violation: ${d.ok ? 'bad bind' : d.reason}`);
    const params = boundParams(d.message.params, d.message.paramFormats, decided.paramTypes, decided.describedTypes);
    const out = await this.applyHold(this.enforcement!.approve(permit, { params, started: performance.now() }));
    if (this.ended) return;
    if (out.kind === 'forward') {
      const approved: DecidedStatement = { ...decided, permit: out.permits[0] };
      this.pushExpect({ k: 'bind', stmt: approved, names: this.serverNames.cursors.bind(portal, approved) });
      this.upOut.pass(f.raw);
      return;
    }
    if (out.endSession) return this.fatal('28000', out.message, out.detail);
    this.refuseBind(portal, gatewayError('ERROR', out.sqlstate ?? '42501', out.message, out.detail));
  }

  /** As for a Bind of an undecided statement: the upstream fails a Bind of a name that cannot exist, and discards to Sync. */
  private refuseBind(portal: string, error: Buffer): void {
    this.pushExpect({ k: 'bind', blocked: error });
    this.upOut.push(encodeFrontend({ name: 'bind', portal, statement: blockedText(), paramFormats: [], params: [], resultFormats: [] }));
    this.discarding = true;
  }

  /**
   * One message's statements through enforcement (decide, approve, check masks, audit, record):
   * their permits, or the ErrorResponse of the refusal (nothing runs). A held statement's notice
   * goes out while it waits.
   */
  private async enforce(req: EnforcementRequest<PgStatement>, decisions?: readonly Decision[]): Promise<{ ok: true; permits: readonly Permit<PgStatement>[] } | { ok: false; error: Buffer }> {
    const out = await this.applyHold(this.enforcement!.decide(req, decisions));
    if (out.kind === 'forward') return { ok: true, permits: out.permits };
    if (out.endSession) this.fatal('28000', out.message, out.detail);
    return { ok: false, error: gatewayError('ERROR', out.sqlstate ?? '42501', out.message, out.detail, out.hint, out.position) };
  }

  /** A held statement: the client is told it waits (a NoticeResponse with the approval id), then the wait's outcome. */
  private async applyHold(pending: Promise<Outcome<PgStatement>>): Promise<Forward<PgStatement> | Refuse<PgStatement>> {
    const out = await pending;
    if (out.kind !== 'hold') return out;
    this.downOut.push(gatewayNotice(out.message, out.detail));
    this.flushDown();
    return out.outcome;
  }

  // -------------------------------------------------------------------------------------------
  // Relay: upstream → client.

  private onServerMessage(f: Frame): Promise<void> | void {
    if (f.rest !== undefined && (f.code === BackendCode.ErrorResponse || f.code === BackendCode.NoticeResponse)) {
      // A long error or notice is decoded whole within the cap; beyond it, replaced (streaming.ts).
      this.serverPieces = false;
      if (f.raw.length + f.rest - 1 <= this.limits.maxMessageSize) return this.serverFramer.whole();
      f = { code: f.code, raw: oversizedServerText(f.raw, f.raw.length + f.rest, this.limits.maxMessageSize), bodyStart: 5 };
    }
    if (ANSWERS.has(f.code)) {
      const held = this.holdAnswer(f);
      if (held) return held;
    }
    switch (f.code) {
      case BackendCode.DataRow: {
        if (this.anyLimits && this.rowOverLimit()) {
          this.serverPieces = false;
          return;
        }
        if (this.plan === null && this.suppressed === undefined) {
          this.downOut.pass(f.raw);
          this.serverPieces = true;
          return;
        }
        if (f.rest !== undefined) return this.onMaskedRowHead(f);
        return this.maskRow(f);
      }
      case BackendCode.CommandComplete:
      case BackendCode.EmptyQueryResponse:
      case BackendCode.PortalSuspended:
        return this.onCommandDone(f);
      case BackendCode.ReadyForQuery: {
        // No transaction block open ('I', 'E'): the block that ended may have committed what was
        // answered inside it before its records were durable; this answer waits for them.
        const ready = this.enforcement?.beforeReady(f.raw[5] === TX_BLOCK);
        if (ready) return this.afterDurable(ready, f);
        this.maskedSinceReady = undefined;
        // Everything up to the Query/Sync this answers is settled.
        for (;;) {
          const e = this.headExpect();
          if (!e) break;
          this.popExpect();
          if (e.k === 'function') this.finishRun(e.run, e.error === undefined ? 'executed' : 'failed', e.error);
          // Name changes never answered did not happen; a Query that got here ran (and dropped the unnamed ones).
          if (e.k === 'query') {
            settle(e.names, true);
            for (const r of e.runs) settle(r.names, false);
          } else if (e.k === 'execute') settle(e.run.names, false);
          else if (e.k !== 'sync' && e.k !== 'function' && e.k !== 'describe') settle(e.names, false);
          if (e.k === 'query' || e.k === 'sync' || e.k === 'function') break;
        }
        this.txStatus = String.fromCharCode(f.raw[5]!) as TransactionStatus;
        this.names?.ready(this.txStatus);
        // Outside a transaction block: its portals are gone (a WITH HOLD cursor survives a commit).
        if (this.txStatus === 'I') this.serverNames.cursors.transactionEnded(this.errorSinceReady ? 'rollback' : 'commit');
        this.errorSinceReady = false;
        // Committed or rolled back: the catalog the masker reads is current again.
        if (this.txStatus === 'I') this.enforcement?.transactionEnded();
        this.plan = null;
        this.suppressed = undefined;
        this.downOut.pass(f.raw);
        this.readyWaiters.ready();
        if (this.anyLimits) this.armTimeLimit();
        return;
      }
      case BackendCode.ParameterStatus: {
        const p = parameterStatus(f.raw);
        const why = p ? unreadableParameter(p.name, p.value) : undefined;
        if (why) return this.endUnreadable(why);
        this.downOut.pass(f.raw);
        return;
      }
      case BackendCode.ErrorResponse:
        return this.onUpstreamError(f);
      case BackendCode.ParseComplete:
      case BackendCode.BindComplete:
      case BackendCode.CloseComplete: {
        const e = this.headExpect();
        if (e) {
          if (e.k === 'parse' || e.k === 'bind' || e.k === 'close') settle(e.names, true);
          this.popExpect();
        }
        this.downOut.pass(f.raw);
        if (this.anyLimits) this.armTimeLimit();
        return;
      }
      case BackendCode.RowDescription:
        return this.onRowDescription(f);
      case BackendCode.NoticeResponse:
        return this.relayServerText(f, this.statementInFlight());
      case BackendCode.NotificationResponse: {
        // Another session's NOTIFY payload: under every mask the policy has for this session (notifications.ts).
        this.notifications ??= new NotificationMasking(this.enforcement!);
        const out = this.notifications.relay(Buffer.from(f.raw));
        if (!(out instanceof Promise)) return void (out && this.downOut.push(out));
        return out.then((b) => void (b && this.downOut.push(b)));
      }
      case BackendCode.ParameterDescription: {
        const e = this.headExpect();
        if (e?.k === 'describe' && e.statement) {
          const d = decodeBackend(f);
          if (d.ok && d.message.name === 'parameterDescription') e.statement.describedTypes = d.message.types;
        }
        this.downOut.pass(f.raw);
        return;
      }
      case BackendCode.NoData: {
        const e = this.headExpect();
        if (e?.k === 'describe') {
          this.popExpect();
          if (e.hidden) return; // our own Describe: the client did not ask
        }
        this.downOut.pass(f.raw);
        return;
      }
      case BackendCode.CopyData:
        // COPY TO: one CopyData per row.
        if (this.anyLimits && this.rowOverLimit()) {
          this.serverPieces = false;
          return;
        }
        this.downOut.pass(f.raw);
        this.serverPieces = true;
        return;
      default:
        // ParameterDescription, notices, notifications, ParameterStatus, COPY traffic: relayed.
        // A ParameterDescription only answers a statement Describe, never our hidden portal one.
        this.downOut.pass(f.raw);
        this.serverPieces = true;
        return;
    }
  }

  /**
   * The answer to a state-changing statement (its CommandComplete, ErrorResponse...) goes out only
   * once its audit record is durable (audit.durability `commit`); meanwhile this direction pauses,
   * and the fsync runs while the client waits. An fsync that fails ends the session instead.
   */
  private holdAnswer(f: Frame): Promise<void> | undefined {
    const e = this.headExpect();
    const stmt = e?.k === 'query' ? e.runs[e.idx]?.stmt : e?.k === 'execute' || e?.k === 'function' ? e.run.stmt : e?.k === 'parse' || e?.k === 'bind' ? e.stmt : e?.k === 'describe' ? e.hidden?.stmt : undefined;
    // Inside an open transaction block, the answer of a statement that stays in it is not held;
    // one without a permit is held as if it could end the block (enforcement decides).
    const wait = this.enforcement?.beforeAnswer(stmt?.permit);
    return wait && this.afterDurable(wait, f);
  }

  /** Handles `f` again once `wait` settled (the records it answers for are durable); a failed fsync ends the session. */
  private afterDurable(wait: Promise<void>, f: Frame): Promise<void> {
    const copy: Frame = { ...f, raw: Buffer.from(f.raw) };
    // What was answered before it (a pipeline's statements inside a block) goes out meanwhile.
    this.flushDown();
    return wait.then(
      () => (this.ended ? undefined : this.onServerMessage(copy)),
      () => this.auditSyncFailed(),
    );
  }

  /** The audit log could not be fsync'd while this session's records were in doubt. */
  private auditSyncFailed(): void {
    this.fatal('58030', 'hoop: the audit log could not be made durable (fsync failed); the session is ended', 'no statement runs through this gateway until the audit log is healthy again (see /healthz)');
  }

  private currentRun(): Run | undefined {
    const e = this.headExpect();
    if (!e) return undefined;
    if (e.k === 'query') return e.runs[e.idx];
    if (e.k === 'execute') return e.run;
    return undefined;
  }

  private onCommandDone(f: Frame): void {
    const e = this.headExpect();
    let run: Run | undefined;
    if (e?.k === 'query') {
      run = e.runs[e.idx];
      e.idx++;
    } else if (e?.k === 'execute') {
      run = e.run;
      this.popExpect();
    }
    this.names?.completed(run?.stmt?.action, f.code === BackendCode.CommandComplete ? readCString(f.raw, 5)[0] : '');
    // The statement ran: what it did to prepared statements and cursors is now the server's state.
    if (run?.names) settle(run.names, f.code === BackendCode.CommandComplete, f.code === BackendCode.CommandComplete ? readCString(f.raw, 5)[0] : undefined);
    if (run?.limits && this.limitedAnswer(run, f)) return;
    if (this.suppressed !== undefined) {
      // A refused mask plan: the rows were dropped, the client gets the reason instead.
      this.downOut.push(gatewayError('ERROR', '42501', `hoop: blocked: ${this.suppressed}`));
      if (run) this.finishRun(run, 'blocked', this.suppressed);
      this.suppressed = undefined;
      this.plan = null;
      return;
    }
    this.plan = null;
    if (run && f.code === BackendCode.CommandComplete) {
      const [tag] = readCString(f.raw, 5);
      const n = rowsFromTag(tag);
      if (n !== undefined) run.rows = n;
    }
    if (run) this.finishRun(run, 'executed');
    this.downOut.pass(f.raw);
    if (this.anyLimits) this.armTimeLimit();
  }

  // -------------------------------------------------------------------------------------------
  // limit rows / limit time (result-limits.ts).

  /** Counts a row (or a COPY TO line) of the current run: true when it must be dropped. */
  private rowOverLimit(): boolean {
    const run = this.currentRun();
    const t = run?.limits?.time;
    if (t && !t.timer && !t.fired) this.armTimeLimit();
    const b = run?.limits?.rows;
    if (!b) return false;
    if (!dropRow(b)) {
      run!.rows++;
      return false;
    }
    if (!run!.exhausted && run!.limits!.cancelled === undefined) this.stopCut(run!);
    return true;
  }

  /**
   * Row max+1 arrived: cancel the statement upstream where that cannot touch anything else (a
   * single-statement simple Query outside a transaction block, nothing pipelined behind it, not a
   * write's RETURNING); otherwise the rest is drained (dropped as it arrives).
   */
  private stopCut(run: Run): void {
    const e = this.headExpect();
    const alone = e?.k === 'query' && e.runs.length === 1 && this.expect.length - this.expectHead === 1;
    if (!alone || run.limits!.write || this.txStatus !== 'I' || !this.upstreamCancel) return;
    run.limits!.cancelled = 'rows';
    this.cancelUpstream();
  }

  /** The upstream's answer to a limited run (CommandComplete, PortalSuspended): true when the client gets ours instead. */
  private limitedAnswer(run: Run, f: Frame): boolean {
    const l = run.limits!;
    this.clearTimeLimit(run);
    if (run.exhausted) {
      this.plan = null;
      this.suppressed = undefined;
      run.rows = 0;
      this.finishRun(run, 'executed');
      this.downOut.push(exhaustedAnswer(l));
      return true;
    }
    if (!l.rows?.cut) return false;
    this.plan = null;
    this.suppressed = undefined;
    this.finishRun(run, 'executed');
    const tag = f.code === BackendCode.CommandComplete ? readCString(f.raw, 5)[0] : undefined;
    for (const b of truncatedAnswer(l, run.rows, tag)) this.downOut.push(b);
    return true;
  }

  /**
   * An error answering a limited run: the cancel the gateway sent for `limit rows` (57014) is the
   * truncated result the client gets; for `limit time` the error names the rule. Undefined: relay as is.
   */
  private limitedError(f: Frame): Frame | 'answered' | undefined {
    const run = this.currentRun();
    const l = run?.limits;
    if (!l?.cancelled) return undefined;
    const d = decodeBackend(f);
    const code = d.ok && d.message.name === 'error' ? errorField(d.message.fields, 'C') : undefined;
    if (code !== '57014') return undefined;
    this.clearTimeLimit(run!);
    if (l.cancelled === 'rows') {
      // The server rolled the statement back (a read: nothing to undo) and skips nothing else (it was alone).
      this.names?.error();
      this.errorSinceReady = true;
      this.plan = null;
      this.suppressed = undefined;
      const e = this.headExpect();
      if (e?.k === 'query') e.idx = e.runs.length;
      this.finishRun(run!, 'executed');
      const answer = truncatedAnswer(l, run!.rows);
      // A cut COPY TO: the copy ends for the client too.
      if (l.verb === 'COPY') this.downOut.push(encodeBackend({ name: 'copyDone' }));
      for (const b of answer) this.downOut.push(b);
      return 'answered';
    }
    return { code: f.code, raw: timeLimitError(l), bodyStart: 5 };
  }

  /** Starts the `limit time` clock of the statement the server now works on. */
  private armTimeLimit(): void {
    const run = this.currentRun();
    const t = run?.limits?.time;
    if (!t || t.timer || t.fired || run!.finished) return;
    t.timer = setTimeout(() => {
      t.timer = undefined;
      if (run!.finished || this.ended || !this.upstreamCancel) return;
      t.fired = true;
      run!.limits!.cancelled ??= 'time';
      this.cancelUpstream();
    }, t.ms);
    t.timer.unref?.();
  }

  private clearTimeLimit(run: Run): void {
    const t = run.limits?.time;
    if (t?.timer) {
      clearTimeout(t.timer);
      t.timer = undefined;
    }
  }

  /**
   * The gateway's own cancel of the running statement. Until it was delivered and the statement's
   * ReadyForQuery came back, new statements wait (a cancel the server gets while idle is ignored;
   * one that arrived during a later statement would cancel that one).
   */
  private cancelUpstream(): void {
    const target = this.upstreamCancel!;
    const gate = Promise.all([this.readyWaiters.next(), sendCancel(target)]).then(() => {
      if (this.cancelGate === gate) this.cancelGate = undefined;
    });
    this.cancelGate = gate;
  }

  private afterCancel(f: Frame): Promise<void> {
    const copy: Frame = { ...f, raw: Buffer.from(f.raw) };
    return this.cancelGate!.then(() => (this.ended ? undefined : this.onClientMessage(copy)));
  }

  /** An Execute of a permit with `limit rate`: counted per execution (a Parse'd statement may run many times). */
  private async executeAdmitted(f: Frame, run: Run, portal: string): Promise<void> {
    const copy = Buffer.from(f.raw);
    const refused = await this.enforcement!.admit(run.stmt!.permit!);
    if (this.ended) return;
    if (refused) {
      const err = gatewayError('ERROR', refused.sqlstate ?? '53400', refused.message, refused.detail, refused.hint);
      this.pushExpect({ k: 'bind', blocked: err });
      this.upOut.push(encodeFrontend({ name: 'execute', portal: blockedText(), maxRows: 0 }));
      this.discarding = true;
      return;
    }
    this.names?.forward([run.stmt?.action]);
    if (run.stmt?.masked) {
      this.upOut.push(encodeFrontend({ name: 'describe', target: 'P', objectName: portal }));
      this.pushExpect({ k: 'describe', hidden: run });
    }
    this.pushExpect({ k: 'execute', run });
    this.upOut.pass(copy);
    this.armTimeLimit();
  }

  private onUpstreamError(f: Frame): Promise<void> | void {
    if (this.anyLimits) {
      const limited = this.limitedError(f);
      if (limited === 'answered') return;
      if (limited) f = limited;
    }
    this.names?.error();
    const e = this.headExpect();
    this.plan = null;
    this.suppressed = undefined;
    // The server's FATAL ends the session: nothing more from the gateway once it is relayed.
    const fatal = endsSession(f);
    if (fatal) this.upstreamSaidFatal = true;
    this.errorSinceReady = true;
    if (e && (e.k === 'query' || e.k === 'parse' || e.k === 'bind') && e.blocked) {
      // The stand-in for a refused statement failed as intended: the client sees the real reason
      // (as FATAL when the server made its error one, `exit_on_error`).
      this.downOut.push(fatal ? asFatal(e.blocked) : e.blocked);
      // A refused Parse of the unnamed statement still dropped it upstream.
      if (e.k === 'parse') settle(e.names, true);
      if (e.k !== 'query') this.popExpect();
      return;
    }
    const stmt = this.statementInFlight();
    const d = decodeBackend(f);
    const msg = recordedErrorText(d.ok && d.message.name === 'error' ? d.message.fields : undefined, stmt?.masked === true);
    if (e?.k === 'query') {
      const run = e.runs[e.idx];
      if (run) this.finishRun(run, 'failed', msg);
      // The failed statement and the rest of the message changed no names (settled at ReadyForQuery).
      e.idx = e.runs.length; // the rest of the message does not run
    } else if (e?.k === 'function') {
      e.error = msg;
    } else if (e && e.k !== 'sync') {
      // Extended protocol: the upstream now discards until Sync; so do our expectations.
      for (;;) {
        const h = this.headExpect();
        if (!h || h.k === 'sync') break;
        if (h.k === 'execute') {
          this.finishRun(h.run, 'failed', msg);
          settle(h.run.names, false);
        } else if (h.k === 'describe' && h.hidden) this.finishRun(h.hidden, 'failed', msg);
        else if (h.k === 'parse' || h.k === 'bind' || h.k === 'close') settle(h.names, false);
        this.popExpect();
      }
    }
    return this.relayServerText(f, stmt);
  }

  /** The decided statement the upstream is answering now: errors and notices are about it. */
  private statementInFlight(): DecidedStatement | undefined {
    const e = this.headExpect();
    switch (e?.k) {
      case 'query': {
        // The implicit COMMIT of a message (deferred triggers of any of its statements) runs during
        // its last statement, before that one's CommandComplete: from there on, about the masks of
        // the message's masked statements.
        const commitRuns = e.idx > e.runs.length - 1 || (e.idx === e.runs.length - 1 && e.runs.length > 1);
        const masked = commitRuns ? [...e.runs].reverse().find((r) => r.stmt?.masked)?.stmt : undefined;
        if (masked) return { ...masked, text: 'COMMIT' };
        return e.runs[e.idx]?.stmt;
      }
      case 'execute':
      case 'function':
        return e.run.stmt;
      case 'describe':
        return e.hidden?.stmt;
      case 'parse':
      case 'bind':
        return e.stmt;
      default:
        // A Sync's implicit COMMIT runs deferred triggers of the masked statement run before it.
        return this.maskedSinceReady && { ...this.maskedSinceReady, text: 'COMMIT' };
    }
  }

  /** An ErrorResponse or NoticeResponse: a masked statement's text goes through masked-errors.ts. */
  private relayServerText(f: Frame, stmt: DecidedStatement | undefined): Promise<void> | void {
    if (!stmt?.masked || !stmt.permit) {
      this.downOut.pass(f.raw);
      return;
    }
    // A FATAL goes out at once (the server closes the connection after it): a connection-level
    // message as sent, anything else (exit_on_error makes every ERROR a FATAL) withheld.
    if (endsSession(f)) {
      this.downOut.push(maskFatalText(Buffer.from(f.raw)));
      return;
    }
    return maskServerText(Buffer.from(f.raw), this.enforcement!.textPolicy(stmt.permit.decision.masks, stmt.lineageText ?? stmt.text)).then((out) => {
      if (out) this.downOut.push(out);
    });
  }

  private onRowDescription(f: Frame): Promise<void> | void {
    const e = this.headExpect();
    let run: Run | undefined;
    let hidden = false;
    if (e?.k === 'describe') {
      this.popExpect();
      run = e.hidden;
      hidden = e.hidden !== undefined;
    } else if (e?.k === 'query') run = e.runs[e.idx];
    if (!run?.stmt?.masked) {
      if (!hidden) this.downOut.pass(f.raw);
      return;
    }
    const raw = Buffer.from(f.raw);
    return this.planMasks(run, raw).then(() => {
      if (!hidden) this.downOut.push(raw);
    });
  }

  private async planMasks(run: Run, raw: Buffer): Promise<void> {
    const d = decodeBackend({ code: BackendCode.RowDescription, raw, bodyStart: 5 });
    const stmt = run.stmt!;
    let plan: MaskPlan;
    if (!d.ok || d.message.name !== 'rowDescription') plan = { ok: false, reason: 'cannot read the result description' };
    else if (!stmt.permit) plan = { ok: false, reason: 'internal error: a masked statement without its permit' };
    else plan = await this.enforcement!.planMasks(stmt.permit, d.message.fields);
    if (!plan.ok) {
      this.suppressed = plan.reason;
      this.plan = null;
      return;
    }
    run.plan = plan;
    this.plan = plan.passthrough ? null : plan;
  }

  /**
   * A long row of a masked result: masking decodes it, so it is collected whole within
   * `limits.max_message_size`; a longer one refuses the result (its rows are dropped, fail closed).
   */
  private onMaskedRowHead(f: Frame): void {
    this.serverPieces = false;
    const size = f.raw.length + f.rest!;
    if (this.suppressed === undefined && size - 1 <= this.limits.maxMessageSize) return this.serverFramer.whole();
    this.suppressed ??= `a row of ${size - 1} bytes is longer than the gateway can mask (limits.max_message_size ${this.limits.maxMessageSize})`;
  }

  private maskRow(f: Frame): void {
    if (this.suppressed !== undefined) return;
    const plan = this.plan;
    if (plan === null || !plan.ok) return;
    const r = new Reader(f.raw, 5);
    const n = r.int16();
    const values: (Buffer | null)[] = new Array<Buffer | null>(n);
    for (let i = 0; i < n; i++) {
      const len = r.int32();
      values[i] = len === -1 ? null : r.bytes(len);
    }
    this.downOut.push(encodeDataRow(plan.transformRow(values)));
  }

  private finishRun(run: Run, outcome: 'executed' | 'failed' | 'blocked', error?: string): void {
    run.finished = true;
    if (run.limits) this.clearTimeLimit(run);
    const stmt = run.stmt;
    if (stmt?.masked) this.maskedSinceReady = stmt;
    if (!stmt?.permit) return;
    // The outcome, rows and duration, linked to the decision record, and the recording's event.
    this.enforcement!.complete(stmt.permit, { outcome, rows: run.rows, durationMs: performance.now() - run.started, error, maskedColumns: run.plan?.ok ? run.plan.maskedColumns : [] });
  }

  // -------------------------------------------------------------------------------------------
  // Endings.

  /** Sends a FATAL error to the client and ends the session. */
  private fatal(sqlstate: string, message: string, detail?: string): void {
    if (this.ended) return;
    this.flushDown();
    if (!this.client.destroyed) this.client.write(gatewayError('FATAL', sqlstate, message, detail));
    this.end();
  }

  private upstreamLost(): void {
    if (this.ended || this.serverState !== 'ready') return;
    // What the server sent before it closed (a result, its own FATAL) is relayed first: a pump
    // waiting on a mask plan comes back here once it has drained.
    this.upstreamClosed = true;
    if (this.serverBusy) return;
    if (this.upstreamSaidFatal) return this.end();
    this.fatal('08006', 'hoop: the connection to the upstream server was lost');
  }

  private internalError(e: unknown): void {
    this.svc.log?.(`session ${this.id}: internal error: ${(e as Error)?.stack ?? String(e)}`);
    this.fatal('XX000', 'hoop: internal error in the gateway (please report)');
  }

  /** Idempotent teardown of both sides. */
  end(): void {
    if (this.ended) return;
    this.ended = true;
    this.clientState = 'closed';
    this.releaseUnauthenticated();
    // A client that vanished mid-statement: ask the upstream to stop working for nobody.
    if (this.server && this.expect.length > this.expectHead && this.cancelKey) void this.svc.cancels.cancel(this.cancelKey.pid, this.cancelKey.secret);
    this.cancelKey?.release();
    this.client.end();
    setTimeout(() => this.client.destroy(), 1000).unref();
    if (this.server) {
      this.serverState = 'closed';
      this.server.end();
      this.server.destroy();
    }
    // Its session_end record, the recording closed, an approval wait stopped.
    this.enforcement?.close();
  }

  get transactionStatus(): TransactionStatus {
    return this.txStatus;
  }
}
