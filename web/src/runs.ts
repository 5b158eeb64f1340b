// Job and cronjob runs (docs/api.md "Jobs and cronjobs") and instance usage: the pure logic
// behind the Runs tab and the instances table, kept apart from React so it is unit-tested.
import type { Instance } from './api';

export interface RunExit {
  code: number;
  signal: number;
  oom: boolean;
  at: string;
  reason: string;
}
export interface Run {
  name: string;
  number: number;
  status: 'running' | 'succeeded' | 'failed' | 'cancelled' | string;
  trigger: 'deploy' | 'schedule' | 'manual' | string;
  by: string;
  version: string;
  instance: string;
  scheduled_at: string;
  started_at: string;
  finished_at: string;
  attempts: number;
  last_exit: RunExit | null;
  message: string;
  log_tail: string;
}
export const RUN_STATUSES = ['running', 'succeeded', 'failed', 'cancelled'] as const;
export const RUN_TRIGGERS = ['deploy', 'schedule', 'manual'] as const;

// Newest first. The API lists runs in name order ("run-10" before "run-2"); `number` is the age.
export function sortRuns(runs: readonly Run[]): Run[] {
  return [...runs].sort((a, b) => b.number - a.number);
}

// Duration units, from the dictionaries (i18n: unit.*), English by default.
export interface Units { ms: string; s: string; min: string; h: string }
export const EN_UNITS: Units = { ms: 'ms', s: 's', min: 'min', h: 'h' };

// How long a run took (or has been going, measured to `now`): "850 ms", "2.1 s", "3 min 4 s",
// "1 h 2 min". Empty when the start is unknown.
export function runDuration(run: Pick<Run, 'started_at' | 'finished_at'>, now: number, u: Units = EN_UNITS): string {
  const start = Date.parse(run.started_at);
  if (!run.started_at || isNaN(start)) return '';
  const end = run.finished_at ? Date.parse(run.finished_at) : now;
  if (isNaN(end)) return '';
  return formatDuration(Math.max(0, end - start), u);
}

export function formatDuration(ms: number, u: Units = EN_UNITS): string {
  if (ms < 1000) return `${Math.round(ms)} ${u.ms}`;
  if (ms < 60000) return `${(Math.floor(ms / 100) / 10).toFixed(1)} ${u.s}`;
  const s = Math.floor(ms / 1000);
  if (s < 3600) return `${Math.floor(s / 60)} ${u.min} ${s % 60} ${u.s}`;
  return `${Math.floor(s / 3600)} ${u.h} ${Math.floor((s % 3600) / 60)} ${u.min}`;
}

// The last exit as a message key and its values ("exit 3", "signal 9", "OOM killed"); null
// without one.
export function exitSummary(e: RunExit | null | undefined): { key: 'run.exit.oom' | 'run.exit.signal' | 'run.exit.code'; vars: Record<string, number> } | null {
  if (!e) return null;
  if (e.oom) return { key: 'run.exit.oom', vars: {} };
  if (e.signal) return { key: 'run.exit.signal', vars: { signal: e.signal } };
  return { key: 'run.exit.code', vars: { code: e.code ?? 0 } };
}

// log_tail is the run's last log lines as one text; empty lines at its end are dropped.
export function logTailLines(tail: string | undefined): string[] {
  if (!tail) return [];
  const lines = tail.split('\n');
  while (lines.length && !lines[lines.length - 1].trim()) lines.pop();
  return lines;
}

// ---- usage ------------------------------------------------------------------------------------

export interface Usage {
  rss_bytes?: number;
  cpu_seconds?: number;
  processes?: number;
  cpu_percent?: number | null;
  memory_bytes?: number;
  memory_source?: 'cgroup' | 'proc' | string;
  memory_limit_bytes?: number | null;
  cpu_limit_millis?: number | null;
}

export function usageOf(i: Instance): Usage | null {
  const u = i.usage;
  return u && typeof u === 'object' ? (u as Usage) : null;
}

// CPU as the API reports it (a percent of one core), with the limit as a percent of one core
// too: "12.5 %", "12.5 % / 50 %". Empty without a sample yet.
export function formatCpu(u: Usage | null): string {
  if (!u || u.cpu_percent === null || u.cpu_percent === undefined) return '';
  const pct = (v: number) => (v >= 10 ? v.toFixed(0) : v.toFixed(1)) + ' %';
  const s = pct(u.cpu_percent);
  return u.cpu_limit_millis ? `${s} / ${pct(u.cpu_limit_millis / 10)}` : s;
}

// Memory in MiB, with the limit when the kernel applies one: "12.3 MiB", "12.3 MiB / 256 MiB".
export function formatMemory(u: Usage | null): string {
  if (!u || u.memory_bytes === undefined || u.memory_bytes === null) return '';
  const mib = (b: number) => {
    const m = b / (1024 * 1024);
    return (m >= 100 ? m.toFixed(0) : m.toFixed(1)) + ' MiB';
  };
  return u.memory_limit_bytes ? `${mib(u.memory_bytes)} / ${mib(u.memory_limit_bytes)}` : mib(u.memory_bytes);
}

// The share of the memory limit in use (0..1), null without a limit: the table colours >= 0.9.
export function memoryShare(u: Usage | null): number | null {
  if (!u || !u.memory_limit_bytes || u.memory_bytes === undefined) return null;
  return u.memory_bytes / u.memory_limit_bytes;
}

// ---- job settings -----------------------------------------------------------------------------

export interface JobSettings {
  retries: number;
  timeout_s: number;
  history_limit: number;
  concurrency_policy: 'allow' | 'forbid' | 'replace' | string;
  suspend: boolean;
}
export const JOB_DEFAULTS: JobSettings = { retries: 3, timeout_s: 0, history_limit: 10, concurrency_policy: 'allow', suspend: false };
export const CONCURRENCY_POLICIES = ['allow', 'forbid', 'replace'] as const;

export interface JobDraft {
  schedule: string;
  retries: string;
  timeout_s: string;
  history_limit: string;
  concurrency_policy: string;
  suspend: boolean;
}

// The PATCH body of the job settings form, or the field the console refuses itself (the API
// checks the ranges and the schedule; a number that is not one is caught here).
export function jobPatch(d: JobDraft, kind: string): { body: Record<string, unknown> } | { field: string } {
  const n = (v: string) => (/^\d+$/.test(v.trim()) ? Number(v) : NaN);
  const retries = n(d.retries), timeout = n(d.timeout_s), history = n(d.history_limit);
  if (isNaN(retries)) return { field: 'job.retries' };
  if (isNaN(timeout)) return { field: 'job.timeout_s' };
  if (isNaN(history)) return { field: 'job.history_limit' };
  const job: JobSettings = { retries, timeout_s: timeout, history_limit: history, concurrency_policy: d.concurrency_policy, suspend: kind === 'cronjob' && d.suspend };
  const body: Record<string, unknown> = { job };
  if (kind === 'cronjob') body.schedule = d.schedule.trim();
  return { body };
}
