import { describe, expect, it } from 'vitest';
import { LogDedupe, appendCapped, followBuildLog, followInstanceLogs, highlight, logsUrl, type LogLine } from './streams';

// A Response whose body delivers `chunks` (strings) one by one.
function streamResponse(chunks: string[], status = 200): Response {
  const enc = new TextEncoder();
  const body = new ReadableStream<Uint8Array>({
    start(c) {
      for (const x of chunks) c.enqueue(enc.encode(x));
      c.close();
    },
  });
  return new Response(body, { status });
}

describe('build log', () => {
  it('shows lines cut across chunks, ends at the end line and reports it', async () => {
    const lines: string[] = [];
    let end: unknown = null;
    const urls: string[] = [];
    await followBuildLog(
      {
        url: '/api/v1/x/versions/v1/log?follow=1',
        token: 'tok',
        fetchImpl: async (u) => { urls.push(String(u)); return streamResponse(['{"type":"line","text":"step 1/2"}\n{"type":"li', 'ne","text":"ok"}\n{"type":"heartbeat"}\n', '{"type":"end","status":"failed","message":"exit 3"}\n']); },
        onReset: () => lines.splice(0),
        onLine: (t) => lines.push(t),
        onEnd: (m) => (end = m),
      },
      new AbortController().signal,
    );
    expect(lines).toEqual(['step 1/2', 'ok']);
    expect(end).toEqual({ type: 'end', status: 'failed', message: 'exit 3' });
    expect(urls).toEqual(['/api/v1/x/versions/v1/log?follow=1']);
  });

  it('starts the log over after a dropped stream, so no line shows twice', async () => {
    const lines: string[] = [];
    const answers = [
      () => streamResponse(['{"type":"line","text":"a"}\n']), // dropped before its end line
      () => { throw new TypeError('connection refused'); }, // server restarting
      () => streamResponse(['{"type":"line","text":"a"}\n{"type":"line","text":"b"}\n{"type":"end","status":"ready"}\n']),
    ];
    let n = 0;
    let statuses: boolean[] = [];
    await followBuildLog(
      {
        url: 'u', token: null, backoffMs: () => 1,
        fetchImpl: async () => answers[n++](),
        onReset: () => lines.splice(0),
        onLine: (t) => lines.push(t),
        onEnd: () => {},
        onStatus: (c) => (statuses = [...statuses, c]),
      },
      new AbortController().signal,
    );
    expect(n).toBe(3);
    expect(lines).toEqual(['a', 'b']);
    expect(statuses).toEqual([true, false, false, true]);
  });

  it('gives up on answers retrying cannot change', async () => {
    let fatal = 0;
    let calls = 0;
    await followBuildLog(
      { url: 'u', token: 't', fetchImpl: async () => { calls++; return new Response('{"code":"not_found"}', { status: 404 }); }, onReset: () => {}, onLine: () => {}, onEnd: () => {}, onFatal: (s) => (fatal = s) },
      new AbortController().signal,
    );
    expect([fatal, calls]).toEqual([404, 1]);
  });
});

describe('instance logs', () => {
  const line = (time: string, text: string, instance = 'web-1'): LogLine => ({ time, instance, stream: 'out', line: text });

  it('drops lines already shown when resuming from the last time', () => {
    const d = new LogDedupe();
    expect(d.accept(line('2026-01-01T00:00:01.000Z', 'a'))).toBe(true);
    expect(d.accept(line('2026-01-01T00:00:02.000Z', 'b'))).toBe(true);
    expect(d.accept(line('2026-01-01T00:00:02.000Z', 'c'))).toBe(true);
    expect(d.since).toBe('2026-01-01T00:00:02.000Z');
    // Resumed with since=…02: the server repeats b and c, and older lines.
    expect(d.accept(line('2026-01-01T00:00:01.000Z', 'a'))).toBe(false);
    expect(d.accept(line('2026-01-01T00:00:02.000Z', 'b'))).toBe(false);
    expect(d.accept(line('2026-01-01T00:00:02.000Z', 'c'))).toBe(false);
    // Same time, another instance: new.
    expect(d.accept(line('2026-01-01T00:00:02.000Z', 'b', 'web-2'))).toBe(true);
    expect(d.accept(line('2026-01-01T00:00:03.000Z', 'd'))).toBe(true);
  });

  it('builds the URL: tail first, since after a reconnect, search and instance', () => {
    expect(logsUrl('/teams/t/apps/a/components/c', { tail: 100 })).toBe('/api/v1/teams/t/apps/a/components/c/logs?follow=1&tail=100');
    expect(logsUrl('/x', { instance: 'web-2', grep: 'GET /a b', since: '2026-01-01T00:00:02.000Z' }))
      .toBe('/api/v1/x/logs?follow=1&instance=web-2&grep=GET+%2Fa+b&since=2026-01-01T00%3A00%3A02.000Z');
  });

  it('reconnects from the last line it showed and never repeats one', async () => {
    const urls: string[] = [];
    const shown: string[] = [];
    const ctl = new AbortController();
    const answers = [
      '{"time":"2026-01-01T00:00:01.000Z","instance":"web-1","stream":"out","line":"one"}\n{"time":"2026-01-01T00:00:02.000Z","instance":"web-1","stream":"out","line":"two"}\n',
      '{"time":"2026-01-01T00:00:02.000Z","instance":"web-1","stream":"out","line":"two"}\n{"type":"heartbeat"}\n{"time":"2026-01-01T00:00:03.000Z","instance":"web-1","stream":"err","line":"three"}\n',
    ];
    let n = 0;
    await followInstanceLogs(
      {
        base: '/c', grep: 'e', tail: 10, token: 't', backoffMs: () => 1,
        fetchImpl: async (u) => {
          urls.push(String(u));
          if (n >= answers.length) { ctl.abort(); throw new Error('aborted'); }
          return streamResponse([answers[n++]]);
        },
        onLines: (ls) => shown.push(...ls.map((l) => l.line)),
      },
      ctl.signal,
    );
    expect(shown).toEqual(['one', 'two', 'three']);
    expect(urls[0]).toBe('/api/v1/c/logs?follow=1&grep=e&tail=10');
    expect(urls[1]).toBe('/api/v1/c/logs?follow=1&grep=e&since=2026-01-01T00%3A00%3A02.000Z');
  });

  it('keeps the newest lines and highlights matches', () => {
    expect(appendCapped([1, 2, 3], [4, 5], 4)).toEqual([2, 3, 4, 5]);
    expect(highlight('GET /a GET', 'GET')).toEqual([
      { text: 'GET', match: true }, { text: ' /a ', match: false }, { text: 'GET', match: true },
    ]);
    expect(highlight('abc', 'x')).toEqual([{ text: 'abc', match: false }]);
    expect(highlight('abc', '')).toEqual([{ text: 'abc', match: false }]);
    expect(highlight('Error', 'error')).toEqual([{ text: 'Error', match: false }]);
  });
});
