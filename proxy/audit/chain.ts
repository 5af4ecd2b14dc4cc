// The audit chain's hashing rule, shared by the writer and the verifier so they cannot drift:
// each record line is canonical JSON (keys sorted at every level, no whitespace); its `hash` is the
// SHA-256 (hex) of the canonical JSON of the record without `hash` (so it covers `prev`, `seq` and
// `time`); `prev` is the previous record's `hash`, and the first record's `prev` is GENESIS.

import { hash } from 'node:crypto';

export const GENESIS = '0'.repeat(64);

/**
 * Canonical text of deeply frozen plain objects and arrays, computed once: they cannot change. A
 * session's token, identity and resource, and a statement's description, appear in every record
 * it writes; the gateway freezes them so the hot path serialises each only once.
 */
const frozenText = new WeakMap<object, string>();

export function canonicalJson(value: unknown): string {
  switch (typeof value) {
    case 'string':
      return JSON.stringify(value);
    case 'number':
      return Number.isFinite(value) ? String(value) : 'null';
    case 'boolean':
      return value ? 'true' : 'false';
    case 'object':
      return value === null ? 'null' : canonicalObject(value);
    default:
      // undefined, functions, symbols: absent in JSON (callers skip them as object members).
      return 'null';
  }
}

function canonicalObject(value: object): string {
  const cached = frozenText.get(value);
  if (cached !== undefined) return cached;
  // Cacheable when frozen and every member is a primitive or itself cached (deeply frozen).
  let cacheable = Object.isFrozen(value);
  let out: string;
  if (Array.isArray(value)) {
    out = '[';
    for (let i = 0; i < value.length; i++) {
      const v: unknown = value[i];
      out += (i ? ',' : '') + (v === undefined ? 'null' : canonicalJson(v));
      if (cacheable && typeof v === 'object' && v !== null && !frozenText.has(v)) cacheable = false;
    }
    out += ']';
  } else {
    const obj = value as Record<string, unknown>;
    const keys = Object.keys(obj).sort();
    out = '{';
    let first = true;
    for (const k of keys) {
      const v = obj[k];
      if (v === undefined || typeof v === 'function') continue;
      out += (first ? '' : ',') + JSON.stringify(k) + ':' + canonicalJson(v);
      first = false;
      if (cacheable && typeof v === 'object' && v !== null && !frozenText.has(v)) cacheable = false;
    }
    out += '}';
  }
  if (cacheable) frozenText.set(value, out);
  return out;
}

export function recordHash(recordWithoutHash: Record<string, unknown>): string {
  return sha256Hex(canonicalJson(recordWithoutHash));
}

/** One-shot SHA-256 (`crypto.hash` skips the Hash object; about half the cost of createHash for a record). */
function sha256Hex(text: string): string {
  return hash('sha256', text, 'hex');
}

/** Members the sealer owns; a body's own values for them are ignored. */
const SEALED_KEYS = new Set(['seq', 'time', 'prev', 'hash']);

/**
 * A record shape (its set of members): the members in sorted order, each with its serialised
 * `"name":` prefix, and where `hash` sorts among them. Records are built the same way every time
 * (a decision, a statement result), so a handful of shapes cover them; computing the order once per
 * shape instead of sorting and quoting member names for every record halves the sealer's own time.
 */
interface Shape {
  keys: string[];
  heads: string[];
  /** Index of the first member that sorts after `hash`. */
  hashAt: number;
}
const shapes = new Map<string, Shape>();
const MAX_SHAPES = 256;

function shapeOf(body: Record<string, unknown>): Shape {
  const own = Object.keys(body);
  const sig = own.join('\u0000');
  let shape = shapes.get(sig);
  if (shape) return shape;
  const keys = ['prev', 'seq', 'time'];
  for (const k of own) if (!SEALED_KEYS.has(k)) keys.push(k);
  keys.sort();
  let hashAt = keys.length;
  for (let i = 0; i < keys.length; i++) {
    if (keys[i]! > 'hash') {
      hashAt = i;
      break;
    }
  }
  shape = { keys, heads: keys.map((k) => JSON.stringify(k) + ':'), hashAt };
  if (shapes.size >= MAX_SHAPES) shapes.clear();
  shapes.set(sig, shape);
  return shape;
}

/** Builds the line (without newline) and hash for one record. */
export function sealRecord(body: Record<string, unknown>, seq: number, time: string, prev: string): { line: string; hash: string } {
  // No `{ ...body, seq, time, prev }`: in Node 20 a spread followed by properties costs ~1 µs per
  // property, and this runs twice per statement. Members are serialised once, in sorted order,
  // split around where `hash` sorts so the line is the hashed text with `hash` spliced in.
  const { keys, heads, hashAt } = shapeOf(body);
  let head = '';
  let tail = '';
  for (let i = 0; i < keys.length; i++) {
    const k = keys[i]!;
    const v = k === 'seq' ? seq : k === 'time' ? time : k === 'prev' ? prev : body[k];
    if (v === undefined || typeof v === 'function') continue;
    const member = heads[i]! + canonicalJson(v);
    if (i < hashAt) head += (head === '' ? '' : ',') + member;
    else tail += (tail === '' ? '' : ',') + member;
  }
  const hash = sha256Hex('{' + head + (head !== '' && tail !== '' ? ',' : '') + tail + '}');
  return { line: '{' + head + (head === '' ? '' : ',') + `"hash":"${hash}"` + (tail === '' ? '' : ',' + tail) + '}', hash };
}
