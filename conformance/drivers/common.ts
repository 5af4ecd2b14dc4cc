// Shared by the Node driver scripts: the connection target from the environment, one JSON line per step.
// The other languages' scripts follow the same conventions (see README.md).

export interface Target {
  host: string;
  port: number;
  user: string;
  password: string;
  database: string;
}

export function target(): Target {
  const e = process.env;
  if (!e.DRV_HOST || !e.DRV_PORT || !e.DRV_USER || !e.DRV_PASSWORD || !e.DRV_DATABASE) throw new Error('DRV_HOST, DRV_PORT, DRV_USER, DRV_PASSWORD and DRV_DATABASE must be set');
  return { host: e.DRV_HOST, port: Number(e.DRV_PORT), user: e.DRV_USER, password: e.DRV_PASSWORD, database: e.DRV_DATABASE };
}

/** A value as JSON the same way every time: bytes as hex, dates as ISO text, bigints as text. */
export function norm(v: unknown): unknown {
  if (v === null || v === undefined) return null;
  if (typeof v === 'bigint') return `${v}`;
  if (Buffer.isBuffer(v) || v instanceof Uint8Array) return `\\x${Buffer.from(v).toString('hex')}`;
  if (v instanceof Date) return v.toISOString();
  if (Array.isArray(v)) return v.map(norm);
  if (typeof v === 'object') return Object.fromEntries(Object.entries(v as Record<string, unknown>).map(([k, x]) => [k, norm(x)]));
  return v;
}

export function sqlstateOf(e: unknown): string {
  const x = e as { code?: unknown; message?: unknown };
  return typeof x?.code === 'string' ? x.code : `no SQLSTATE: ${String(x?.message ?? e)}`;
}

/** Runs one step and prints {step, value} or, for an unexpected failure, {step, error}. */
export async function step(name: string, fn: () => Promise<unknown>): Promise<void> {
  try {
    const value = await fn();
    process.stdout.write(`${JSON.stringify({ step: name, value: norm(value) })}\n`);
  } catch (e) {
    const x = e as { code?: unknown; message?: unknown };
    process.stdout.write(`${JSON.stringify({ step: name, error: `${typeof x?.code === 'string' ? x.code : ''} ${String(x?.message ?? e)}`.trim() })}\n`);
  }
}

/** Polls until `probe` says yes (an event seen from another session, not a fixed sleep). */
export async function until(probe: () => Promise<boolean>, what: string, ms = 20_000): Promise<void> {
  const deadline = Date.now() + ms;
  while (!(await probe())) {
    if (Date.now() > deadline) throw new Error(`timed out waiting for ${what}`);
    await new Promise((r) => setTimeout(r, 20));
  }
}

// The values every script sends as parameters (each language spells them in its own types).
export const UNICODE = 'héllo wörld — 日本語 🐘 \u00e9\u0301';
export const BIG = '9007199254740993';
export const NUMERIC = '12345678901234567890.123456789';
export const UUID = 'a0eebc99-9c0b-4ef8-bb6d-6bb9bd380a11';
export const JSON_DOC = { a: [1, 2, { b: null }], 'ü': 'x' };
export const TS = '2024-02-29T12:34:56.789Z';
export const DATE = '2024-02-29';
export const BYTES = Buffer.from([0, 1, 0xff, 0x7f, 0x5c, 0x27]);
export const ROWS = 200_000;
