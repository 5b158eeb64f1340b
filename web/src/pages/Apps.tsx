import { useState, type FormEvent } from 'react';
import { api, can, fieldOf, paths, type App, type Component, type Instance, type List, type Role, type Version } from '../api';
import { statusKey, statusOf, type ComponentStatus } from '../status';
import { useT } from '../i18n';
import { useLiveResource } from '../live';
import { Link, to } from '../router';
import { Confirm, ErrorBanner, Field, Loading, errorText, formatTime } from '../ui';

const FIELDS = ['name', 'display_name', 'description'] as const;

export function AppsPage({ team, role }: { team: string; role?: Role }) {
  const { t, lang } = useT();
  const apps = useLiveResource(() => api.list<App>(paths.apps(team)), [team], (l) => l.kind === 'app');
  // Per app: how many components are in each status (loaded per component; reloaded when a
  // component, instance or version changes).
  const summary = useLiveResource<Record<string, Partial<Record<ComponentStatus, number>>>>(
    async () => {
      const list = await api.list<App>(paths.apps(team));
      const entries = await Promise.all(
        list.items.map(async (a) => {
          const comps = await api.list<Component>(paths.components(team, a.name)).catch(() => ({ items: [] as Component[] }));
          const counts: Partial<Record<ComponentStatus, number>> = {};
          await Promise.all(
            comps.items.map(async (c) => {
              const base = paths.component(team, a.name, c.name);
              const [inst, vers] = await Promise.all([
                api.list<Instance>(base + '/instances').catch(() => ({ items: [] as Instance[] })),
                api.list<Version>(base + '/versions', 50).catch(() => ({ items: [] as Version[] })),
              ]);
              const st = statusOf(c, inst.items, vers.items);
              counts[st] = (counts[st] ?? 0) + 1;
            }),
          );
          return [a.name, counts] as const;
        }),
      );
      return Object.fromEntries(entries);
    },
    [team],
    (l) => ['app', 'component', 'instance', 'version'].includes(l.kind ?? ''),
  );
  const [name, setName] = useState('');
  const [displayName, setDisplayName] = useState('');
  const [description, setDescription] = useState('');
  const [formError, setFormError] = useState<{ field: string | null; text: string } | null>(null);
  const [busy, setBusy] = useState(false);
  const [deleting, setDeleting] = useState<string | null>(null);
  const [deleteError, setDeleteError] = useState<unknown>(null);

  const create = async (e: FormEvent) => {
    e.preventDefault();
    setBusy(true);
    setFormError(null);
    try {
      await api.post(paths.apps(team), { name: name.trim(), display_name: displayName, description });
      setName('');
      setDisplayName('');
      setDescription('');
      apps.reload();
    } catch (err) {
      setFormError({ field: fieldOf(err, FIELDS), text: errorText(err, t) });
    } finally {
      setBusy(false);
    }
  };

  const confirmDelete = async () => {
    if (!deleting) return;
    try {
      await api.del(paths.app(team, deleting));
      setDeleting(null);
      setDeleteError(null);
      apps.reload();
    } catch (err) {
      setDeleteError(err);
    }
  };

  const errFor = (f: string) => (formError && formError.field === f ? formError.text : null);
  const writable = can.write(role);

  return (
    <section aria-labelledby="apps-title">
      <h1 id="apps-title">{t('apps.title')}</h1>
      {writable && (
        <form className="card inline-form" onSubmit={create} aria-label={t('apps.new')}>
          <h2>{t('apps.new')}</h2>
          <div className="grid3">
            <Field label={t('common.name')} error={errFor('name')}>
              {(p) => <input {...p} name="name" value={name} onChange={(e) => setName(e.target.value)} required maxLength={63} />}
            </Field>
            <Field label={t('apps.displayName')} error={errFor('display_name')}>
              {(p) => <input {...p} name="display_name" value={displayName} onChange={(e) => setDisplayName(e.target.value)} />}
            </Field>
            <Field label={t('apps.description')} error={errFor('description')}>
              {(p) => <input {...p} name="description" value={description} onChange={(e) => setDescription(e.target.value)} />}
            </Field>
          </div>
          {formError && !formError.field && <p className="error-banner" role="alert">{formError.text}</p>}
          <button type="submit" className="primary" disabled={busy}>
            {busy ? t('common.creating') : t('common.create')}
          </button>
        </form>
      )}
      <ErrorBanner error={apps.error} />
      {!apps.data && !apps.error && <Loading />}
      {apps.data && apps.data.items.length === 0 && <p className="muted">{t('apps.empty')}</p>}
      {apps.data && apps.data.items.length > 0 && (
        <table className="list">
          <thead>
            <tr>
              <th>{t('common.name')}</th>
              <th>{t('apps.description')}</th>
              <th>{t('apps.status')}</th>
              <th>{t('common.updated')}</th>
              {writable && <th><span className="sr-only">{t('common.actions')}</span></th>}
            </tr>
          </thead>
          <tbody>
            {(apps.data as List<App>).items.map((a) => (
              <tr key={a.name}>
                <td>
                  <Link href={to.app(team, a.name)} className="strong">{a.name}</Link>
                  {a.display_name && <span className="muted"> · {a.display_name}</span>}
                </td>
                <td>{a.description}</td>
                <td data-testid={`summary-${a.name}`}><Summary counts={summary.data?.[a.name]} /></td>
                <td className="muted">{formatTime(a.updated_at, lang)}</td>
                {writable && (
                  <td className="actions">
                    <button type="button" className="danger small" onClick={() => setDeleting(a.name)} aria-label={`${t('apps.deleteApp')} ${a.name}`}>
                      {t('common.delete')}
                    </button>
                  </td>
                )}
              </tr>
            ))}
          </tbody>
        </table>
      )}
      <Confirm
        open={deleting !== null}
        message={t('apps.deleteConfirm', { name: deleting ?? '' })}
        confirmLabel={t('common.delete')}
        onConfirm={confirmDelete}
        onCancel={() => { setDeleting(null); setDeleteError(null); }}
        error={deleteError}
      />
    </section>
  );
}

const ORDER: ComponentStatus[] = ['running', 'starting', 'degraded', 'buildFailed', 'noVersion', 'stopped'];

function Summary({ counts }: { counts?: Partial<Record<ComponentStatus, number>> }) {
  const { t } = useT();
  if (!counts) return null;
  const parts = ORDER.filter((s) => counts[s]);
  if (parts.length === 0) return <span className="muted">{t('apps.noComponents')}</span>;
  return (
    <span className="summary">
      {parts.map((s) => (
        <span key={s} className={`badge status-${s}`} data-status={s}>{counts[s]} {t(statusKey(s))}</span>
      ))}
    </span>
  );
}
