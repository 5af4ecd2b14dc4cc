// `hoop shadow report`: the disagreements a shadow policy (`policy_shadow:`) recorded in the audit
// log, grouped by the candidate's deciding rules and the statement's fingerprint. Pure over the
// records; reading the file is the command's job.

import type { ShadowRecord } from '../../proxy/enforcement/shadow.ts';
import { escapeControls, oneLine } from '../../stdlib/terminal-text.ts';

/** The fields of a decision record the report reads (proxy/ports.ts AuditRecordInput). */
export interface ShadowedRecord {
  type?: string;
  time?: string;
  verdict?: string;
  rules?: string[];
  identity?: { sub?: string };
  resource?: { kind?: string; name?: string };
  statement?: { fingerprint?: string; normalized?: string; kind?: string };
  shadow?: ShadowRecord;
}

export interface ShadowGroup {
  /** The candidate's deciding rules (`(default)` when its default decided). */
  rules: string[];
  fingerprint: string;
  /** `allow → block` and the like, with how often each occurred. */
  transitions: Record<string, number>;
  differs: string[];
  count: number;
  statement: string;
  kind?: string;
  subjects: string[];
  resources: string[];
  first?: string;
  last?: string;
  /** The candidate's block message, if it blocks. */
  message?: string;
}

export interface ShadowReport {
  decisions: number;
  disagreements: number;
  /** By transition (`allow → block`), over every disagreement. */
  transitions: Record<string, number>;
  /** Largest first, then by rules and fingerprint. */
  groups: ShadowGroup[];
  /** Lines that were not JSON records (a torn last line, another file). */
  unreadable: number;
}

const MAX_LISTED = 5;

export class ShadowSummary {
  #decisions = 0;
  #disagreements = 0;
  #unreadable = 0;
  readonly #transitions = new Map<string, number>();
  readonly #groups = new Map<string, ShadowGroup>();

  /** One line of the audit log. */
  line(text: string): void {
    if (text.trim() === '') return;
    let rec: ShadowedRecord;
    try {
      rec = JSON.parse(text) as ShadowedRecord;
    } catch {
      this.#unreadable++;
      return;
    }
    if (!rec || typeof rec !== 'object') {
      this.#unreadable++;
      return;
    }
    this.add(rec);
  }

  add(rec: ShadowedRecord): void {
    if (rec.type !== 'decision') return;
    this.#decisions++;
    const s = rec.shadow;
    if (!s || typeof s !== 'object' || typeof s.verdict !== 'string') return;
    this.#disagreements++;
    const transition = `${rec.verdict ?? '?'} → ${s.verdict}`;
    this.#transitions.set(transition, (this.#transitions.get(transition) ?? 0) + 1);
    const rules = Array.isArray(s.reasons) && s.reasons.length > 0 ? [...s.reasons].sort() : ['(default)'];
    const fingerprint = rec.statement?.fingerprint ?? '';
    const key = `${rules.join(',')}\u0000${fingerprint}`;
    let g = this.#groups.get(key);
    if (!g) {
      g = { rules, fingerprint, transitions: {}, differs: [], count: 0, statement: rec.statement?.normalized ?? '', subjects: [], resources: [] };
      if (rec.statement?.kind) g.kind = rec.statement.kind;
      this.#groups.set(key, g);
    }
    g.count++;
    g.transitions[transition] = (g.transitions[transition] ?? 0) + 1;
    for (const d of Array.isArray(s.differs) ? s.differs : []) if (!g.differs.includes(d)) g.differs.push(d);
    const sub = rec.identity?.sub;
    if (sub !== undefined && !g.subjects.includes(sub)) g.subjects.push(sub);
    const resource = rec.resource?.name !== undefined ? `${rec.resource.kind ?? '?'}:${rec.resource.name}` : undefined;
    if (resource !== undefined && !g.resources.includes(resource)) g.resources.push(resource);
    if (rec.time) {
      if (!g.first || rec.time < g.first) g.first = rec.time;
      if (!g.last || rec.time > g.last) g.last = rec.time;
    }
    if (s.message !== undefined && g.message === undefined) g.message = s.message;
  }

  report(): ShadowReport {
    const groups = [...this.#groups.values()]
      .map((g) => ({ ...g, subjects: [...g.subjects].sort(), resources: [...g.resources].sort(), differs: [...g.differs].sort() }))
      .sort((a, b) => b.count - a.count || a.rules.join(',').localeCompare(b.rules.join(',')) || a.fingerprint.localeCompare(b.fingerprint));
    return {
      decisions: this.#decisions,
      disagreements: this.#disagreements,
      transitions: Object.fromEntries([...this.#transitions].sort((a, b) => b[1] - a[1] || a[0].localeCompare(b[0]))),
      groups,
      unreadable: this.#unreadable,
    };
  }
}

const list = (xs: string[]): string => (xs.length <= MAX_LISTED ? xs.join(', ') : `${xs.slice(0, MAX_LISTED).join(', ')} and ${xs.length - MAX_LISTED} more`);

export function renderShadowReport(r: ShadowReport, file: string): string {
  const out: string[] = [];
  if (r.disagreements === 0) {
    out.push(`${file}: ${r.decisions} decision(s), the shadow policy agreed with every one`);
  } else {
    const pct = r.decisions === 0 ? 0 : Math.round((r.disagreements / r.decisions) * 1000) / 10;
    out.push(`${file}: ${r.disagreements} of ${r.decisions} decision(s) (${pct}%) would change under the shadow policy`);
    out.push(`  ${Object.entries(r.transitions).map(([t, n]) => `${t}: ${n}`).join(', ')}`);
    let rules = '';
    for (const g of r.groups) {
      const name = g.rules.join(', ');
      if (name !== rules) {
        out.push('', `shadow rules ${name}`);
        rules = name;
      }
      out.push(`  ${g.count}× ${Object.keys(g.transitions).join(', ')}${g.differs.some((d) => d !== 'verdict') ? ` (differs: ${g.differs.join(', ')})` : ''}  fingerprint ${g.fingerprint || '(none)'}`);
      out.push(`     ${oneLine(g.statement, 160)}`);
      out.push(`     by ${list(g.subjects)} on ${list(g.resources)}${g.first ? `, ${g.first === g.last ? g.first : `${g.first} – ${g.last}`}` : ''}`);
      if (g.message !== undefined) out.push(`     would answer: ${oneLine(g.message, 160)}`);
    }
  }
  if (r.unreadable > 0) out.push('', `(${r.unreadable} line(s) were not JSON records and were skipped)`);
  return `${out.map(escapeControls).join('\n')}\n`;
}
