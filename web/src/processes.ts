// Processes (`berth ps`): a component's instances with their state, version, uptime and
// restarts — the pure logic behind the Processes tab. Driven by the API's instance fields only,
// so fields the API adds (a Procfile process type) show up without a console change.
import type { Component, Instance } from './api';
import { EN_UNITS, type Units } from './runs';

// The process type an instance belongs to, when the API says (`process_type`, or `process`);
// "" otherwise.
export function processType(i: Instance): string {
  for (const k of ['process_type', 'process']) {
    const v = i[k];
    if (typeof v === 'string' && v) return v;
  }
  return '';
}

// "web-2" before "web-10": instance names end in their index.
export function sortInstances(instances: readonly Instance[]): Instance[] {
  const key = (n: string) => {
    const m = /^(.*?)(\d+)$/.exec(n);
    return m ? { base: m[1], n: Number(m[2]) } : { base: n, n: -1 };
  };
  return [...instances].sort((a, b) => {
    const ta = processType(a), tb = processType(b);
    if (ta !== tb) return ta < tb ? -1 : 1;
    const ka = key(a.name), kb = key(b.name);
    if (ka.base !== kb.base) return ka.base < kb.base ? -1 : 1;
    return ka.n - kb.n;
  });
}

// How long the instance's process has been up, measured to `now`; null when it is not running
// (backing off after an exit, or no start time reported).
export function uptimeMs(i: Instance, now: number): number | null {
  if (!i.started_at || i.state === 'backoff') return null;
  const t = Date.parse(i.started_at);
  if (isNaN(t)) return null;
  return Math.max(0, now - t);
}

// "12 s", "3 min 4 s", "2 h 5 min", "3 d 4 h": whole seconds, then coarser units.
export function formatUptime(ms: number, u: Units & { d: string } = { ...EN_UNITS, d: 'd' }): string {
  const s = Math.floor(Math.max(0, ms) / 1000);
  if (s < 60) return `${s} ${u.s}`;
  if (s < 3600) return `${Math.floor(s / 60)} ${u.min} ${s % 60} ${u.s}`;
  if (s < 86400) return `${Math.floor(s / 3600)} ${u.h} ${Math.floor((s % 3600) / 60)} ${u.min}`;
  return `${Math.floor(s / 86400)} ${u.d} ${Math.floor((s % 86400) / 3600)} ${u.h}`;
}

// The header line: how many instances the component wants, how many run, how many are ready.
export function psSummary(c: Pick<Component, 'replicas' | 'desired_state' | 'kind'>, instances: readonly Instance[]) {
  const wanted = c.desired_state === 'running' && c.kind !== 'job' && c.kind !== 'cronjob' ? c.replicas : 0;
  const running = instances.filter((i) => i.state === 'running').length;
  const ready = instances.filter((i) => i.ready === true).length;
  return { wanted, running, ready, total: instances.length };
}

// A component's process types (docs/api.md "Process types") with how many instances each
// should have and how many are ready: web (the replicas), worker, clock, ... One-off runs and
// releases are not process types. Sorted with web first.
export interface ProcessRow {
  type: string;
  want: number;
  ready: number;
}

export function processRows(c: Component, instances: readonly Instance[]): ProcessRow[] {
  const types = c.process_types ?? {};
  return Object.entries(types)
    .map(([type, want]) => ({
      type,
      want,
      ready: instances.filter((i) => (processType(i) || 'web') === type && i.ready === true).length,
    }))
    .sort((a, b) => (a.type === 'web' ? -1 : b.type === 'web' ? 1 : a.type.localeCompare(b.type)));
}
