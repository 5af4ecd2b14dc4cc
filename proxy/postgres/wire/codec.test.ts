import { describe, expect, it } from 'vitest';
import { decodeBackend, encodeBackend, gatewayError, type BackendMessage } from './backend.ts';
import { Framer, type Frame } from './framer.ts';
import { decodeFrontend, encodeFrontend, type FrontendMessage } from './frontend.ts';
import { decodeStartup, encodeStartup, PROTOCOL_V3, type StartupPacket } from './startup.ts';

function frameOne(bytes: Buffer, startup = false): Frame {
  const f = new Framer({ startup });
  f.push(bytes);
  const r = f.next();
  if (r === null || 'error' in r) throw new Error(`no frame: ${JSON.stringify(r)}`);
  expect(f.next()).toBeNull();
  return r;
}

const b = (s: string): Buffer => Buffer.from(s);

export const FRONTEND_SAMPLES: FrontendMessage[] = [
  { name: 'query', text: 'SELECT 1; SELECT \'é\'' },
  { name: 'parse', statement: 's1', text: 'SELECT $1::int', paramTypes: [23, 0, 4294967295] },
  { name: 'bind', portal: 'p', statement: 's1', paramFormats: [0, 1], params: [b('42'), null, Buffer.alloc(0)], resultFormats: [1] },
  { name: 'describe', target: 'S', objectName: 's1' },
  { name: 'describe', target: 'P', objectName: '' },
  { name: 'execute', portal: '', maxRows: 0 },
  { name: 'execute', portal: 'p', maxRows: 100 },
  { name: 'sync' },
  { name: 'flush' },
  { name: 'close', target: 'P', objectName: 'p' },
  { name: 'copyData', data: b('1\tone\n') },
  { name: 'copyDone' },
  { name: 'copyFail', message: 'aborted by user' },
  { name: 'terminate' },
  { name: 'password', body: b('secret\0') },
];

export const BACKEND_SAMPLES: BackendMessage[] = [
  { name: 'authenticationOk' },
  { name: 'authenticationCleartextPassword' },
  { name: 'authenticationMD5Password', salt: Buffer.from([1, 2, 3, 4]) },
  { name: 'authenticationSASL', mechanisms: ['SCRAM-SHA-256', 'SCRAM-SHA-256-PLUS'] },
  { name: 'authenticationSASLContinue', data: b('r=abc,s=xyz,i=4096') },
  { name: 'authenticationSASLFinal', data: b('v=sig') },
  { name: 'parameterStatus', key: 'client_encoding', value: 'UTF8' },
  { name: 'backendKeyData', pid: 1234, secret: -99 },
  { name: 'readyForQuery', status: 'I' },
  { name: 'readyForQuery', status: 'T' },
  { name: 'readyForQuery', status: 'E' },
  {
    name: 'rowDescription',
    fields: [
      { name: 'id', tableOid: 16384, columnAttr: 1, typeOid: 23, typeSize: 4, typeModifier: -1, format: 0 },
      { name: 'email', tableOid: 4294967295, columnAttr: 2, typeOid: 25, typeSize: -1, typeModifier: -1, format: 1 },
    ],
  },
  { name: 'dataRow', values: [b('1'), null, Buffer.alloc(0)] },
  { name: 'commandComplete', tag: 'SELECT 2' },
  { name: 'error', fields: [['S', 'ERROR'], ['C', '42501'], ['M', 'nope']] },
  { name: 'notice', fields: [['S', 'NOTICE'], ['M', 'hello']] },
  { name: 'notification', pid: 77, channel: 'jobs', payload: 'done' },
  { name: 'copyInResponse', format: 0, columnFormats: [0, 0] },
  { name: 'copyOutResponse', format: 1, columnFormats: [1] },
  { name: 'copyBothResponse', format: 0, columnFormats: [] },
  { name: 'copyData', data: b('x\n') },
  { name: 'copyDone' },
  { name: 'parseComplete' },
  { name: 'bindComplete' },
  { name: 'closeComplete' },
  { name: 'parameterDescription', types: [23, 25] },
  { name: 'noData' },
  { name: 'portalSuspended' },
  { name: 'emptyQuery' },
  { name: 'negotiateProtocolVersion', minor: 0, options: ['_pq_.x'] },
  { name: 'functionCallResponse', value: b('7') },
  { name: 'functionCallResponse', value: null },
];

const STARTUP_SAMPLES: StartupPacket[] = [
  { name: 'startup', version: PROTOCOL_V3, params: { user: 'agent-7', database: 'prod-main', application_name: 'psql' } },
  { name: 'sslRequest' },
  { name: 'gssEncRequest' },
  { name: 'cancelRequest', pid: 42, secret: -7 },
];

describe('wire codec round trips', () => {
  it.each(FRONTEND_SAMPLES.map((m) => [m.name, m] as const))('frontend %s', (_n, m) => {
    const d = decodeFrontend(frameOne(encodeFrontend(m)));
    expect(d).toEqual({ ok: true, message: m });
  });

  it.each(BACKEND_SAMPLES.map((m) => [m.name, m] as const))('backend %s', (_n, m) => {
    const d = decodeBackend(frameOne(encodeBackend(m)));
    expect(d).toEqual({ ok: true, message: m });
  });

  it.each(STARTUP_SAMPLES.map((m) => [m.name, m] as const))('startup %s', (_n, m) => {
    const d = decodeStartup(frameOne(encodeStartup(m), true));
    expect(d.ok).toBe(true);
    expect(d.ok && { ...d.message }).toEqual({ ...m, ...(m.name === 'startup' ? { params: { ...m.params } } : {}) });
  });
});

describe('decoders refuse malformed bodies with a coded value', () => {
  it('truncated bind', () => {
    const full = encodeFrontend(FRONTEND_SAMPLES[2]!);
    const cut = Buffer.from(full.subarray(0, full.length - 3));
    cut.writeInt32BE(cut.length - 1, 1);
    expect(decodeFrontend(frameOne(cut))).toMatchObject({ ok: false, reason: 'message truncated' });
  });

  it('unterminated query string', () => {
    const raw = Buffer.from([0x51, 0, 0, 0, 7, 0x61, 0x62, 0x63]);
    expect(decodeFrontend(frameOne(raw))).toMatchObject({ ok: false });
  });

  it('unknown message types in each direction', () => {
    const raw = Buffer.from([0x7e, 0, 0, 0, 4]);
    expect(decodeFrontend(frameOne(raw))).toMatchObject({ ok: false });
    expect(decodeBackend(frameOne(raw))).toMatchObject({ ok: false });
  });

  it('trailing bytes after a sync', () => {
    expect(decodeFrontend(frameOne(Buffer.from([0x53, 0, 0, 0, 5, 1])))).toMatchObject({ ok: false });
  });

  it('startup packet with an unknown protocol', () => {
    const raw = Buffer.from([0, 0, 0, 8, 0, 9, 0, 0]);
    expect(decodeStartup(frameOne(raw, true))).toMatchObject({ ok: false });
  });

  it('gateway errors carry severity, SQLSTATE and message', () => {
    const d = decodeBackend(frameOne(gatewayError('ERROR', '42501', 'blocked', 'rule: a.b')));
    expect(d.ok && d.message).toEqual({
      name: 'error',
      fields: [['S', 'ERROR'], ['V', 'ERROR'], ['C', '42501'], ['M', 'blocked'], ['D', 'rule: a.b']],
    });
  });
});

describe('framer', () => {
  const stream = Buffer.concat(FRONTEND_SAMPLES.map(encodeFrontend));
  const expected = FRONTEND_SAMPLES.map((m) => encodeFrontend(m).toString('hex'));

  function drain(f: Framer, out: string[]): void {
    for (;;) {
      const r = f.next();
      if (r === null) return;
      if ('error' in r) throw new Error(r.error);
      out.push(r.raw.toString('hex'));
    }
  }

  it('gives the same messages when split at every byte boundary', () => {
    for (let cut = 0; cut <= stream.length; cut++) {
      const f = new Framer();
      const out: string[] = [];
      f.push(stream.subarray(0, cut));
      drain(f, out);
      f.push(stream.subarray(cut));
      drain(f, out);
      expect(out).toEqual(expected);
    }
  });

  it('gives the same messages fed one byte at a time', () => {
    const f = new Framer();
    const out: string[] = [];
    for (let i = 0; i < stream.length; i++) {
      f.push(stream.subarray(i, i + 1));
      drain(f, out);
    }
    expect(out).toEqual(expected);
  });

  it('frames handed out stay intact while more data arrives', () => {
    const f = new Framer();
    const q = encodeFrontend({ name: 'query', text: 'SELECT 1' });
    f.push(Buffer.concat([q, q.subarray(0, 3)]));
    const first = f.next();
    expect(first && !('error' in first) && first.raw.toString('hex')).toBe(q.toString('hex'));
    f.push(q.subarray(3));
    f.push(Buffer.concat([q, q]));
    const frames: string[] = [];
    drain(f, frames);
    expect(frames).toEqual([q, q, q].map((x) => x.toString('hex')));
    expect(first && !('error' in first) && first.raw.toString('hex')).toBe(q.toString('hex'));
  });

  it('rejects an oversized message at its header, before buffering it', () => {
    const f = new Framer({ maxMessageSize: 1024 });
    const head = Buffer.from([0x51, 0, 0x10, 0, 0]);
    f.push(head);
    expect(f.next()).toEqual({ error: 'too_large', length: 0x100000 });
  });

  describe('streaming (issue 14 item 15)', () => {
    const big = encodeFrontend({ name: 'copyData', data: Buffer.alloc(300, 7) });
    const small = encodeFrontend({ name: 'sync' });
    const input = Buffer.concat([small, big, small]);
    const streaming = (): Framer => {
      const f = new Framer({ maxMessageSize: 200 });
      f.stream = { codes: new Set([0x64]), above: 100 };
      return f;
    };

    it('hands a long message of a streamed code out as its head and pieces, whatever the chunking', () => {
      for (let cut = 0; cut <= input.length; cut++) {
        const f = streaming();
        const got: Frame[] = [];
        for (const part of [input.subarray(0, cut), input.subarray(cut)]) {
          f.push(part);
          for (let r = f.next(); r !== null; r = f.next()) {
            if ('error' in r) throw new Error(r.error);
            got.push({ ...r, raw: Buffer.from(r.raw) });
          }
        }
        expect(got[0]!.raw).toEqual(small);
        expect(got.at(-1)!.raw).toEqual(small);
        const middle = got.slice(1, -1);
        expect(middle[0]).toMatchObject({ code: 0x64, bodyStart: 5, rest: big.length - 100 });
        expect(middle[0]!.piece).toBeUndefined();
        expect(middle.slice(1).every((p) => p.piece === true && p.code === 0x64)).toBe(true);
        expect(middle.at(-1)!.rest).toBe(0);
        expect(Buffer.concat(middle.map((p) => p.raw))).toEqual(big);
      }
    });

    it('gives the message whole when asked right after its head, with the cap', () => {
      const f = streaming();
      f.maxMessageSize = 1000;
      f.push(Buffer.concat([big, small]));
      const head = f.next();
      expect(head && !('error' in head) && head.rest).toBe(big.length - 100);
      f.whole();
      const whole = f.next();
      expect(whole && !('error' in whole) && whole.raw).toEqual(big);
      expect(whole && !('error' in whole) && whole.rest).toBeUndefined();
      const after = f.next();
      expect(after && !('error' in after) && after.raw).toEqual(small);
      const capped = streaming();
      capped.push(big);
      capped.next();
      capped.whole();
      expect(capped.next()).toEqual({ error: 'too_large', length: big.length - 1 });
    });

    it('codes it does not stream keep the cap', () => {
      const f = streaming();
      f.push(encodeFrontend({ name: 'query', text: 'x'.repeat(300) }));
      expect(f.next()).toMatchObject({ error: 'too_large' });
    });
  });

  it('rejects a length shorter than the length field itself', () => {
    const f = new Framer();
    f.push(Buffer.from([0x51, 0, 0, 0, 2]));
    expect(f.next()).toEqual({ error: 'bad_length', length: 2 });
  });
});
