// The app page: its topology (components, dependencies, live status) and the component list.
import { useState } from 'react';
import { api, can, paths, type Component, type Dependency, type Instance, type Role, type Version } from '../api';
import { useT, type MessageKey } from '../i18n';
import { useLiveResource } from '../live';
import { Link, navigate, to } from '../router';
import { statusKey, statusOf, type ComponentStatus } from '../status';
import { Confirm, ErrorBanner, Loading } from '../ui';
import { Topology } from './Topology';

export interface Row {
  c: Component;
  status: ComponentStatus;
  ready: number;
  deps: Dependency[];
}

export function StatusBadge({ status }: { status: ComponentStatus }) {
  const { t } = useT();
  return <span className={`badge status-${status}`} data-status={status}>{t(statusKey(status))}</span>;
}

export function AppPage({ team, app, role }: { team: string; app: string; role?: Role }) {
  const { t } = useT();
  const rows = useLiveResource<Row[]>(
    async () => {
      const list = await api.list<Component>(paths.components(team, app));
      return Promise.all(
        list.items.map(async (c) => {
          const base = paths.component(team, app, c.name);
          const [inst, vers, deps] = await Promise.all([
            api.list<Instance>(base + '/instances').catch(() => ({ items: [] as Instance[] })),
            api.list<Version>(base + '/versions', 50).catch(() => ({ items: [] as Version[] })),
            api.list<Dependency>(base + '/dependencies').catch(() => ({ items: [] as Dependency[] })),
          ]);
          return {
            c,
            status: statusOf(c, inst.items, vers.items),
            ready: inst.items.filter((i) => i.ready === true).length,
            deps: deps.items,
          };
        }),
      );
    },
    [team, app],
    (l) => l.app === app && ['component', 'instance', 'version', 'dependency'].includes(l.kind ?? ''),
  );
  const [deleting, setDeleting] = useState(false);
  const [deleteError, setDeleteError] = useState<unknown>(null);
  const writable = can.write(role);

  const deleteApp = async () => {
    try {
      await api.del(paths.app(team, app));
      navigate(to.apps(team));
    } catch (err) {
      setDeleteError(err);
    }
  };

  return (
    <section aria-labelledby="app-title">
      <nav className="crumbs" aria-label={t('nav.breadcrumb')}>
        <Link href={to.apps(team)}>{t('nav.apps')}</Link> / <span>{app}</span>
      </nav>
      <div className="row between">
        <h1 id="app-title">{app}</h1>
        {writable && (
          <div className="row">
            <Link href={to.newComponent(team, app)} className="button primary">{t('app.newComponent')}</Link>
            <button type="button" className="danger" onClick={() => setDeleting(true)}>{t('apps.deleteApp')}</button>
          </div>
        )}
      </div>
      {rows.data && rows.data.length > 0 && (
        <>
          <h2>{t('topology.title')}</h2>
          <Topology team={team} app={app} rows={rows.data} />
        </>
      )}
      <h2>{t('app.components')}</h2>
      <ErrorBanner error={rows.error} />
      {!rows.data && !rows.error && <Loading />}
      {rows.data && rows.data.length === 0 && <p className="muted">{t('app.noComponents')}</p>}
      {rows.data && rows.data.length > 0 && (
        <table className="list" data-testid="components">
          <thead>
            <tr>
              <th>{t('common.name')}</th>
              <th>{t('comp.kind')}</th>
              <th>{t('comp.status')}</th>
              <th>{t('comp.replicas')}</th>
              <th>{t('comp.ports')}</th>
            </tr>
          </thead>
          <tbody>
            {rows.data.map(({ c, status, ready }) => (
              <tr key={c.name}>
                <td><Link href={to.component(team, app, c.name)} className="strong">{c.name}</Link></td>
                <td>{t(`kind.${c.kind}` as MessageKey)}</td>
                <td><StatusBadge status={status} /></td>
                <td>{t('comp.instancesReady', { ready, total: c.replicas })}</td>
                <td className="mono">{c.ports.map((p) => `${p.port}/${p.protocol}`).join(', ') || t('common.none')}</td>
              </tr>
            ))}
          </tbody>
        </table>
      )}
      <Confirm
        open={deleting}
        message={t('apps.deleteConfirm', { name: app })}
        confirmLabel={t('common.delete')}
        onConfirm={deleteApp}
        onCancel={() => { setDeleting(false); setDeleteError(null); }}
        error={deleteError}
      />
    </section>
  );
}
