import { useState, type FormEvent } from 'react';
import { api, can, fieldOf, paths, type Component, type Instance, type Role, type Version } from '../api';
import { isProblem, parseEnv, parsePorts } from '../component_form';
import { useT, type MessageKey } from '../i18n';
import { useLiveResource } from '../live';
import { Link, navigate, to } from '../router';
import { componentStatus, statusKey, type ComponentStatus } from '../status';
import { Confirm, ErrorBanner, Field, Loading, errorText } from '../ui';

const FIELDS = ['name', 'kind', 'ports', 'env', 'replicas', 'source'] as const;
const KINDS = ['service', 'stateful', 'job', 'cronjob'] as const;

interface Row {
  c: Component;
  status: ComponentStatus;
  ready: number;
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
          const [inst, vers] = await Promise.all([
            api.list<Instance>(base + '/instances').catch(() => ({ items: [] as Instance[] })),
            api.list<Version>(base + '/versions', 50).catch(() => ({ items: [] as Version[] })),
          ]);
          const hasVersion = vers.items.some((v) => v.status === 'ready');
          return {
            c,
            status: componentStatus(c, inst.items, hasVersion),
            ready: inst.items.filter((i) => i.ready === true).length,
          };
        }),
      );
    },
    [team, app],
    (l) => l.app === app && ['component', 'instance', 'version'].includes(l.kind ?? ''),
  );
  const [showForm, setShowForm] = useState(false);
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
            <button type="button" className="primary" onClick={() => setShowForm((v) => !v)} aria-expanded={showForm}>
              {t('app.newComponent')}
            </button>
            <button type="button" className="danger" onClick={() => setDeleting(true)}>{t('apps.deleteApp')}</button>
          </div>
        )}
      </div>
      {showForm && writable && (
        <CreateComponent team={team} app={app} onDone={() => { setShowForm(false); rows.reload(); }} onCancel={() => setShowForm(false)} />
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

function CreateComponent({ team, app, onDone, onCancel }: { team: string; app: string; onDone: () => void; onCancel: () => void }) {
  const { t } = useT();
  const [name, setName] = useState('');
  const [kind, setKind] = useState<(typeof KINDS)[number]>('service');
  const [ports, setPorts] = useState('');
  const [env, setEnv] = useState('');
  const [replicas, setReplicas] = useState('1');
  const [sourcePath, setSourcePath] = useState('');
  const [error, setError] = useState<{ field: string | null; text: string } | null>(null);
  const [busy, setBusy] = useState(false);

  const submit = async (e: FormEvent) => {
    e.preventDefault();
    setError(null);
    const p = parsePorts(ports);
    if (isProblem(p)) return setError({ field: p.field, text: t(p.key, p.vars) });
    const en = parseEnv(env);
    if (isProblem(en)) return setError({ field: en.field, text: t(en.key, en.vars) });
    const body: Record<string, unknown> = { name: name.trim(), kind, ports: p, env: en, replicas: Number(replicas) };
    if (sourcePath.trim()) body.source = { type: 'dir', path: sourcePath.trim() };
    setBusy(true);
    try {
      await api.post(paths.components(team, app), body);
      onDone();
    } catch (err) {
      setError({ field: fieldOf(err, FIELDS), text: errorText(err, t) });
    } finally {
      setBusy(false);
    }
  };
  const errFor = (f: string) => (error && error.field === f ? error.text : null);

  return (
    <form className="card" onSubmit={submit} aria-label={t('app.newComponent')} data-testid="create-component">
      <h2>{t('app.newComponent')}</h2>
      <div className="grid2">
        <Field label={t('comp.name')} error={errFor('name')}>
          {(p) => <input {...p} name="name" value={name} onChange={(e) => setName(e.target.value)} required autoFocus maxLength={63} />}
        </Field>
        <Field label={t('comp.kind')} error={errFor('kind')}>
          {(p) => (
            <select {...p} name="kind" value={kind} onChange={(e) => setKind(e.target.value as (typeof KINDS)[number])}>
              {KINDS.map((k) => <option key={k} value={k}>{t(`kind.${k}` as MessageKey)}</option>)}
            </select>
          )}
        </Field>
        <Field label={t('comp.ports')} hint={t('comp.portsHint')} error={errFor('ports')}>
          {(p) => <input {...p} name="ports" value={ports} onChange={(e) => setPorts(e.target.value)} placeholder="8080" />}
        </Field>
        <Field label={t('comp.replicas')} error={errFor('replicas')}>
          {(p) => <input {...p} name="replicas" type="number" min={0} max={100} value={replicas} onChange={(e) => setReplicas(e.target.value)} />}
        </Field>
        <Field label={t('comp.sourcePath')} hint={t('comp.sourcePathHint')} error={errFor('source')}>
          {(p) => <input {...p} name="source" value={sourcePath} onChange={(e) => setSourcePath(e.target.value)} />}
        </Field>
        <Field label={t('comp.env')} hint={t('comp.envHint')} error={errFor('env')}>
          {(p) => <textarea {...p} name="env" rows={3} value={env} onChange={(e) => setEnv(e.target.value)} placeholder="KEY=value" />}
        </Field>
      </div>
      {error && !error.field && <p className="error-banner" role="alert">{error.text}</p>}
      <div className="row">
        <button type="submit" className="primary" disabled={busy}>{busy ? t('common.creating') : t('common.create')}</button>
        <button type="button" onClick={onCancel}>{t('common.cancel')}</button>
      </div>
    </form>
  );
}
