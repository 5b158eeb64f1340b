import { describe, expect, it } from 'vitest';
import { nextFiringOf, parseCron } from './cron';

const at = (s: string) => Date.parse(s);
const next = (expr: string, after: string) => nextFiringOf(expr, at(after))?.toISOString() ?? null;

describe('cron next firing (UTC, as the server computes it)', () => {
  it('fires on the next whole minute strictly after', () => {
    expect(next('* * * * *', '2026-11-30T10:00:00Z')).toBe('2026-11-30T10:01:00.000Z');
    expect(next('* * * * *', '2026-11-30T10:00:59.900Z')).toBe('2026-11-30T10:01:00.000Z');
  });
  it('reads steps, ranges and lists', () => {
    expect(next('*/15 * * * *', '2026-11-30T10:07:00Z')).toBe('2026-11-30T10:15:00.000Z');
    expect(next('5/15 * * * *', '2026-11-30T10:07:00Z')).toBe('2026-11-30T10:20:00.000Z');
    expect(next('0 9-17/4 * * *', '2026-11-30T13:00:00Z')).toBe('2026-11-30T17:00:00.000Z');
    expect(next('30 1,22 * * *', '2026-11-30T02:00:00Z')).toBe('2026-11-30T22:30:00.000Z');
  });
  it('crosses days, months and years', () => {
    expect(next('0 3 * * *', '2026-11-30T04:00:00Z')).toBe('2026-12-01T03:00:00.000Z');
    expect(next('0 0 1 1 *', '2026-11-30T04:00:00Z')).toBe('2027-01-01T00:00:00.000Z');
    expect(next('0 0 29 2 *', '2026-11-30T00:00:00Z')).toBe('2028-02-29T00:00:00.000Z');
  });
  it('treats 0 and 7 as Sunday and ORs restricted day fields', () => {
    // 2026-11-30 is a Monday.
    expect(next('0 12 * * 7', '2026-11-30T00:00:00Z')).toBe('2026-12-06T12:00:00.000Z');
    expect(next('0 12 * * 0', '2026-11-30T00:00:00Z')).toBe('2026-12-06T12:00:00.000Z');
    // Day 15 or a Wednesday, whichever comes first.
    expect(next('0 0 15 * 3', '2026-11-30T00:00:00Z')).toBe('2026-12-02T00:00:00.000Z');
    // Only the day of month restricted: both must hold, '*' matches every weekday.
    expect(next('0 0 15 * *', '2026-11-30T00:00:00Z')).toBe('2026-12-15T00:00:00.000Z');
  });
  it('refuses what the server refuses, and knows a schedule that never fires', () => {
    for (const bad of ['', '* * * *', '60 * * * *', '* * 0 * *', '*/0 * * * *', '5-1 * * * *', 'a * * * *', '1,,2 * * * *', '* * * * 8']) {
      expect(parseCron(bad), bad).toBeNull();
    }
    expect(next('0 0 30 2 *', '2026-11-30T00:00:00Z')).toBeNull();
  });
});
