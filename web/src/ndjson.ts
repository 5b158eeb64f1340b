// Newline-delimited JSON: a streaming splitter that survives lines cut across chunks, and the
// team watch loop (GET /api/v1/teams/{team}/watch?from=REV) that resumes from the last
// revision it saw after any error.

export interface WatchLine {
  revision: number;
  type: 'put' | 'delete' | 'heartbeat';
  kind?: string;
  team?: string;
  app?: string;
  name?: string;
  object?: Record<string, unknown>;
}

// Feeds text chunks in, gets complete parsed lines out. Blank lines are skipped; a line that
// is not JSON is reported through `onBadLine` and skipped (one bad line must not end a watch).
export class NdjsonSplitter<T = unknown> {
  private buffer = '';
  constructor(private readonly onBadLine: (line: string) => void = () => {}) {}

  push(chunk: string): T[] {
    this.buffer += chunk;
    const out: T[] = [];
    let nl: number;
    while ((nl = this.buffer.indexOf('\n')) >= 0) {
      const line = this.buffer.slice(0, nl).replace(/\r$/, '');
      this.buffer = this.buffer.slice(nl + 1);
      this.parse(line, out);
    }
    return out;
  }

  // The stream ended: a last line without its newline still counts.
  end(): T[] {
    const out: T[] = [];
    const rest = this.buffer;
    this.buffer = '';
    this.parse(rest, out);
    return out;
  }

  private parse(line: string, out: T[]) {
    if (line.trim() === '') return;
    try {
      out.push(JSON.parse(line) as T);
    } catch {
      this.onBadLine(line);
    }
  }
}

// Reads a byte stream as NDJSON, calling onLine for each object until the stream ends.
export async function readNdjson<T>(
  body: ReadableStream<Uint8Array>,
  onLine: (line: T) => void,
  onBadLine?: (line: string) => void,
): Promise<void> {
  const reader = body.getReader();
  const decoder = new TextDecoder();
  const splitter = new NdjsonSplitter<T>(onBadLine);
  try {
    for (;;) {
      const { done, value } = await reader.read();
      if (done) break;
      for (const line of splitter.push(decoder.decode(value, { stream: true }))) onLine(line);
    }
    for (const line of splitter.push(decoder.decode())) onLine(line);
    for (const line of splitter.end()) onLine(line);
  } finally {
    reader.releaseLock();
  }
}

export interface WatchOptions {
  team: string;
  token: string;
  from: number;
  onChange: (line: WatchLine) => void;
  // The feed no longer holds `from` (410): list again and return the list's revision.
  onCompacted: () => Promise<number>;
  onUnauthorized: () => void;
  onStatus?: (connected: boolean) => void;
  fetchImpl?: typeof fetch;
  // Delay before reconnect attempt n (1, 2, ...).
  backoffMs?: (attempt: number) => number;
}

export const defaultBackoff = (attempt: number) => Math.min(500 * 2 ** (attempt - 1), 10000);

// Follows the team's change feed until `signal` aborts. Tracks the last revision (heartbeats
// included) and reconnects from it after network errors, server restarts and stream ends.
export async function watchTeam(opts: WatchOptions, signal: AbortSignal): Promise<void> {
  const doFetch = opts.fetchImpl ?? fetch;
  const backoff = opts.backoffMs ?? defaultBackoff;
  let from = opts.from;
  let attempt = 0;
  while (!signal.aborted) {
    try {
      const url = `/api/v1/teams/${encodeURIComponent(opts.team)}/watch?from=${from}`;
      const res = await doFetch(url, {
        headers: { Authorization: `Bearer ${opts.token}` },
        signal,
      });
      if (res.status === 401) {
        opts.onUnauthorized();
        return;
      }
      if (res.status === 410) {
        from = await opts.onCompacted();
        continue;
      }
      if (!res.ok || !res.body) throw new Error(`watch answered ${res.status}`);
      opts.onStatus?.(true);
      attempt = 0;
      await readNdjson<WatchLine>(res.body, (line) => {
        if (typeof line.revision === 'number' && line.revision > from) from = line.revision;
        if (line.type !== 'heartbeat') opts.onChange(line);
      });
    } catch (e) {
      if (signal.aborted) return;
    }
    opts.onStatus?.(false);
    attempt++;
    await sleep(backoff(attempt), signal);
  }
}

function sleep(ms: number, signal: AbortSignal): Promise<void> {
  return new Promise((resolve) => {
    if (signal.aborted) return resolve();
    const t = setTimeout(done, ms);
    function done() {
      clearTimeout(t);
      signal.removeEventListener('abort', done);
      resolve();
    }
    signal.addEventListener('abort', done);
  });
}
