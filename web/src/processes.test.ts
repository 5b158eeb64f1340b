import { describe, expect, it } from 'vitest';
import type { Component, Instance } from './api';
import { processRows } from './processes';
import { translate } from './i18n';

const comp = (types: Record<string, number> | undefined) =>
  ({ name: 'web', kind: 'service', replicas: 2, process_types: types } as unknown as Component);
const inst = (name: string, process: string | undefined, ready: boolean) =>
  ({ name, process, ready } as unknown as Instance);

describe('processRows', () => {
  it('counts the ready instances of each process type, web first', () => {
    const rows = processRows(comp({ worker: 1, web: 2, clock: 0 }), [
      inst('web-1', undefined, true),
      inst('web-2', undefined, false),
      inst('web-worker-1', 'worker', true),
      inst('web-run-3', 'run', true), // a one-off run is no process type
    ]);
    expect(rows).toEqual([
      { type: 'web', want: 2, ready: 1 },
      { type: 'clock', want: 0, ready: 0 },
      { type: 'worker', want: 1, ready: 1 },
    ]);
  });
  it('has no rows without process_types (a job, an older server)', () => {
    expect(processRows(comp(undefined), [inst('web-1', undefined, true)])).toEqual([]);
  });
  it('reads in both languages', () => {
    const vars = { type: 'worker', want: 2, ready: 1 };
    expect(translate('en', 'comp.processCount', vars)).toBe('worker: 1 of 2 running');
    expect(translate('zh', 'comp.processCount', vars)).toBe('worker：2 个中 1 个运行');
  });
});
