// The component page: a header with the live status and one tab per concern (docs/console.md).
import { api, can, paths, type BerthEvent, type Component, type Instance, type List, type Role, type Version } from '../api';
import { processRows } from '../processes';
import { useT, type MessageKey } from '../i18n';
import { useLiveResource } from '../live';
import { useEffect } from 'react';
import { Link, navigate, tabsFor, to, type Tab } from '../router';
import { formatCpu, formatMemory, memoryShare, usageOf } from '../runs';
import { statusOf } from '../status';
import { ErrorBanner, Loading, formatTime } from '../ui';
import { currentVersion, gatewayAddresses, instanceAddresses } from '../versions';
import { StatusBadge } from './AppPage';
import { Dependencies } from './Dependencies';
import { ComponentGateway } from './Gateway';
import { FilesEditor, HealthEditor, JobEditor, PortsEditor, ScaleEditor, SettingsEditor } from './Editors';
import { ConfigVars, Processes, Releases } from './Heroku';
import { Logs } from './Logs';
import { Runs } from './Runs';
import { Versions } from './Versions';

const USAGE_POLL_MS = 5000;

interface Data {
  c: Component;
  versions: Version[];
  instances: Instance[];
}

export function ComponentPage({ team, app, component, tab, version, role }: { team: string; app: string; component: string; tab: Tab; version?: string; role?: Role }) {
  const { t } = useT();
  const base = paths.component(team, app, component);
  const data = useLiveResource<Data>(
    async () => {
      const [c, versions, instances] = await Promise.all([
        api.get<Component>(base),
        api.list<Version>(base + '/versions'),
        api.list<Instance>(base + '/instances'),
      ]);
      return { c, versions: versions.items, instances: instances.items };
    },
    [base],
    (l) => l.app === app && (l.name === component || (l.kind !== 'component' && l.kind !== 'app')),
  );
  const writable = can.write(role);
  const d = data.data;
  const onSaved = (c: Component) => data.setData({ ...data.data!, c });
  const isJob = d?.c.kind === 'job' || d?.c.kind === 'cronjob';

  // Usage (CPU, memory) is not a store change, so the watch does not bring it: while the
  // overview is shown, list the instances again every few seconds (stopped on leaving it).
  const setData = data.setData;
  useEffect(() => {
    if (tab !== 'overview') return;
    let cancelled = false;
    const timer = setInterval(async () => {
      if (document.visibilityState === 'hidden') return;
      try {
        const instances = (await api.list<Instance>(base + '/instances')).items;
        if (!cancelled) setData((prev) => (prev ? { ...prev, instances } : prev));
      } catch {
        /* the next tick tries again; the page's own load shows lasting errors */
      }
    }, USAGE_POLL_MS);
    return () => {
      cancelled = true;
      clearInterval(timer);
    };
  }, [tab, base, setData]);

  const remove = async () => {
    await api.del(base);
    navigate(to.app(team, app));
  };

  return (
    <section aria-labelledby="comp-title">
      <nav className="crumbs" aria-label={t('nav.breadcrumb')}>
        <Link href={to.apps(team)}>{t('nav.apps')}</Link> / <Link href={to.app(team, app)}>{app}</Link> / <span>{component}</span>
      </nav>
      <div className="row between">
        <h1 id="comp-title">
          {component}{' '}
          {d && <StatusBadge status={statusOf(d.c, d.instances, d.versions)} />}
        </h1>
      </div>
      <div role="tablist" className="tabs" aria-label={component}>
        {tabsFor(d?.c.kind ?? 'service').map((id) => (
          <Link key={id} role="tab" aria-selected={tab === id} className={tab === id ? 'tab active' : 'tab'} href={to.component(team, app, component, id)}>
            {t(`tab.${id}` as MessageKey)}
          </Link>
        ))}
      </div>
      <ErrorBanner error={data.error} />
      {!d && !data.error && <Loading />}
      <div role="tabpanel">
        {d && tab === 'overview' && <Overview d={d} base={base} />}
        {d && tab === 'versions' && <Versions team={team} app={app} c={d.c} base={base} versions={d.versions} instances={d.instances} writable={writable} selected={version} onChanged={data.reload} />}
        {d && tab === 'processes' && <Processes c={d.c} instances={d.instances} />}
        {d && tab === 'releases' && <Releases team={team} app={app} c={d.c} base={base} versions={d.versions} instances={d.instances} writable={writable} onChanged={data.reload} />}
        {d && tab === 'runs' && isJob && <Runs team={team} app={app} c={d.c} base={base} writable={writable} />}
        {d && tab === 'runs' && !isJob && <p className="muted">{t('runs.notAJob')}</p>}
        {d && tab === 'scale' && isJob && <JobEditor c={d.c} base={base} writable={writable} onSaved={onSaved} />}
        {d && tab === 'scale' && <ScaleEditor c={d.c} base={base} writable={writable} onSaved={onSaved} />}
        {d && tab === 'logs' && <Logs base={base} instances={d.instances} />}
        {d && tab === 'env' && (
          <>
            <ConfigVars c={d.c} ran={d.versions.some((v) => v.status === 'ready')} base={base} app={app} writable={writable} onSaved={onSaved} />
            <FilesEditor c={d.c} base={base} writable={writable} onSaved={onSaved} />
          </>
        )}
        {d && tab === 'ports' && (
          <>
            <PortsEditor c={d.c} base={base} writable={writable} onSaved={onSaved} />
            <ComponentGateway team={team} app={app} c={d.c} writable={writable} />
          </>
        )}
        {d && tab === 'health' && <HealthEditor c={d.c} base={base} writable={writable} onSaved={onSaved} />}
        {tab === 'dependencies' && <Dependencies team={team} app={app} component={component} base={base} writable={writable} />}
        {tab === 'events' && <Events base={base} app={app} component={component} />}
        {d && tab === 'settings' && <SettingsEditor c={d.c} base={base} writable={writable} onSaved={onSaved} onDelete={remove} />}
      </div>
    </section>
  );
}

function Overview({ d, base }: { d: Data; base: string }) {
  const { t, lang } = useT();
  const c = d.c;
  const current = currentVersion(c, d.versions);
  const addresses = gatewayAddresses(c);
  const direct = instanceAddresses(d.instances.filter((i) => i.ready === true));
  return (
    <div className="overview">
      <div className="card">
        <h2>{t('overview.settings')}</h2>
        <dl className="settings">
          <dt>{t('comp.kind')}</dt><dd>{t(`kind.${c.kind}` as MessageKey)}</dd>
          {c.kind === 'cronjob' && <><dt>{t('job.schedule')}</dt><dd className="mono">{c.schedule} <span className="muted">({t('job.utc')})</span></dd></>}
          {c.kind !== 'job' && c.kind !== 'cronjob' && <><dt>{t('comp.replicas')}</dt><dd>{c.replicas}</dd></>}
          {processRows(c, d.instances).length > 0 && (
            <><dt>{t('comp.processTypes')}</dt><dd data-testid="process-types">{processRows(c, d.instances).map((p) => (
              <div key={p.type} className="mono">{t('comp.processCount', { type: p.type, want: p.want, ready: p.ready })}</div>
            ))}</dd></>
          )}
          <dt>{t('comp.desiredState')}</dt><dd>{t(`state.${c.desired_state}` as MessageKey)}</dd>
          <dt>{t('comp.version')}</dt><dd>{current ? current.name : t('common.none')}{!c.version && <span className="muted"> ({t('overview.latest')})</span>}</dd>
          <dt>{t('comp.ports')}</dt><dd className="mono">{c.ports.map((p) => `${p.port}/${p.protocol}`).join(', ') || t('common.none')}</dd>
          <dt>{t('scale.memory')}</dt><dd>{c.resources?.memory_mb ? `${c.resources.memory_mb} MB` : t('overview.unlimited')}</dd>
          <dt>{t('scale.cpu')}</dt><dd>{c.resources?.cpu_millis ? `${c.resources.cpu_millis} m` : t('overview.unlimited')}</dd>
          <dt>{t('overview.source')}</dt><dd className="mono">{c.source?.type === 'none' || !c.source ? t('common.none') : `${c.source.type}: ${c.source.path || c.source.url || c.source.archive}${c.source.ref ? ' @ ' + c.source.ref : ''}`}</dd>
          {c.source?.type === 'git' && (
            <>
              <dt>{t('overview.pushUrl')}</dt>
              <dd>
                <code className="mono" data-testid="push-url">{`${window.location.origin}${base}/git`}</code>
                <div className="muted">{t('overview.pushHint')}</div>
              </dd>
            </>
          )}
        </dl>
      </div>
      <div className="card">
        <h2>{t('overview.addresses')}</h2>
        {addresses.length === 0 && direct.length === 0 && <p className="muted">{t('overview.noAddresses')}</p>}
        {addresses.length > 0 && (
          <ul className="addresses" data-testid="addresses">
            {addresses.map((a) => (
              <li key={a.url}><a href={a.url} target="_blank" rel="noreferrer" className="mono">{a.label}</a></li>
            ))}
          </ul>
        )}
        {direct.length > 0 && (
          <>
            <h3>{t('overview.direct')}</h3>
            <ul className="addresses" data-testid="instance-addresses">
              {direct.map((a) => (
                <li key={a.url} data-url={a.url} data-netns={a.netns ?? ''}>
                  {a.netns
                    ? <span className="mono">{a.label}</span>
                    : <a href={a.url} target="_blank" rel="noreferrer" className="mono">{a.label}</a>}
                  <span className="muted"> · {a.instance}{a.netns && <> · {t('overview.teamNetwork')}</>}</span>
                </li>
              ))}
            </ul>
          </>
        )}
      </div>
      <div className="card wide">
        <h2>{t('overview.instances')}</h2>
        {d.instances.length === 0 ? <p className="muted">{t('overview.noInstances')}</p> : (
          <table className="list" data-testid="instances">
            <thead><tr><th>{t('common.name')}</th><th>{t('instance.state')}</th><th>{t('instance.ready')}</th><th>{t('comp.version')}</th><th>{t('instance.port')}</th><th>{t('instance.restarts')}</th><th>{t('usage.cpu')}</th><th>{t('usage.memory')}</th></tr></thead>
            <tbody>
              {d.instances.map((i) => (
                <tr key={i.name} data-ready={i.ready ? 'yes' : 'no'}>
                  <td className="mono">{i.name}</td>
                  <td>{i.state ? (['starting', 'running', 'backoff', 'stopping'].includes(i.state) ? t(`istate.${i.state}` as MessageKey) : i.state) : ''}{i.outdated && <span className="muted"> · {t('instance.outdated')}</span>}{i.message && <div className="muted small">{i.message}</div>}</td>
                  <td>{i.ready ? t('instance.yes') : t('instance.no')}</td>
                  <td className="mono">{i.version ?? ''}</td>
                  <td className="mono">{String(i.port ?? '')}</td>
                  <td>{i.restarts ?? 0}{i.last_exit?.reason && <div className="muted small">{i.last_exit.reason}</div>}</td>
                  <UsageCells i={i} />
                </tr>
              ))}
            </tbody>
          </table>
        )}
      </div>
      {d.versions.length > 0 && (
        <div className="card">
          <h2>{t('overview.latestBuild')}</h2>
          {(() => {
            const v = [...d.versions].sort((a, b) => b.number - a.number)[0];
            return (
              <p>
                <span className="mono">{v.name}</span> · {['queued', 'building', 'ready', 'failed', 'cancelled'].includes(v.status) ? t(`vstatus.${v.status}` as MessageKey) : v.status} · <span className="muted">{formatTime(v.built_at || v.created_at, lang)}</span>
                {v.status === 'failed' && v.message && <span className="error-banner block">{v.message}</span>}
              </p>
            );
          })()}
        </div>
      )}
    </div>
  );
}

// CPU (percent of one core, "/ limit") and memory (MiB, "/ limit"); a dash when the instance
// does not run or has no sample yet.
function UsageCells({ i }: { i: Instance }) {
  const { t } = useT();
  const u = usageOf(i);
  const share = memoryShare(u);
  const title = u ? t('usage.detail', { rss: formatMemory({ memory_bytes: u.rss_bytes ?? 0 }), processes: u.processes ?? 0, source: u.memory_source ?? '' }) : undefined;
  return (
    <>
      <td className="mono" data-usage="cpu">{formatCpu(u) || '–'}</td>
      <td className={'mono' + (share !== null && share >= 0.9 ? ' usage-high' : '')} data-usage="memory" title={title}>{formatMemory(u) || '–'}</td>
    </>
  );
}

function Events({ base, app, component }: { base: string; app: string; component: string }) {
  const { t, lang } = useT();
  const events = useLiveResource(() => api.list<BerthEvent>(base + '/events'), [base], (l) => l.kind === 'event' && l.app === app);
  if (events.error) return <ErrorBanner error={events.error} />;
  if (!events.data) return <Loading />;
  const items = (events.data as List<BerthEvent>).items.filter((e) => !e.component || e.component === component);
  if (items.length === 0) return <p className="muted">{t('events.empty')}</p>;
  return (
    <table className="list">
      <thead><tr><th>{t('events.type')}</th><th>{t('events.reason')}</th><th>{t('events.message')}</th><th>{t('events.count')}</th><th>{t('events.last')}</th></tr></thead>
      <tbody>
        {items.map((e) => (
          <tr key={e.id} className={e.type === 'warning' ? 'warn' : ''}>
            <td>{e.type === 'warning' ? t('events.warning') : t('events.normal')}</td>
            <td className="mono">{e.reason}</td>
            <td>{e.message}</td>
            <td>{e.count}</td>
            <td className="muted">{formatTime(e.last_at, lang)}</td>
          </tr>
        ))}
      </tbody>
    </table>
  );
}
