// Re-decides recorded statements under a policy: the same classification and request the gateway
// built (proxy/enforcement/decide.ts), from what the recording kept: the header's
// identity, resource, client address and session id, the statement's text and decision time, and
// the session's SQL-level prepared statements and cursors as they were at that point.
//
// Decisions are cached when that is provably safe. A decision reads only its request: identity,
// resource, action and context (the evaluator and the CEL functions are deterministic; the only
// way a policy reads the context is a CEL condition naming `context`). So:
//   - the cache is keyed on the exact identity and resource (their JSON) and on the action object
//     itself (the SQL classifier returns the same frozen object for the same text and prepared
//     state, and a new object otherwise), and
//   - it is used only when no condition of the policy mentions `context` anywhere in its source
//     (a textual test: a string literal "context" also disables the cache, which is merely slower).
// In front of it sits a cache by exact text, per identity and resource, used only while the
// session has no SQL-level prepared statements or cursors: then classification is a function of the text
// alone (the classifier's own contract), so text → actions → decisions is too. It saves the
// classifier's LRU bookkeeping and the evaluation on the hot path (recorded traffic repeats).

import { combineDecisions, withReadView, type Decision, type PreparedPolicy } from '../engine/index.ts';
import { ServerNames } from '../proxy/postgres/session/server-names.ts';
import { sessionChangesOf, type SessionChange } from '../stdlib/sql/index.ts';
import type { RecordingHeader, RecordingStatement } from '../proxy/recording/index.ts';
import type { Classifiers } from '../engine/tester/runner.ts';
import type { Action, Request, RequestContext, SqlAction } from '../stdlib/facts.ts';

export type { Classifiers };

export interface Redecided {
  decision: Decision;
  /** One action per statement the text holds (normally one); all decided over the same identity, resource and context. */
  actions: readonly Action[];
  identity: Request['identity'];
  resource: Request['resource'];
  /** The recorded context (built on first read: a cached decision does not need it). */
  readonly context: RequestContext;
}

class Redecision implements Redecided {
  #context: RequestContext | undefined;
  constructor(
    readonly decision: Decision,
    readonly actions: readonly Action[],
    readonly identity: Request['identity'],
    readonly resource: Request['resource'],
    private readonly header: RecordingHeader,
    private readonly event: RecordingStatement,
  ) {}

  get context(): RequestContext {
    return (this.#context ??= recordedContext(this.header, this.event));
  }
}

/** The request context the gateway decided `event` in. */
export function recordedContext(header: RecordingHeader, event: RecordingStatement): RequestContext {
  return { time: decisionTime(event), client_addr: header.client_addr, session_id: header.session_id };
}

/** The request of the first statement (for explanations); undefined for a text without statements. */
export function firstRequest(r: Redecided): Request | undefined {
  const action = r.actions[0];
  return action ? { identity: r.identity, resource: r.resource, action, context: r.context } : undefined;
}

export interface SessionRedecider {
  /** Decide one recorded statement (in recording order: it updates the session's prepared statements). */
  decide(event: RecordingStatement): Redecided;
}

export interface Redecider {
  session(header: RecordingHeader): SessionRedecider;
  /** True when decisions are cached (the policy never reads `context`). */
  readonly caching: boolean;
}

/** Identity/resource pairs whose decision caches are kept; beyond this the oldest half is dropped. */
const MAX_SUBJECTS = 4096;
/** Texts remembered over all subjects; when reached, the text caches start over (bounded memory). */
const MAX_TEXTS = 100_000;

interface SubjectCache {
  byAction: WeakMap<Action, Decision>;
  byText: Map<string, { decision: Decision; actions: Action[] }>;
}

/** True when some condition of the policy may read the request context. */
export function readsContext(policy: PreparedPolicy): boolean {
  return policy.ir.rules.some((r) => r.conditions.some((c) => c.source.includes('context')));
}

export function createRedecider(policy: PreparedPolicy, classifiers: Classifiers): Redecider {
  const caching = !readsContext(policy);
  const bySubject = new Map<string, SubjectCache>();
  let texts = 0;

  const cacheFor = (header: RecordingHeader): SubjectCache | undefined => {
    if (!caching) return undefined;
    const key = JSON.stringify([header.identity, header.resource]);
    let cache = bySubject.get(key);
    if (!cache) {
      if (bySubject.size >= MAX_SUBJECTS) {
        let drop = MAX_SUBJECTS / 2;
        for (const k of bySubject.keys()) {
          if (drop-- <= 0) break;
          bySubject.delete(k);
        }
      }
      cache = { byAction: new WeakMap(), byText: new Map() };
      bySubject.set(key, cache);
    }
    return cache;
  };

  return {
    caching,
    session(header: RecordingHeader): SessionRedecider {
      const cache = cacheFor(header);
      // The session's prepared statements and cursors as the gateway tracked them (the same tracker).
      const names = new ServerNames<{ action: SqlAction; text: string; change: SessionChange | null }>();
      const prepared = names.options.prepared!;
      const cursors = names.options.cursors!;
      const { identity, resource } = header;
      const evaluate = (action: Action, context: RequestContext): Decision => {
        if (cache) {
          const hit = cache.byAction.get(action);
          if (hit) return hit;
        }
        const decision = policy.evaluate({ identity, resource, action, context });
        cache?.byAction.set(action, decision);
        return decision;
      };
      return {
        decide(event: RecordingStatement): Redecided {
          const stateless = prepared.size === 0 && cursors.size === 0;
          const byText = cache && stateless ? cache.byText : undefined;
          const known = byText?.get(event.text);
          let actions: Action[];
          let decision: Decision;
          if (known) {
            actions = known.actions;
            decision = known.decision;
          } else {
            if (resource.kind === 'ssh') actions = [classifiers.shell.classify(event.text)];
            else actions = classifiers.sql.classify(event.text, stateless ? undefined : names.options);
            const context = recordedContext(header, event);
            // As the gateway decides (proxy/enforcement/decide.ts): a statement that reads
            // also gets the masks of the read it contains.
            const decisions = actions.map((a) => withReadView(evaluate(a, context), a.type === 'sql' ? classifiers.readView?.(a) : undefined, (read) => evaluate(read, context), policy.tableScopes));
            decision = decisions.length === 1 ? decisions[0]! : combineDecisions(decisions);
            if (byText) {
              if (texts >= MAX_TEXTS) {
                for (const c of bySubject.values()) c.byText.clear();
                texts = 0;
              }
              byText.set(event.text, { decision, actions });
              texts += 1;
            }
          }
          // The gateway tracks PREPARE/DEALLOCATE and DECLARE/CLOSE of statements the server ran (a
          // failed PREPARE takes no name). A recording does not say where implicit transactions end,
          // so cursors end only at CLOSE, DISCARD ALL and COMMIT/ROLLBACK statements here.
          if (resource.kind !== 'ssh' && event.outcome === 'executed') {
            const changes = sessionChangesOf(event.text);
            actions.forEach((a, i) => {
              const change = changes[i] ?? null;
              const tag = change?.transaction === 'commit' ? 'COMMIT' : undefined;
              for (const t of names.statement({ action: a as SqlAction, text: a.text, change }) ?? []) t.confirm(tag);
            });
          }
          return new Redecision(decision, actions, identity, resource, header, event);
        },
      };
    },
  };
}

/**
 * When the gateway decided the statement. `time` is written when the statement finished and
 * `duration_ms` runs from just before the decision, so their difference is the decision time
 * (to within a millisecond); without a duration, `time` is the best there is.
 */
export function decisionTime(e: Pick<RecordingStatement, 'time' | 'duration_ms'>): string {
  if (e.duration_ms === undefined || !(e.duration_ms > 0)) return e.time;
  const t = Date.parse(e.time);
  if (Number.isNaN(t)) return e.time;
  return new Date(t - Math.round(e.duration_ms)).toISOString();
}

