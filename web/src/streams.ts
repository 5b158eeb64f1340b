// The two log streams the console follows, both NDJSON over an authenticated fetch:
//  - a build log (GET .../versions/{v}/log?follow=1): {"type":"line","text"} per line, heartbeats,
//    and a last {"type":"end","status","message"}. The endpoint always sends the whole log from
//    its start, so a reconnect starts the shown log over (onReset) instead of appending twice.
//  - instance logs (GET .../logs?follow=1&grep=&tail=): {"time","instance","stream","line"} per
//    line. A reconnect asks for `since=<last time seen>` and drops the lines it already showed
//    (LogDedupe), so a server restart neither loses nor repeats lines.
// Both reconnect with back-off until the caller aborts (or, for a build, until its end line).
import { readNdjson, defaultBackoff } from './ndjson';

export interface BuildLogMessage {
  type: 'line' | 'heartbeat' | 'end';
  text?: string;
  status?: string;
  message?: string;
  version?: string;
}

export interface LogLine {
  time: string;
  instance: string;
  stream: 'out' | 'err' | 'shim' | string;
  line: string;
}

interface StreamOptions {
  token: string | null;
  fetchImpl?: typeof fetch;
  backoffMs?: (attempt: number) => number;
  onStatus?: (connected: boolean) => void;
  // A 401/403/404 ends the stream: retrying cannot help.
  onFatal?: (status: number, body: string) => void;
}

// Opens `url` and feeds every NDJSON object to onLine. Returns 'ok' when the stream ended,
// 'fatal' for an answer retrying cannot change, throws on network and server errors.
async function openOnce<T>(
  url: string,
  opts: StreamOptions,
  onLine: (line: T) => void,
  signal: AbortSignal,
): Promise<'ok' | 'fatal'> {
  const doFetch = opts.fetchImpl ?? fetch;
  const headers: Record<string, string> = {};
  if (opts.token) headers.Authorization = `Bearer ${opts.token}`;
  const res = await doFetch(url, { headers, signal });
  if (res.status === 400 || res.status === 401 || res.status === 403 || res.status === 404) {
    opts.onFatal?.(res.status, await res.text().catch(() => ''));
    return 'fatal';
  }
  if (!res.ok || !res.body) throw new Error(`stream answered ${res.status}`);
  opts.onStatus?.(true);
  await readNdjson<T>(res.body, onLine);
  return 'ok';
}

function sleep(ms: number, signal: AbortSignal): Promise<void> {
  return new Promise((resolve) => {
    if (signal.aborted) return resolve();
    const done = () => {
      clearTimeout(t);
      signal.removeEventListener('abort', done);
      resolve();
    };
    const t = setTimeout(done, ms);
    signal.addEventListener('abort', done);
  });
}

export interface BuildLogOptions extends StreamOptions {
  url: string; // .../versions/{v}/log?follow=1
  onReset: () => void;
  onLine: (text: string) => void;
  onEnd: (end: BuildLogMessage) => void;
}

// Follows a build log until its end line (or abort).
export async function followBuildLog(opts: BuildLogOptions, signal: AbortSignal): Promise<void> {
  const backoff = opts.backoffMs ?? defaultBackoff;
  let attempt = 0;
  while (!signal.aborted) {
    let ended = false;
    try {
      opts.onReset();
      const r = await openOnce<BuildLogMessage>(
        opts.url,
        opts,
        (m) => {
          if (m.type === 'line') opts.onLine(m.text ?? '');
          else if (m.type === 'end') {
            ended = true;
            opts.onEnd(m);
          }
        },
        signal,
      );
      if (r === 'fatal' || ended) return;
      attempt = 0;
    } catch {
      if (signal.aborted) return;
    }
    if (ended) return;
    opts.onStatus?.(false);
    await sleep(backoff(++attempt), signal);
  }
}

// Remembers the newest log time shown and the lines shown at exactly that time, so a stream
// resumed with since=<that time> can drop what was already shown.
export class LogDedupe {
  private last = '';
  private atLast = new Set<string>();

  get since(): string {
    return this.last;
  }

  accept(l: LogLine): boolean {
    const key = `${l.instance}\u0000${l.stream}\u0000${l.line}`;
    if (this.last && l.time < this.last) return false;
    if (l.time === this.last) {
      if (this.atLast.has(key)) return false;
      this.atLast.add(key);
      return true;
    }
    this.last = l.time;
    this.atLast = new Set([key]);
    return true;
  }
}

export function logsUrl(base: string, q: { instance?: string; grep?: string; tail?: number; since?: string }): string {
  const p = new URLSearchParams({ follow: '1' });
  if (q.instance) p.set('instance', q.instance);
  if (q.grep) p.set('grep', q.grep);
  if (q.since) p.set('since', q.since);
  else p.set('tail', String(q.tail ?? 500));
  return `/api/v1${base}/logs?${p.toString()}`;
}

export interface InstanceLogOptions extends StreamOptions {
  base: string; // the component's API path, without /api/v1
  instance?: string;
  grep?: string;
  tail?: number;
  onLines: (lines: LogLine[]) => void;
}

// Follows a component's instance logs, resuming after errors from the last line's time.
// Lines are handed over in batches (one per network chunk's worth, at most every 100 ms) so a
// burst of output re-renders once.
export async function followInstanceLogs(opts: InstanceLogOptions, signal: AbortSignal): Promise<void> {
  const backoff = opts.backoffMs ?? defaultBackoff;
  const dedupe = new LogDedupe();
  let pending: LogLine[] = [];
  let timer: ReturnType<typeof setTimeout> | undefined;
  const flush = () => {
    timer = undefined;
    if (pending.length && !signal.aborted) opts.onLines(pending);
    pending = [];
  };
  let attempt = 0;
  try {
    while (!signal.aborted) {
      try {
        const url = logsUrl(opts.base, { instance: opts.instance, grep: opts.grep, tail: opts.tail, since: dedupe.since || undefined });
        const r = await openOnce<LogLine & { type?: string }>(
          url,
          opts,
          (m) => {
            if (m.type === 'heartbeat' || typeof m.line !== 'string') return;
            if (!dedupe.accept(m)) return;
            pending.push(m);
            if (!timer) timer = setTimeout(flush, 100);
          },
          signal,
        );
        if (r === 'fatal') return;
        attempt = 0;
      } catch {
        if (signal.aborted) return;
      }
      // Show what arrived before the stream dropped now, not after the reconnect.
      clearTimeout(timer);
      flush();
      opts.onStatus?.(false);
      await sleep(backoff(++attempt), signal);
    }
  } finally {
    clearTimeout(timer);
    flush();
  }
}

// Keeps the newest `max` lines.
export function appendCapped<T>(lines: T[], more: T[], max = 2000): T[] {
  const all = lines.concat(more);
  return all.length > max ? all.slice(all.length - max) : all;
}

// Splits `text` around the matches of `needle` (case-sensitive, like the server's grep), for
// highlighting.
export function highlight(text: string, needle: string): { text: string; match: boolean }[] {
  if (!needle) return [{ text, match: false }];
  const out: { text: string; match: boolean }[] = [];
  let i = 0;
  for (;;) {
    const j = text.indexOf(needle, i);
    if (j < 0) break;
    if (j > i) out.push({ text: text.slice(i, j), match: false });
    out.push({ text: text.slice(j, j + needle.length), match: true });
    i = j + needle.length;
  }
  if (i < text.length || out.length === 0) out.push({ text: text.slice(i), match: false });
  return out;
}
