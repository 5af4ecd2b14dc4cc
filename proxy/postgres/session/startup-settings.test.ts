import { describe, expect, it } from 'vitest';
import { readOptions, refusedStartupSetting, splitOptions, upstreamOptions } from './startup-settings.ts';

const settings = (options: string) => {
  const r = readOptions(options);
  if (!r.ok) throw new Error(r.reason);
  return r.settings;
};

describe('startup options, read as the server reads them', () => {
  it('splits words as pg_split_opts does: backslash-escaped spaces join words', () => {
    expect(splitOptions('-c a=b\\ c   --d-e=f')).toEqual(['-c', 'a=b c', '--d-e=f']);
    expect(splitOptions('\t-c\\\\x \\')).toEqual(['-c\\x', '']);
  });

  it('follows getopt switch clustering: -nc, -ncNAME, -n-NAME, --NAME all set NAME', () => {
    expect(settings('-c search_path=evil -cstatement_timeout=5 --client-encoding=SJIS')).toEqual([
      { name: 'search_path', value: 'evil' },
      { name: 'statement_timeout', value: '5' },
      { name: 'client_encoding', value: 'SJIS' },
    ]);
    // The spellings the gateway used to miss (issue 14 item 1).
    expect(settings('-nc standard_conforming_strings=off')).toEqual([{ name: 'standard_conforming_strings', value: 'off' }]);
    expect(settings('-ncclient_encoding=SJIS')).toEqual([{ name: 'client_encoding', value: 'SJIS' }]);
    expect(settings('-n-role=postgres')).toEqual([{ name: 'role', value: 'postgres' }]);
    expect(settings('-Tnc\\ role=x')).toEqual([{ name: ' role', value: 'x' }]);
  });

  it('knows the switches that set settings themselves', () => {
    expect(settings('-e -S 1024 -fs -t pa -s -d 2 -W0 -P -O')).toEqual([
      { name: 'datestyle', value: 'euro' },
      { name: 'work_mem', value: '1024' },
      { name: 'enable_seqscan', value: 'false' },
      { name: 'log_parser_stats', value: 'true' },
      { name: 'log_statement_stats', value: 'true' },
      { name: 'log_min_messages', value: 'debug2' },
      { name: 'log_statement', value: 'all' },
      { name: 'post_auth_delay', value: '0' },
      { name: 'ignore_system_indexes', value: 'true' },
      { name: 'allow_system_table_mods', value: 'true' },
    ]);
    // A switch's argument is the next word even when it looks like a switch.
    expect(settings('-C -c')).toEqual([]);
    expect(settings('-r -- --')).toEqual([]);
  });

  it('refuses what the server would refuse or what cannot be read exactly', () => {
    for (const bad of ['foo', '-', '-c', '-x', '-c name', '--name', '-fz', '-t x', '-- -c a=b', '-c a=\u00a0b', '-c\u00a0a=b']) {
      expect(readOptions(bad).ok, bad).toBe(false);
    }
    expect(readOptions('').ok).toBe(true);
    expect(readOptions(' -- ').ok).toBe(true);
  });

  it('sends upstream exactly the settings it decided, without the gateway own', () => {
    expect(upstreamOptions(settings('-e -c hoop.approval=hold -c application_name=a\\ b\\\\c'))).toBe(
      '-c datestyle=euro -c application_name=a\\ b\\\\c',
    );
    expect(upstreamOptions(settings('-c hoop.approval=hold'))).toBeUndefined();
  });

  it('refuses client-only encodings and accepts ASCII-safe ones', () => {
    for (const enc of ['SJIS', 'Shift_JIS', 'BIG5', 'GBK', 'UHC', 'GB18030', 'JOHAB', 'WIN932']) {
      expect(refusedStartupSetting('client_encoding', enc), enc).toMatch(/not allowed/);
    }
    for (const enc of ['UTF8', 'utf-8', 'UNICODE', 'SQL_ASCII', 'LATIN1', 'WIN1252', 'EUC_JP']) {
      expect(refusedStartupSetting('client_encoding', enc), enc).toBeUndefined();
    }
  });

  it('refuses identity and text-reading settings, allows ordinary ones', () => {
    // search_path is followed (the session reads it once connected), not refused.
    expect(refusedStartupSetting('search_path', 'evil')).toBeUndefined();
    expect(refusedStartupSetting('session_replication_role', 'replica')).toMatch(/not allowed/);
    expect(refusedStartupSetting('standard_conforming_strings', 'off')).toMatch(/not allowed/);
    expect(refusedStartupSetting('standard_conforming_strings', 'on')).toBeUndefined();
    expect(refusedStartupSetting('statement_timeout', '5s')).toBeUndefined();
    expect(refusedStartupSetting('DateStyle', 'ISO, MDY')).toBeUndefined();
  });
});
