import { describe, expect, it } from 'vitest';
import type { Instance } from './api';
import { translate } from './i18n';
import { exitSummary, formatCpu, formatDuration, formatMemory, jobPatch, logTailLines, memoryShare, runDuration, sortRuns, usageOf, type Run } from './runs';

const run = (n: number, over: Partial<Run> = {}): Run => ({
  name: `run-${n}`, number: n, status: 'succeeded', trigger: 'manual', by: 'admin', version: 'v1', instance: `job-run-${n}`,
  scheduled_at: '', started_at: '2026-11-30T10:00:00Z', finished_at: '2026-11-30T10:00:02.150Z', attempts: 1, last_exit: null,
  message: '', log_tail: '', ...over,
});

describe('runs', () => {
  it('lists the newest first by number, not by name', () => {
    // The API's name order puts run-10 before run-2.
    const got = sortRuns([run(1), run(10), run(2), run(9)]).map((r) => r.name);
    expect(got).toEqual(['run-10', 'run-9', 'run-2', 'run-1']);
  });

  it('measures a finished run to its end and a running one to now', () => {
    expect(runDuration(run(1), Date.parse('2030-01-01T00:00:00Z'))).toBe('2.1 s');
    const going = run(2, { status: 'running', finished_at: '' });
    expect(runDuration(going, Date.parse('2026-11-30T10:03:04.500Z'))).toBe('3 min 4 s');
    expect(runDuration(run(3, { started_at: '' }), 0)).toBe('');
    expect(runDuration(run(4, { started_at: 'nonsense' }), 0)).toBe('');
  });

  it('formats durations from milliseconds to hours', () => {
    expect(formatDuration(0)).toBe('0 ms');
    expect(formatDuration(850)).toBe('850 ms');
    expect(formatDuration(1000)).toBe('1.0 s');
    expect(formatDuration(59999)).toBe('59.9 s');
    expect(formatDuration(60000)).toBe('1 min 0 s');
    expect(formatDuration(3723000)).toBe('1 h 2 min');
    const zh = { ms: translate('zh', 'unit.ms'), s: translate('zh', 'unit.s'), min: translate('zh', 'unit.min'), h: translate('zh', 'unit.h') };
    expect(formatDuration(184000, zh)).toBe('3 分 4 秒');
  });

  it('summarises the last exit', () => {
    expect(exitSummary(null)).toBeNull();
    const text = (e: Parameters<typeof exitSummary>[0]) => {
      const x = exitSummary(e);
      return x ? translate('en', x.key, x.vars) : '';
    };
    expect(text({ code: 3, signal: 0, oom: false, at: '', reason: 'exited with code 3' })).toBe('exit 3');
    expect(text({ code: 0, signal: 0, oom: false, at: '', reason: 'exited with code 0' })).toBe('exit 0');
    expect(text({ code: 0, signal: 9, oom: false, at: '', reason: 'killed' })).toBe('signal 9');
    expect(text({ code: 0, signal: 9, oom: true, at: '', reason: 'oom' })).toBe('OOM killed');
    const zh = exitSummary({ code: 3, signal: 0, oom: false, at: '', reason: '' })!;
    expect(translate('zh', zh.key, zh.vars)).toBe('退出码 3');
  });

  it('splits the log tail and drops trailing blank lines', () => {
    expect(logTailLines('')).toEqual([]);
    expect(logTailLines('a\nb\n\n')).toEqual(['a', 'b']);
  });
});

describe('usage', () => {
  const inst = (usage: unknown): Instance => ({ name: 'w-1', revision: 1, created_at: '', updated_at: '', usage });

  it('reads usage only when the instance runs', () => {
    expect(usageOf(inst(null))).toBeNull();
    expect(usageOf(inst(undefined))).toBeNull();
    expect(usageOf(inst({ cpu_percent: 5 }))?.cpu_percent).toBe(5);
  });

  it('formats CPU as a percent of one core, with the limit', () => {
    expect(formatCpu(null)).toBe('');
    expect(formatCpu({ cpu_percent: null })).toBe('');
    expect(formatCpu({ cpu_percent: 0 })).toBe('0.0 %');
    expect(formatCpu({ cpu_percent: 2.345 })).toBe('2.3 %');
    expect(formatCpu({ cpu_percent: 150, cpu_limit_millis: null })).toBe('150 %');
    expect(formatCpu({ cpu_percent: 12.5, cpu_limit_millis: 500 })).toBe('13 % / 50 %');
    expect(formatCpu({ cpu_percent: 3, cpu_limit_millis: 2000 })).toBe('3.0 % / 200 %');
  });

  it('formats memory in MiB, with the limit and its share', () => {
    expect(formatMemory(null)).toBe('');
    expect(formatMemory({ memory_bytes: 12.25 * 1024 * 1024 })).toBe('12.3 MiB');
    expect(formatMemory({ memory_bytes: 300 * 1024 * 1024, memory_limit_bytes: null })).toBe('300 MiB');
    expect(formatMemory({ memory_bytes: 64 * 1024 * 1024, memory_limit_bytes: 256 * 1024 * 1024 })).toBe('64.0 MiB / 256 MiB');
    expect(memoryShare({ memory_bytes: 64, memory_limit_bytes: 256 })).toBe(0.25);
    expect(memoryShare({ memory_bytes: 64 })).toBeNull();
  });
});

describe('job settings', () => {
  const draft = { schedule: ' */5 * * * * ', retries: '2', timeout_s: '0', history_limit: '5', concurrency_policy: 'forbid', suspend: true };

  it('sends the job settings, and the schedule and suspend only for a cronjob', () => {
    expect(jobPatch(draft, 'cronjob')).toEqual({ body: { schedule: '*/5 * * * *', job: { retries: 2, timeout_s: 0, history_limit: 5, concurrency_policy: 'forbid', suspend: true } } });
    expect(jobPatch(draft, 'job')).toEqual({ body: { job: { retries: 2, timeout_s: 0, history_limit: 5, concurrency_policy: 'forbid', suspend: false } } });
  });

  it('names the field that is not a number', () => {
    expect(jobPatch({ ...draft, retries: 'x' }, 'job')).toEqual({ field: 'job.retries' });
    expect(jobPatch({ ...draft, timeout_s: '-1' }, 'job')).toEqual({ field: 'job.timeout_s' });
    expect(jobPatch({ ...draft, history_limit: '' }, 'job')).toEqual({ field: 'job.history_limit' });
  });
});
