// Versions and builds: queue a build, follow its log live, cancel it, deploy a version or roll
// back to an older one (both confirmed: a rolling update replaces every instance).
import { useEffect, useRef, useState } from 'react';
import { api, session, type Component, type Instance, type Version } from '../api';
import { useT, type MessageKey } from '../i18n';
import { Link, navigate, to } from '../router';
import { followBuildLog, type BuildLogMessage } from '../streams';
import { Confirm, ErrorBanner, formatTime } from '../ui';
import { currentVersion, sortVersions } from '../versions';

export function VersionStatus({ status }: { status: string }) {
  const { t } = useT();
  const known = ['queued', 'building', 'ready', 'failed', 'cancelled'].includes(status);
  return <span className={`badge vstatus-${status}`} data-vstatus={status}>{known ? t(`vstatus.${status}` as MessageKey) : status}</span>;
}

interface Props {
  team: string;
  app: string;
  c: Component;
  base: string;
  versions: Version[];
  instances: Instance[];
  writable: boolean;
  selected?: string;
  onChanged: () => void;
}

export function Versions({ team, app, c, base, versions, instances, writable, selected, onChanged }: Props) {
  const { t, lang } = useT();
  const sorted = sortVersions(versions);
  const current = currentVersion(c, versions);
  const [building, setBuilding] = useState(false);
  const [error, setError] = useState<unknown>(null);
  const [deploy, setDeploy] = useState<{ v: Version; rollback: boolean } | null>(null);
  const [deployError, setDeployError] = useState<unknown>(null);
  const running = new Map<string, number>();
  for (const i of instances) if (i.version) running.set(i.version, (running.get(i.version) ?? 0) + 1);

  const build = async () => {
    setBuilding(true);
    setError(null);
    try {
      const v = await api.post<Version>(base + '/builds', {});
      onChanged();
      navigate(to.component(team, app, c.name, 'versions', v.name));
    } catch (err) {
      setError(err);
    } finally {
      setBuilding(false);
    }
  };
  const cancel = async (v: Version) => {
    setError(null);
    try {
      await api.post(base + `/versions/${encodeURIComponent(v.name)}/cancel`, {});
      onChanged();
    } catch (err) {
      setError(err);
    }
  };
  const doDeploy = async (version: string) => {
    try {
      await api.patch<Component>(base, { version, revision: c.revision });
      setDeploy(null);
      setDeployError(null);
      onChanged();
    } catch (err) {
      setDeployError(err);
    }
  };
  const [following, setFollowing] = useState(false);
  const followNewest = async () => {
    setFollowing(true);
    setError(null);
    try {
      await api.patch<Component>(base, { version: '', revision: c.revision });
      onChanged();
    } catch (err) {
      setError(err);
    } finally {
      setFollowing(false);
    }
  };

  return (
    <div className="versions">
      <div className="card">
        <div className="row between">
          <h2>{t('overview.versions')}</h2>
          {writable && (
            <button type="button" className="primary" onClick={build} disabled={building || c.source?.type === 'none'}>
              {building ? t('versions.queueing') : t('versions.build')}
            </button>
          )}
        </div>
        <p className="muted" data-testid="deploy-policy">
          {c.version ? t('versions.pinned', { version: c.version }) : t('versions.followsNewest')}{' '}
          {c.version && writable && <button type="button" className="small" onClick={followNewest} disabled={following}>{t('versions.followNewest')}</button>}
        </p>
        {c.source?.type === 'none' && <p className="muted">{t('versions.noSource')}</p>}
        <ErrorBanner error={error} />
        {sorted.length === 0 ? <p className="muted">{t('overview.noVersions')}</p> : (
          <table className="list" data-testid="versions">
            <thead>
              <tr><th>{t('common.name')}</th><th>{t('version.status')}</th><th>{t('versions.running')}</th><th>{t('version.built')}</th><th>{t('versions.message')}</th><th><span className="sr-only">{t('common.actions')}</span></th></tr>
            </thead>
            <tbody>
              {sorted.map((v) => {
                const isCurrent = current?.name === v.name;
                const rollback = !!current && v.number < current.number;
                return (
                  <tr key={v.name} className={selected === v.name ? 'selected' : ''} data-version={v.name}>
                    <td className="mono">{v.name}{isCurrent && <span className="badge current"> {t('versions.current')}</span>}</td>
                    <td><VersionStatus status={v.status} /></td>
                    <td>{running.get(v.name) ? t('versions.instancesN', { n: running.get(v.name)! }) : ''}</td>
                    <td className="muted">{formatTime(v.built_at || v.created_at, lang)}</td>
                    <td className="message">{v.message}{v.commit && <span className="mono muted"> {v.commit.slice(0, 10)}</span>}</td>
                    <td className="actions">
                      <Link href={to.component(team, app, c.name, 'versions', v.name)} className="small-link" aria-label={t('versions.logOf', { version: v.name })}>{t('versions.log')}</Link>
                      {writable && v.status === 'ready' && !isCurrent && (
                        <button type="button" className="small" onClick={() => setDeploy({ v, rollback })}>
                          {rollback ? t('versions.rollbackTo', { version: v.name }) : t('versions.deploy', { version: v.name })}
                        </button>
                      )}
                      {writable && (v.status === 'queued' || v.status === 'building') && (
                        <button type="button" className="small danger" onClick={() => cancel(v)}>{t('versions.cancel')}</button>
                      )}
                    </td>
                  </tr>
                );
              })}
            </tbody>
          </table>
        )}
      </div>
      {selected && <BuildLog key={selected} base={base} version={selected} status={versions.find((v) => v.name === selected)?.status} onEnd={onChanged} />}
      <Confirm
        open={deploy !== null}
        message={deploy ? (deploy.rollback ? t('versions.rollbackConfirm', { version: deploy.v.name, name: c.name }) : t('versions.deployConfirm', { version: deploy.v.name, name: c.name })) : ''}
        confirmLabel={deploy?.rollback ? t('versions.rollback') : t('versions.deployShort')}
        onConfirm={() => deploy && doDeploy(deploy.v.name)}
        onCancel={() => { setDeploy(null); setDeployError(null); }}
        error={deployError}
      />
    </div>
  );
}

function BuildLog({ base, version, status, onEnd }: { base: string; version: string; status?: string; onEnd: () => void }) {
  const { t } = useT();
  const [lines, setLines] = useState<string[]>([]);
  const [end, setEnd] = useState<BuildLogMessage | null>(null);
  const [connected, setConnected] = useState(true);
  const [fatal, setFatal] = useState<string | null>(null);
  const pre = useRef<HTMLPreElement>(null);
  const stick = useRef(true);
  const onEndRef = useRef(onEnd);
  onEndRef.current = onEnd;

  useEffect(() => {
    const ctl = new AbortController();
    let buffer: string[] = [];
    let timer: ReturnType<typeof setTimeout> | undefined;
    const flush = () => {
      timer = undefined;
      const more = buffer;
      buffer = [];
      setLines((ls) => ls.concat(more));
    };
    followBuildLog(
      {
        url: `/api/v1${base}/versions/${encodeURIComponent(version)}/log?follow=1`,
        token: session.token(),
        onReset: () => { buffer = []; setLines([]); setEnd(null); },
        onLine: (text) => {
          buffer.push(text);
          if (!timer) timer = setTimeout(flush, 80);
        },
        onEnd: (m) => {
          clearTimeout(timer);
          flush();
          setEnd(m);
          onEndRef.current();
        },
        onStatus: setConnected,
        onFatal: (st, body) => {
          if (st === 401) session.expire();
          setFatal(body || String(st));
        },
      },
      ctl.signal,
    );
    return () => {
      clearTimeout(timer);
      ctl.abort();
    };
  }, [base, version]);

  useEffect(() => {
    const el = pre.current;
    if (el && stick.current) el.scrollTop = el.scrollHeight;
  }, [lines]);

  const finalStatus = end?.status ?? (status && !['queued', 'building'].includes(status) ? status : undefined);
  return (
    <section className="card" aria-labelledby="buildlog-title" data-testid="build-log">
      <div className="row between">
        <h2 id="buildlog-title">{t('versions.buildLog', { version })}</h2>
        <span role="status" aria-live="polite">
          {finalStatus ? <VersionStatus status={finalStatus} /> : connected ? <span className="live on">{t('versions.following')}</span> : <span className="live">{t('live.reconnecting')}</span>}
        </span>
      </div>
      {fatal && <p className="error-banner" role="alert">{fatal}</p>}
      {end?.status === 'failed' && end.message && <p className="error-banner" role="alert" data-testid="build-failure">{end.message}</p>}
      <pre
        ref={pre}
        className="log"
        tabIndex={0}
        aria-label={t('versions.buildLog', { version })}
        onScroll={(e) => {
          const el = e.currentTarget;
          stick.current = el.scrollTop + el.clientHeight >= el.scrollHeight - 8;
        }}
      >
        {lines.length === 0 ? <span className="muted">{finalStatus ? t('versions.emptyLog') : t('versions.waiting')}</span> : lines.join('\n')}
      </pre>
    </section>
  );
}
