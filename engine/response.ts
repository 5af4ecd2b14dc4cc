// What the engine answers. The proxy, the CLI and the tests see only these types.

import type { Span, Verdict } from '../language/ast.ts';

export type { Verdict };

/** A rule that determined a verdict. */
export interface Reason {
  /** Fully qualified id: `package.name`, or `name` in the root package. */
  id: string;
  /** The rule's own name (what `expect rules [...]` and error messages show). */
  rule: string;
  package: string;
  span: Span;
}

export interface MaskerSpec {
  /** `redact`, `null`, `email`, `last4`, `hash`, `partial` */
  name: string;
  /** `partial(n)` → [n] */
  args: number[];
}

export interface DetectorSpec {
  /** `email`, `credit_card`, ..., `regex` */
  name: string;
  /** `regex("...")` → ["..."] */
  args: string[];
}

export interface ColumnMask {
  /** Normalised `schema.table.column` (lower-cased; schema `public` when not written). */
  column: string;
  masker: MaskerSpec;
  /** Rule id that asked for it. */
  rule: string;
}

export interface DetectorMask {
  detectors: DetectorSpec[];
  masker: MaskerSpec;
  rule: string;
}

export interface Masks {
  columns: ColumnMask[];
  detectors: DetectorMask[];
}

/** `limit rows N`: the result is cut after `rows` rows. `rule` is the id of the rule that set it. */
export interface RowLimit {
  rows: number;
  rule: string;
}

/** `limit time D`: the statement is cancelled after `ms`. */
export interface TimeLimit {
  ms: number;
  rule: string;
}

/** `limit rate N per D`: at most `count` requests per `windowMs`, counted per identity `sub` and `rule`. */
export interface RateLimit {
  count: number;
  windowMs: number;
  rule: string;
}

/**
 * Every limit that applies to a request that may run: the smallest row limit and the shortest time
 * limit (ties go to the rule with the smallest id), and every rate limit, by rule id then window
 * (each rule counts on its own, so the request must fit all of them; within a rule, the smallest
 * count per window). Never on a block.
 */
export interface Limits {
  rows?: RowLimit;
  time?: TimeLimit;
  rate: RateLimit[];
}

/** A rule whose `if` condition failed at run time; the rule counted as a block (fail closed). */
export interface RuleError {
  rule: string;
  message: string;
}

export interface Decision {
  verdict: Verdict;
  /** Masks to apply (present on `mask` and `approve`; empty otherwise). */
  masks: Masks;
  /** Approver groups (on `approve`), sorted and deduplicated. */
  approvers: string[];
  /** The shortest `within` among the approving rules, in ms (on `approve`). */
  approvalWithinMs?: number;
  /** `approve by N of ...`: distinct approvers needed (on `approve`, when more than 1: the largest among the approving rules). */
  approvalQuorum?: number;
  /**
   * `lasting D` (on `approve`): once approved, the same identity's statements of the same
   * fingerprint on the same resource run without a new request for this long. Present only when
   * every approving rule says `lasting`; the shortest.
   */
  approvalLastingMs?: number;
  /** The block message (rule's message, or the default's), when blocked. */
  message?: string;
  /** Exactly the applying rules of the winning effect (for mask: granting plus masking), sorted by id. */
  reasons: Reason[];
  /**
   * The limits to apply (engine/response.ts Limits); absent when none applies, always absent on
   * block. Limits never change the verdict, the reasons or the masks.
   */
  limits?: Limits;
  /** True when no rule granted and the set's default decided. */
  defaulted: boolean;
  errors: RuleError[];
}

/** Why each rule did or did not apply (for `--explain`, failed tests and dry-run). */
export type RuleOutcome =
  | { status: 'applied'; effects: string[] }
  | { status: 'skipped'; selector: 'on' | 'when' | 'match' | 'if'; detail: string }
  | { status: 'error'; detail: string };

export interface RuleExplanation {
  id: string;
  span: Span;
  outcome: RuleOutcome;
}

export interface Explanation {
  decision: Decision;
  rules: RuleExplanation[];
  /** The facts the decision was made over (as given to CEL). */
  facts: unknown;
}
