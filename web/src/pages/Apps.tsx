import { useState, type FormEvent } from 'react';
import { api, can, fieldOf, paths, type App, type List, type Role } from '../api';
import { useT } from '../i18n';
import { useLiveResource } from '../live';
import { Link, to } from '../router';
import { Confirm, ErrorBanner, Field, Loading, errorText, formatTime } from '../ui';

const FIELDS = ['name', 'display_name', 'description'] as const;

export function AppsPage({ team, role }: { team: string; role?: Role }) {
  const { t, lang } = useT();
  const apps = useLiveResource(() => api.list<App>(paths.apps(team)), [team], (l) => l.kind === 'app');
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
