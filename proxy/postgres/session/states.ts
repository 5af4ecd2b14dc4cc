// The session's states, enumerated (pgbouncer's include/bouncer.h). They change only through
// `transition`, which refuses moves the protocol does not allow: a bug there is an internal error.

export type ClientState =
  /** Waiting for SSLRequest / GSSENCRequest / CancelRequest / StartupMessage. */
  | 'startup'
  | 'tls_handshake'
  /** AuthenticationCleartextPassword sent; waiting for the token. */
  | 'awaiting_token'
  /** Token received; verifying it and connecting upstream. */
  | 'authenticating'
  /** Relaying statements. */
  | 'ready'
  | 'closed';

const CLIENT_MOVES: Record<ClientState, readonly ClientState[]> = {
  startup: ['tls_handshake', 'awaiting_token', 'closed'],
  tls_handshake: ['startup', 'closed'],
  awaiting_token: ['authenticating', 'closed'],
  authenticating: ['ready', 'closed'],
  ready: ['closed'],
  closed: [],
};

export type ServerState = 'none' | 'connecting' | 'ready' | 'closed';

const SERVER_MOVES: Record<ServerState, readonly ServerState[]> = {
  none: ['connecting', 'closed'],
  connecting: ['ready', 'closed'],
  ready: ['closed'],
  closed: [],
};

export function canMoveClient(from: ClientState, to: ClientState): boolean {
  return CLIENT_MOVES[from].includes(to);
}

export function canMoveServer(from: ServerState, to: ServerState): boolean {
  return SERVER_MOVES[from].includes(to);
}
