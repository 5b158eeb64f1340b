// Live instance logs with search: the server filters (`grep`, case-sensitive) and the stream
// restarts when the search or the instance changes; matches are highlighted.
import { useEffect, useRef, useState } from 'react';
import { session, type Instance } from '../api';
import { useT } from '../i18n';
import { appendCapped, followInstanceLogs, highlight, type LogLine } from '../streams';
import { formatTime } from '../ui';

export function Logs({ base, instances }: { base: string; instances: Instance[] }) {
  const { t, lang } = useT();
  // ?instance= opens one instance's logs (a job run's, linked from the Runs tab; a finished
  // run's instance is gone from the list but its log stays).
  const [instance, setInstance] = useState(() => new URLSearchParams(location.search).get('instance') ?? '');
  const [search, setSearch] = useState('');
  const [grep, setGrep] = useState('');
  const [lines, setLines] = useState<LogLine[]>([]);
  const [connected, setConnected] = useState(false);
  const [fatal, setFatal] = useState<string | null>(null);
  const pre = useRef<HTMLDivElement>(null);
  const stick = useRef(true);

  // Searching restarts the stream; wait for a pause in typing.
  useEffect(() => {
    const timer = setTimeout(() => setGrep(search), 300);
    return () => clearTimeout(timer);
  }, [search]);

  useEffect(() => {
    const ctl = new AbortController();
    setLines([]);
    setFatal(null);
    followInstanceLogs(
      {
        base,
        instance: instance || undefined,
        grep: grep || undefined,
        tail: 500,
        token: session.token(),
        onLines: (more) => setLines((ls) => appendCapped(ls, more)),
        onStatus: setConnected,
        onFatal: (st, body) => {
          if (st === 401) session.expire();
          setFatal(body || String(st));
        },
      },
      ctl.signal,
    );
    return () => ctl.abort();
  }, [base, instance, grep]);

  useEffect(() => {
    const el = pre.current;
    if (el && stick.current) el.scrollTop = el.scrollHeight;
  }, [lines]);

  return (
    <section className="card" aria-labelledby="logs-title" data-testid="logs">
      <div className="row between">
        <h2 id="logs-title">{t('logs.title')}</h2>
        <span className={connected ? 'live on' : 'live'} role="status">{connected ? t('logs.following') : t('live.reconnecting')}</span>
      </div>
      <div className="row log-tools">
        <label className="inline">
          <span>{t('logs.instance')}</span>
          <select value={instance} onChange={(e) => setInstance(e.target.value)}>
            <option value="">{t('logs.allInstances')}</option>
            {instances.map((i) => <option key={i.name} value={i.name}>{i.name}</option>)}
            {instance && !instances.some((i) => i.name === instance) && <option value={instance}>{instance}</option>}
          </select>
        </label>
        <label className="inline grow">
          <span>{t('logs.search')}</span>
          <input type="search" value={search} onChange={(e) => setSearch(e.target.value)} placeholder={t('logs.searchHint')} />
        </label>
        <button type="button" onClick={() => setLines([])}>{t('logs.clear')}</button>
      </div>
      {fatal && <p className="error-banner" role="alert">{fatal}</p>}
      <div
        ref={pre}
        className="log"
        tabIndex={0}
        role="log"
        aria-label={t('logs.title')}
        onScroll={(e) => {
          const el = e.currentTarget;
          stick.current = el.scrollTop + el.clientHeight >= el.scrollHeight - 8;
        }}
      >
        {lines.length === 0 && <span className="muted">{grep ? t('logs.noMatches', { text: grep }) : t('logs.empty')}</span>}
        {lines.map((l, n) => (
          <div key={n} className={`logline stream-${l.stream}`}>
            <span className="muted">{formatTime(l.time, lang)}</span> <span className="inst">{l.instance}</span>{' '}
            {highlight(l.line, grep).map((p, k) => (p.match ? <mark key={k}>{p.text}</mark> : <span key={k}>{p.text}</span>))}
          </div>
        ))}
      </div>
    </section>
  );
}
