import { describe, expect, it } from 'vitest';
import { optionSettings, refusedStartupSetting, splitOptions } from './startup-settings.ts';

describe('startup settings', () => {
  it('reads -c, -cname and --name forms, with backslash-escaped spaces', () => {
    expect(splitOptions('-c a=b\\ c   --d-e=f')).toEqual(['-c', 'a=b c', '--d-e=f']);
    expect(optionSettings('-c search_path=evil -cstatement_timeout=5 --client-encoding=SJIS -B 10')).toEqual([
      { name: 'search_path', value: 'evil' },
      { name: 'statement_timeout', value: '5' },
      { name: 'client_encoding', value: 'SJIS' },
    ]);
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
    expect(refusedStartupSetting('search_path', 'evil')).toMatch(/search_path/);
    expect(refusedStartupSetting('session_replication_role', 'replica')).toMatch(/not allowed/);
    expect(refusedStartupSetting('standard_conforming_strings', 'off')).toMatch(/not allowed/);
    expect(refusedStartupSetting('standard_conforming_strings', 'on')).toBeUndefined();
    expect(refusedStartupSetting('statement_timeout', '5s')).toBeUndefined();
    expect(refusedStartupSetting('DateStyle', 'ISO, MDY')).toBeUndefined();
  });
});
