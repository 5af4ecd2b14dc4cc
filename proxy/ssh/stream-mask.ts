// `mask detect` on a byte stream (stdout/stderr of exec and interactive channels).
//
// Output is masked a line at a time: bytes are held until a newline, so a value split across
// writes (`41111111` + `11111111`) is still seen whole. A line longer than MAX_LINE is cut: the
// prefix is masked and sent, except the last TAIL bytes and any detected value reaching into them,
// which wait for the rest of the line (memory stays bounded by MAX_LINE + one chunk). `flushIdle`
// sends a line that has no newline yet (an interactive prompt) but keeps back its trailing word,
// the part that could still grow into a value.
//
// Bytes are read as latin1 (one char per byte), so binary output passes unchanged byte for byte
// and only detected ASCII values are replaced.

import { createDetector, detectAll, maskRanges, type Detector } from '../../stdlib/detectors/index.ts';
import { createMasker, REDACTED, type Masker } from '../../stdlib/maskers/index.ts';
import type { DetectorMask } from '../../engine/response.ts';

export const MAX_LINE = 64 * 1024;
export const TAIL = 4 * 1024;

interface Group {
  detectors: Detector[];
  masker: Masker;
}

export type MaskerBuild = { ok: true; masker: StreamMasker } | { ok: false; reason: string };

export function buildStreamMasker(masks: readonly DetectorMask[], hashKey?: string): MaskerBuild {
  const groups: Group[] = [];
  for (const m of masks) {
    const masker = createMasker(m.masker, hashKey ? { hashKey } : {});
    if (!masker.ok) return { ok: false, reason: `rule ${m.rule}: ${masker.message}` };
    const detectors: Detector[] = [];
    for (const spec of m.detectors) {
      const d = createDetector(spec);
      if (!d.ok) return { ok: false, reason: `rule ${m.rule}: ${d.message}` };
      detectors.push(d.detector);
    }
    groups.push({ detectors, masker: masker.masker });
  }
  return { ok: true, masker: new StreamMasker(groups) };
}

export class StreamMasker {
  #pending: Buffer = Buffer.alloc(0);
  readonly #groups: Group[];

  constructor(groups: Group[]) {
    this.#groups = groups;
  }

  get pendingBytes(): number {
    return this.#pending.length;
  }

  /** Masked bytes that can be sent now (possibly empty). */
  push(chunk: Buffer): Buffer {
    const buf = this.#pending.length === 0 ? chunk : Buffer.concat([this.#pending, chunk]);
    const nl = buf.lastIndexOf(0x0a);
    let out: Buffer[] = [];
    let rest = buf;
    if (nl >= 0) {
      out.push(this.#mask(buf.subarray(0, nl + 1)));
      rest = buf.subarray(nl + 1);
    }
    if (rest.length > MAX_LINE) {
      const cut = this.#safeCut(rest, rest.length - TAIL);
      out.push(this.#mask(rest.subarray(0, cut)));
      rest = rest.subarray(cut);
    }
    this.#pending = Buffer.from(rest);
    if (out.length === 1) return out[0]!;
    return out.length === 0 ? Buffer.alloc(0) : Buffer.concat(out);
  }

  /** Interactive output with no newline for a while: send it, keeping back the word it ends with. */
  flushIdle(): Buffer {
    if (this.#pending.length === 0) return this.#pending;
    const text = this.#pending.toString('latin1');
    let i = text.length;
    while (i > 0 && !/[\s]/.test(text[i - 1]!)) i--;
    const cut = this.#safeCut(this.#pending, i);
    const out = this.#mask(this.#pending.subarray(0, cut));
    this.#pending = Buffer.from(this.#pending.subarray(cut));
    return out;
  }

  /** Everything still held, masked (the stream ended). */
  end(): Buffer {
    const out = this.#mask(this.#pending);
    this.#pending = Buffer.alloc(0);
    return out;
  }

  /** A cut at or before `at` that no detected value in `buf` crosses. */
  #safeCut(buf: Buffer, at: number): number {
    const text = buf.toString('latin1');
    let cut = at;
    for (const g of this.#groups) {
      for (const r of detectAll(g.detectors, text)) if (r.start < cut && r.end >= cut) cut = r.start;
    }
    return Math.max(0, cut);
  }

  #mask(buf: Buffer): Buffer {
    if (buf.length === 0) return buf;
    let text = buf.toString('latin1');
    let changed = false;
    for (const g of this.#groups) {
      const ranges = detectAll(g.detectors, text);
      if (ranges.length === 0) continue;
      changed = true;
      // A masker that answers NULL (`null`) blanks the value's whole line.
      text = maskRanges(text, ranges, g.masker) ?? (text.endsWith('\n') ? `${REDACTED}\n` : REDACTED);
    }
    return changed ? Buffer.from(text, 'latin1') : buf;
  }
}
