import { useEffect, useState, type FormEvent } from 'react';
import { api, can, paths, type BerthEvent, type Component, type Instance, type List, type Role, type Version } from '../api';
import { useT, type MessageKey } from '../i18n';
import { useLiveResource } from '../live';
import { Link, navigate, to } from '../router';
import { componentStatus } from '../status';
import { Confirm, ErrorBanner, Loading, errorText, formatTime } from '../ui';
import { StatusBadge } from './AppPage';

type Tab = 'overview' | 'env' | 'events';

interface Data {
  c: Component;
  versions: Version[];
  instances: Instance[];
}

export function ComponentPage({ team, app, component, tab, role }: { team: string; app: string; component: string; tab: Tab; role?: Role }) {
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
  const [deleting, setDeleting] = useState(false);
  const [deleteError, setDeleteError] = useState<unknown>(null);
  const writable = can.write(role);
  const tabs: { id: Tab; label: MessageKey }[] = [
    { id: 'overview', label: 'tab.overview' },
    { id: 'env', label: 'tab.env' },
    { id: 'events', label: 'tab.events' },
  ];

  const remove = async () => {
    try {
      await api.del(base);
      navigate(to.app(team, app));
    } catch (err) {
      setDeleteError(err);
    }
  };

  return (
    <section aria-labelledby="comp-title">
      <nav className="crumbs" aria-label={t('nav.breadcrumb')}>
        <Link href={to.apps(team)}>{t('nav.apps')}</Link> / <Link href={to.app(team, app)}>{app}</Link> / <span>{component}</span>
      </nav>
      <div className="row between">
        <h1 id="comp-title">
          {component}{' '}
          {data.data && <StatusBadge status={componentStatus(data.data.c, data.data.instances, data.data.versions.some((v) => v.status === 'ready'))} />}
        </h1>
        {writable && <button type="button" className="danger" onClick={() => setDeleting(true)}>{t('comp.deleteComponent')}</button>}
      </div>
      <div role="tablist" className="tabs" aria-label={component}>
        {tabs.map((x) => (
          <Link key={x.id} role="tab" aria-selected={tab === x.id} className={tab === x.id ? 'tab active' : 'tab'} href={to.component(team, app, component, x.id)}>
            {t(x.label)}
          </Link>
        ))}
      </div>
      <ErrorBanner error={data.error} />
      {!data.data && !data.error && <Loading />}
      <div role="tabpanel">
        {data.data && tab === 'overview' && <Overview d={data.data} />}
        {data.data && tab === 'env' && <EnvEditor c={data.data.c} base={base} writable={writable} onSaved={(c) => data.setData({ ...data.data!, c })} />}
        {tab === 'events' && <Events base={base} app={app} component={component} />}
      </div>
      <Confirm
        open={deleting}
        message={t('comp.deleteConfirm', { name: component })}
        confirmLabel={t('common.delete')}
        onConfirm={remove}
        onCancel={() => { setDeleting(false); setDeleteError(null); }}
        error={deleteError}
      />
    </section>
  );
}

function Overview({ d }: { d: Data }) {
  const { t, lang } = useT();
  const c = d.c;
  return (
    <div className="overview">
      <div className="card">
        <h2>{t('overview.settings')}</h2>
        <dl className="settings">
          <dt>{t('comp.kind')}</dt><dd>{t(`kind.${c.kind}` as MessageKey)}</dd>
          <dt>{t('comp.replicas')}</dt><dd>{c.replicas}</dd>
          <dt>{t('comp.desiredState')}</dt><dd>{t(`state.${c.desired_state}` as MessageKey)}</dd>
          <dt>{t('comp.version')}</dt><dd>{c.version || t('overview.latest')}</dd>
          <dt>{t('comp.ports')}</dt><dd className="mono">{c.ports.map((p) => `${p.port}/${p.protocol}`).join(', ') || t('common.none')}</dd>
          <dt>{t('overview.source')}</dt><dd className="mono">{c.source?.type === 'none' || !c.source ? t('common.none') : `${c.source.type}: ${c.source.path || c.source.url || c.source.archive}`}</dd>
        </dl>
      </div>
      <div className="card">
        <h2>{t('overview.versions')}</h2>
        {d.versions.length === 0 ? <p className="muted">{t('overview.noVersions')}</p> : (
          <table className="list">
            <thead><tr><th>{t('common.name')}</th><th>{t('version.status')}</th><th>{t('version.built')}</th></tr></thead>
            <tbody>
              {d.versions.map((v) => (
                <tr key={v.name}><td className="mono">{v.name}</td><td>{['queued', 'building', 'ready', 'failed', 'cancelled'].includes(v.status) ? t(`vstatus.${v.status}` as MessageKey) : v.status}</td><td className="muted">{formatTime(v.built_at || v.created_at, lang)}</td></tr>
              ))}
            </tbody>
          </table>
        )}
      </div>
      <div className="card">
        <h2>{t('overview.instances')}</h2>
        {d.instances.length === 0 ? <p className="muted">{t('overview.noInstances')}</p> : (
          <table className="list">
            <thead><tr><th>{t('common.name')}</th><th>{t('instance.state')}</th><th>{t('instance.ready')}</th><th>{t('instance.port')}</th></tr></thead>
            <tbody>
              {d.instances.map((i) => (
                <tr key={i.name}>
                  <td className="mono">{i.name}</td>
                  <td>{String(i.state ?? '')}</td>
                  <td>{i.ready ? t('instance.yes') : t('instance.no')}</td>
                  <td className="mono">{String(i.port ?? '')}</td>
                </tr>
              ))}
            </tbody>
          </table>
        )}
      </div>
    </div>
  );
}

interface EnvRow { key: string; value: string; id: number }
let nextRowId = 1;
const toRows = (env: Record<string, string>): EnvRow[] => Object.entries(env).map(([key, value]) => ({ key, value, id: nextRowId++ }));

function EnvEditor({ c, base, writable, onSaved }: { c: Component; base: string; writable: boolean; onSaved: (c: Component) => void }) {
  const { t } = useT();
  const [rows, setRows] = useState<EnvRow[]>(() => toRows(c.env ?? {}));
  const [dirty, setDirty] = useState(false);
  const [busy, setBusy] = useState(false);
  const [error, setError] = useState<string | null>(null);
  const [saved, setSaved] = useState(false);
  // Follow the live object while the user has not started editing.
  useEffect(() => { if (!dirty) setRows(toRows(c.env ?? {})); }, [c, dirty]);

  const update = (id: number, patch: Partial<EnvRow>) => {
    setRows((rs) => rs.map((r) => (r.id === id ? { ...r, ...patch } : r)));
    setDirty(true);
    setSaved(false);
  };
  const save = async (e: FormEvent) => {
    e.preventDefault();
    setError(null);
    const env: Record<string, string | null> = {};
    for (const r of rows) {
      const k = r.key.trim();
      if (!k) return setError(t('env.emptyKey'));
      if (k in env) return setError(t('env.duplicate', { key: k }));
      env[k] = r.value;
    }
    for (const old of Object.keys(c.env ?? {})) if (!(old in env)) env[old] = null;
    setBusy(true);
    try {
      const updated = await api.patch<Component>(base, { env, revision: c.revision });
      setDirty(false);
      setSaved(true);
      onSaved(updated);
    } catch (err) {
      setError(errorText(err, t));
    } finally {
      setBusy(false);
    }
  };

  return (
    <form className="card" onSubmit={save} aria-label={t('tab.env')} data-testid="env-editor">
      {!writable && <p className="muted">{t('env.readOnly')}</p>}
      {rows.length === 0 && <p className="muted">{t('env.empty')}</p>}
      {rows.length > 0 && (
        <table className="list env">
          <thead><tr><th>{t('env.key')}</th><th>{t('env.value')}</th>{writable && <th><span className="sr-only">{t('common.actions')}</span></th>}</tr></thead>
          <tbody>
            {rows.map((r) => (
              <tr key={r.id}>
                <td><input aria-label={t('env.key')} className="mono" value={r.key} readOnly={!writable} onChange={(e) => update(r.id, { key: e.target.value })} /></td>
                <td><input aria-label={`${t('env.value')} ${r.key}`} className="mono" value={r.value} readOnly={!writable} onChange={(e) => update(r.id, { value: e.target.value })} /></td>
                {writable && (
                  <td><button type="button" className="small" aria-label={t('env.removeLabel', { key: r.key })} onClick={() => { setRows((rs) => rs.filter((x) => x.id !== r.id)); setDirty(true); }}>{t('env.remove')}</button></td>
                )}
              </tr>
            ))}
          </tbody>
        </table>
      )}
      {error && <p className="error-banner" role="alert">{error}</p>}
      {writable && (
        <div className="row">
          <button type="button" onClick={() => { setRows((rs) => [...rs, { key: '', value: '', id: nextRowId++ }]); setDirty(true); }}>{t('env.add')}</button>
          <button type="submit" className="primary" disabled={busy || !dirty}>{busy ? t('common.saving') : t('common.save')}</button>
          {saved && <span className="ok" role="status">{t('common.saved')}</span>}
        </div>
      )}
    </form>
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
