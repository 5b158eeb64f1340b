import { describe, expect, it } from 'vitest';
import { NdjsonSplitter, readNdjson, watchTeam, type WatchLine } from './ndjson';

function streamOf(chunks: string[]): ReadableStream<Uint8Array> {
  const enc = new TextEncoder();
  return new ReadableStream({
    start(c) {
      for (const ch of chunks) c.enqueue(enc.encode(ch));
      c.close();
    },
  });
}

describe('NdjsonSplitter', () => {
  it('joins lines cut across chunks and skips blank lines', () => {
    const s = new NdjsonSplitter<{ a: number }>();
    expect(s.push('{"a":1}\n{"a"')).toEqual([{ a: 1 }]);
    expect(s.push(':2}\n\n\r\n{"a":3}')).toEqual([{ a: 2 }]);
    expect(s.end()).toEqual([{ a: 3 }]);
  });
  it('reports a bad line and keeps going', () => {
    const bad: string[] = [];
    const s = new NdjsonSplitter((l) => bad.push(l));
    expect(s.push('nope\n{"ok":true}\r\n')).toEqual([{ ok: true }]);
    expect(bad).toEqual(['nope']);
  });
});

describe('readNdjson', () => {
  it('decodes multi-byte characters split across chunks', async () => {
    const bytes = new TextEncoder().encode('{"m":"中文"}\n');
    const parts = [bytes.slice(0, 8), bytes.slice(8)];
    const stream = new ReadableStream<Uint8Array>({
      start(c) {
        parts.forEach((p) => c.enqueue(p));
        c.close();
      },
    });
    const got: unknown[] = [];
    await readNdjson(stream, (l) => got.push(l));
    expect(got).toEqual([{ m: '中文' }]);
  });
});

describe('watchTeam', () => {
  it('reconnects from the last revision seen, heartbeats included', async () => {
    const urls: string[] = [];
    const seen: WatchLine[] = [];
    const ctl = new AbortController();
    const responses = [
      () => new Response(streamOf(['{"revision":11,"type":"put","kind":"app","name":"a"}\n{"type":"heartbeat","revision":15}\n']), { status: 200 }),
      () => { throw new TypeError('network down'); },
      () => new Response(streamOf(['{"revision":16,"type":"delete","kind":"app","name":"a"}\n']), { status: 200 }),
    ];
    const fetchImpl = (async (url: string) => {
      urls.push(url);
      const next = responses.shift();
      if (!next) {
        ctl.abort();
        throw new DOMException('aborted', 'AbortError');
      }
      return next();
    }) as unknown as typeof fetch;
    await watchTeam(
      { team: 'default', token: 'tok', from: 10, fetchImpl, backoffMs: () => 1, onChange: (l) => seen.push(l), onCompacted: async () => 0, onUnauthorized: () => {} },
      ctl.signal,
    );
    expect(urls).toEqual([
      '/api/v1/teams/default/watch?from=10',
      '/api/v1/teams/default/watch?from=15',
      '/api/v1/teams/default/watch?from=15',
      '/api/v1/teams/default/watch?from=16',
    ]);
    expect(seen.map((l) => `${l.type}:${l.revision}`)).toEqual(['put:11', 'delete:16']);
  });

  it('lists again after 410 and stops on 401', async () => {
    const urls: string[] = [];
    let unauthorized = false;
    const responses = [new Response('{"code":"revision_compacted"}', { status: 410 }), new Response('{"code":"unauthenticated"}', { status: 401 })];
    const fetchImpl = (async (url: string) => {
      urls.push(url);
      return responses.shift()!;
    }) as unknown as typeof fetch;
    await watchTeam(
      { team: 't', token: 'x', from: 3, fetchImpl, backoffMs: () => 1, onChange: () => {}, onCompacted: async () => 99, onUnauthorized: () => { unauthorized = true; } },
      new AbortController().signal,
    );
    expect(urls).toEqual(['/api/v1/teams/t/watch?from=3', '/api/v1/teams/t/watch?from=99']);
    expect(unauthorized).toBe(true);
  });
});
