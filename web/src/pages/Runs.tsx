// The Runs tab of job and cronjob components (docs/api.md "Jobs and cronjobs"): the run
// history newest first, live through the team's watch (a run is an object of kind "run"), each
// row expandable to its message, last exit and last log lines, with a link to its logs; "Run
// now" for developers and up, showing the API's refusal (409 run_in_progress,
// component_stopped) next to the button.
import { Fragment, useEffect, useState } from 'react';
import { api, type Component, type List } from '../api';
import { useT, type MessageKey } from '../i18n';
import { useLiveResource } from '../live';
import { Link, to } from '../router';
import { nextFiringOf } from '../cron';
import { RUN_STATUSES, RUN_TRIGGERS, exitSummary, formatDuration, logTailLines, runDuration, sortRuns, type Run } from '../runs';
import { ErrorBanner, Loading, errorText, formatTime } from '../ui';

export function Runs({ team, app, c, base, writable }: { team: string; app: string; c: Component; base: string; writable: boolean }) {
  const { t, lang } = useT();
  const runs = useLiveResource<List<Run>>(() => api.list<Run>(base + '/runs'), [base], (l) => l.app === app && (l.kind === 'run' || (l.kind === 'component' && l.name === c.name)));
  const [open, setOpen] = useState<string | null>(null);
  const [busy, setBusy] = useState(false);
  const [refusal, setRefusal] = useState<string | null>(null);
  const [started, setStarted] = useState<string | null>(null);
  // Running runs' durations tick once a second; a cronjob's next firing every 15 s.
  const [now, setNow] = useState(() => Date.now());
  const items = runs.data ? sortRuns(runs.data.items) : [];
  const going = items.some((r) => r.status === 'running');
  const cron = c.kind === 'cronjob';
  useEffect(() => {
    if (!going && !cron) return;
    const timer = setInterval(() => setNow(Date.now()), going ? 1000 : 15000);
    return () => clearInterval(timer);
  }, [going, cron]);
  // The API does not report the next firing: computed here as the server does (cron.ts).
  const next = cron && !c.job?.suspend && c.desired_state === 'running' ? nextFiringOf(c.schedule ?? '', now) : null;

  const runNow = async () => {
    setBusy(true);
    setRefusal(null);
    setStarted(null);
    try {
      const r = await api.post<Run>(base + '/runs', undefined);
      setStarted(r.name);
      runs.reload();
    } catch (err) {
      setRefusal(errorText(err, t));
    } finally {
      setBusy(false);
    }
  };

  const policy = c.job?.concurrency_policy ?? 'allow';
  const units = { ms: t('unit.ms'), s: t('unit.s'), min: t('unit.min'), h: t('unit.h') };
  const exitText = (r: Run) => {
    const x = exitSummary(r.last_exit);
    return x ? t(x.key, x.vars) : '';
  };
  return (
    <>
      <div className="card" data-testid="job-summary">
        <div className="row between">
          <h2>{t(c.kind === 'cronjob' ? 'runs.cronTitle' : 'runs.jobTitle')}</h2>
          {writable && (
            <div className="row">
              <button type="button" className="primary" onClick={runNow} disabled={busy}>{busy ? t('runs.starting') : t('runs.runNow')}</button>
            </div>
          )}
        </div>
        {refusal && <p className="error-banner" role="alert" data-testid="run-refused">{t('runs.refused', { message: refusal })}</p>}
        {started && <p className="ok" role="status">{t('runs.startedRun', { name: started })}</p>}
        <dl className="settings">
          {c.kind === 'cronjob' && (
            <>
              <dt>{t('job.schedule')}</dt><dd className="mono">{c.schedule || t('common.none')} <span className="muted">({t('job.utc')})</span></dd>
              <dt>{t('job.nextFiring')}</dt>
              <dd data-testid="next-firing">{next ? t('job.nextAt', { time: formatTime(next.toISOString(), lang), in: formatDuration(next.getTime() - now, units) }) : t('common.none')}</dd>
              <dt>{t('job.suspend')}</dt><dd>{c.job?.suspend ? <strong className="warn-text">{t('job.suspended')}</strong> : t('job.active')}</dd>
            </>
          )}
          <dt>{t('job.concurrency')}</dt><dd>{t(`job.policy.${policy}` as MessageKey)}</dd>
          <dt>{t('job.retries')}</dt><dd>{c.job?.retries ?? 3}</dd>
          <dt>{t('job.timeout')}</dt><dd>{c.job?.timeout_s ? `${c.job.timeout_s} s` : t('job.noTimeout')}</dd>
          <dt>{t('job.history')}</dt><dd>{c.job?.history_limit ?? 10}</dd>
        </dl>
        {c.desired_state === 'stopped' && <p className="muted">{t('runs.stoppedHint')}</p>}
      </div>
      <div className="card">
        <h2>{t('runs.title')}</h2>
        <ErrorBanner error={runs.error} />
        {!runs.data && !runs.error && <Loading />}
        {runs.data && items.length === 0 && <p className="muted">{t('runs.empty')}</p>}
        {items.length > 0 && (
          <table className="list runs" data-testid="runs">
            <thead>
              <tr>
                <th>{t('runs.run')}</th><th>{t('runs.status')}</th><th>{t('runs.trigger')}</th><th>{t('comp.version')}</th>
                <th>{t('runs.attempts')}</th><th>{t('runs.started')}</th><th>{t('runs.duration')}</th><th>{t('runs.lastExit')}</th>
              </tr>
            </thead>
            <tbody>
              {items.map((r) => {
                const expanded = open === r.name;
                const tail = logTailLines(r.log_tail);
                return (
                  <Fragment key={r.name}>
                    <tr data-run={r.name} data-status={r.status} className={r.status === 'failed' ? 'warn' : ''}>
                      <td className="mono">
                        <button type="button" className="link" aria-expanded={expanded} onClick={() => setOpen(expanded ? null : r.name)}>
                          {expanded ? '▾' : '▸'} {r.name}
                        </button>
                      </td>
                      <td><span className={`badge run-${r.status}`}>{(RUN_STATUSES as readonly string[]).includes(r.status) ? t(`run.status.${r.status}` as MessageKey) : r.status}</span></td>
                      <td>{(RUN_TRIGGERS as readonly string[]).includes(r.trigger) ? t(`run.trigger.${r.trigger}` as MessageKey) : r.trigger}{r.by && r.trigger === 'manual' && <span className="muted"> · {r.by}</span>}</td>
                      <td className="mono">{r.version}</td>
                      <td>{r.attempts}</td>
                      <td className="muted">{formatTime(r.started_at, lang)}</td>
                      <td>{runDuration(r, now, units)}</td>
                      <td>{exitText(r)}{r.last_exit?.reason && <div className="muted small">{r.last_exit.reason}</div>}</td>
                    </tr>
                    {expanded && (
                      <tr className="run-detail" data-testid={`run-detail-${r.name}`}>
                        <td colSpan={8}>
                          {r.message && <p className={r.status === 'failed' ? 'error-banner block' : ''}>{r.message}</p>}
                          <dl className="settings">
                            <dt>{t('runs.instance')}</dt><dd className="mono">{r.instance}</dd>
                            {r.scheduled_at && <><dt>{t('runs.scheduledAt')}</dt><dd>{formatTime(r.scheduled_at, lang)}</dd></>}
                            {r.finished_at && <><dt>{t('runs.finished')}</dt><dd>{formatTime(r.finished_at, lang)}</dd></>}
                          </dl>
                          {tail.length > 0 && (
                            <>
                              <h3>{t('runs.lastLines')}</h3>
                              <pre className="log small">{tail.join('\n')}</pre>
                            </>
                          )}
                          <Link href={to.component(team, app, c.name, 'logs') + '?instance=' + encodeURIComponent(r.instance)}>{t('runs.openLogs', { instance: r.instance })}</Link>
                        </td>
                      </tr>
                    )}
                  </Fragment>
                );
              })}
            </tbody>
          </table>
        )}
      </div>
    </>
  );
}
