import { describe, expect, it } from 'vitest';
import { en, placeholders, translate, zh } from './i18n';

describe('dictionaries', () => {
  it('have exactly the same keys, none empty', () => {
    expect(Object.keys(zh).sort()).toEqual(Object.keys(en).sort());
    for (const [k, v] of [...Object.entries(en), ...Object.entries(zh)]) {
      expect(v.trim(), k).not.toBe('');
    }
  });
  it('use the same placeholders in both languages', () => {
    for (const k of Object.keys(en) as (keyof typeof en)[]) {
      expect(placeholders(zh[k]), k).toEqual(placeholders(en[k]));
    }
  });
  it('translates Chinese strings into Chinese', () => {
    // Every Chinese string that differs from English contains CJK text (catches copy-paste).
    for (const k of Object.keys(en) as (keyof typeof en)[]) {
      if (zh[k] !== en[k]) expect(/[\u4e00-\u9fff]/.test(zh[k]), k).toBe(true);
    }
  });
  it('fills placeholders', () => {
    expect(translate('en', 'comp.instancesReady', { ready: 1, total: 2 })).toBe('1/2 ready');
    expect(translate('zh', 'comp.instancesReady', { ready: 1, total: 2 })).toBe('1/2 就绪');
  });
});
