// Property: the framer's output does not depend on how the bytes are split into chunks, and every
// encoded message decodes back to itself (STYLE.md: conformance properties for the wire codec).

import { fc, test } from '@fast-check/vitest';
import { describe, expect } from 'vitest';
import { decodeBackend, encodeBackend, type BackendMessage } from '../proxy/postgres/wire/backend.ts';
import { Framer } from '../proxy/postgres/wire/framer.ts';
import { decodeFrontend, encodeFrontend, type FrontendMessage } from '../proxy/postgres/wire/frontend.ts';
import { propertyRuns } from './runs.ts';

const text = fc.string({ unit: 'grapheme', maxLength: 40 }).filter((s) => !s.includes('\0'));
const bytes = fc.uint8Array({ maxLength: 64 }).map((a) => Buffer.from(a));

const frontend: fc.Arbitrary<FrontendMessage> = fc.oneof(
  text.map((t) => ({ name: 'query' as const, text: t })),
  fc.record({ name: fc.constant('parse' as const), statement: text, text, paramTypes: fc.array(fc.nat({ max: 0xffffffff }), { maxLength: 5 }) }),
  fc.record({
    name: fc.constant('bind' as const),
    portal: text,
    statement: text,
    paramFormats: fc.array(fc.constantFrom(0, 1), { maxLength: 4 }),
    params: fc.array(fc.option(bytes, { nil: null }), { maxLength: 4 }),
    resultFormats: fc.array(fc.constantFrom(0, 1), { maxLength: 4 }),
  }),
  fc.record({ name: fc.constant('describe' as const), target: fc.constantFrom('S' as const, 'P' as const), objectName: text }),
  fc.record({ name: fc.constant('execute' as const), portal: text, maxRows: fc.nat() }),
  fc.record({ name: fc.constant('close' as const), target: fc.constantFrom('S' as const, 'P' as const), objectName: text }),
  bytes.map((data) => ({ name: 'copyData' as const, data })),
  fc.constantFrom<FrontendMessage>({ name: 'sync' }, { name: 'flush' }, { name: 'copyDone' }, { name: 'terminate' }),
);

const backend: fc.Arbitrary<BackendMessage> = fc.oneof(
  fc.array(fc.option(bytes, { nil: null }), { maxLength: 8 }).map((values) => ({ name: 'dataRow' as const, values })),
  text.map((tag) => ({ name: 'commandComplete' as const, tag })),
  fc.constantFrom('I' as const, 'T' as const, 'E' as const).map((status) => ({ name: 'readyForQuery' as const, status })),
  fc.array(fc.tuple(fc.constantFrom('S', 'C', 'M', 'D', 'H', 'P'), text), { maxLength: 5 }).map((fields) => ({ name: 'error' as const, fields })),
  fc.record({ name: fc.constant('parameterStatus' as const), key: text, value: text }),
  fc.record({ name: fc.constant('notification' as const), pid: fc.integer({ min: -0x80000000, max: 0x7fffffff }), channel: text, payload: text }),
  fc.array(
    fc.record({
      name: text,
      tableOid: fc.nat({ max: 0xffffffff }),
      columnAttr: fc.integer({ min: -32768, max: 32767 }),
      typeOid: fc.nat({ max: 0xffffffff }),
      typeSize: fc.integer({ min: -32768, max: 32767 }),
      typeModifier: fc.integer({ min: -0x80000000, max: 0x7fffffff }),
      format: fc.constantFrom(0 as const, 1 as const),
    }),
    { maxLength: 4 },
  ).map((fields) => ({ name: 'rowDescription' as const, fields })),
);

/** Cut points (sorted, deduplicated) splitting a buffer into chunks. */
function chunk(buf: Buffer, cuts: number[]): Buffer[] {
  const points = [...new Set(cuts.map((c) => c % (buf.length + 1)))].sort((a, b) => a - b);
  const out: Buffer[] = [];
  let prev = 0;
  for (const p of points) {
    out.push(buf.subarray(prev, p));
    prev = p;
  }
  out.push(buf.subarray(prev));
  return out;
}

function frameAll(chunks: Buffer[]): string[] {
  const f = new Framer();
  const out: string[] = [];
  for (const c of chunks) {
    f.push(c);
    for (;;) {
      const r = f.next();
      if (r === null) break;
      if ('error' in r) throw new Error(r.error);
      out.push(r.raw.toString('hex'));
    }
  }
  return out;
}

/** Frames with streaming on (CopyData and DataRow longer than `above`), each message's head and pieces joined back. */
function frameStreamed(chunks: Buffer[], above: number, wholeEvery: number): string[] {
  const f = new Framer();
  f.stream = { codes: new Set([0x64, 0x44]), above };
  const out: string[] = [];
  let current: Buffer[] | undefined;
  let heads = 0;
  for (const c of chunks) {
    f.push(c);
    for (;;) {
      const r = f.next();
      if (r === null) break;
      if ('error' in r) throw new Error(r.error);
      if (r.piece) {
        current!.push(Buffer.from(r.raw));
        if (r.rest === 0) {
          out.push(Buffer.concat(current!).toString('hex'));
          current = undefined;
        }
      } else if (r.rest !== undefined) {
        // A head: some are asked for whole (what a masked row or a statement gets), the rest stream.
        if (heads++ % wholeEvery === 0) f.whole();
        else current = [Buffer.from(r.raw)];
      } else out.push(r.raw.toString('hex'));
    }
  }
  return out;
}

describe('wire framing', () => {
  test.prop([fc.array(backend, { minLength: 1, maxLength: 12 }), fc.array(fc.nat(), { maxLength: 20 }), fc.integer({ min: 8, max: 64 }), fc.integer({ min: 1, max: 3 })], { numRuns: propertyRuns() })(
    'streamed messages (head, then pieces) join back to the same messages, whatever the chunking (issue 14 item 15)',
    (msgs, cuts, above, wholeEvery) => {
      const encoded = msgs.map(encodeBackend);
      const stream = Buffer.concat(encoded);
      expect(frameStreamed(chunk(stream, cuts), above, wholeEvery)).toEqual(encoded.map((e) => e.toString('hex')));
    },
  );

  test.prop([fc.array(frontend, { minLength: 1, maxLength: 12 }), fc.array(fc.nat(), { maxLength: 20 })], { numRuns: propertyRuns() })(
    'framing does not depend on chunking; frontend messages round-trip',
    (msgs, cuts) => {
      const encoded = msgs.map(encodeFrontend);
      const stream = Buffer.concat(encoded);
      const framed = frameAll(chunk(stream, cuts));
      expect(framed).toEqual(encoded.map((e) => e.toString('hex')));
      const f = new Framer();
      f.push(stream);
      for (const m of msgs) {
        const r = f.next();
        if (r === null || 'error' in r) throw new Error('missing frame');
        expect(decodeFrontend(r)).toEqual({ ok: true, message: m });
      }
    },
  );

  test.prop([fc.array(backend, { minLength: 1, maxLength: 12 }), fc.array(fc.nat(), { maxLength: 20 })], { numRuns: propertyRuns() })(
    'framing does not depend on chunking; backend messages round-trip',
    (msgs, cuts) => {
      const encoded = msgs.map(encodeBackend);
      const framed = frameAll(chunk(Buffer.concat(encoded), cuts));
      expect(framed).toEqual(encoded.map((e) => e.toString('hex')));
      for (let i = 0; i < msgs.length; i++) {
        const f = new Framer();
        f.push(encoded[i]!);
        const r = f.next();
        if (r === null || 'error' in r) throw new Error('missing frame');
        expect(decodeBackend(r)).toEqual({ ok: true, message: msgs[i] });
      }
    },
  );
});
