// A new team, for users the platform lets create teams (Whoami.can_create_teams); the server
// decides, and its error (team_creation_restricted, team_limit_reached) is shown as is.
import { useState, type FormEvent } from 'react';
import { api, fieldOf, type Team } from '../api';
import { useT } from '../i18n';
import { navigate, to } from '../router';
import { Field, errorText } from '../ui';

export function NewTeamPage({ onCreated }: { onCreated: () => void }) {
  const { t } = useT();
  const [name, setName] = useState('');
  const [displayName, setDisplayName] = useState('');
  const [error, setError] = useState<{ field: string | null; text: string } | null>(null);
  const [busy, setBusy] = useState(false);
  const create = async (e: FormEvent) => {
    e.preventDefault();
    setBusy(true);
    setError(null);
    try {
      const team = await api.post<Team>('/teams', { name: name.trim(), display_name: displayName.trim() });
      onCreated();
      navigate(to.apps(team.name));
    } catch (err) {
      setError({ field: fieldOf(err, ['name', 'display_name']), text: errorText(err, t) });
    } finally {
      setBusy(false);
    }
  };
  const errFor = (f: string) => (error && error.field === f ? error.text : null);
  return (
    <section aria-labelledby="new-team-title">
      <h1 id="new-team-title">{t('newTeam.title')}</h1>
      <p className="muted">{t('newTeam.intro')}</p>
      <form className="card" onSubmit={create} aria-label={t('newTeam.title')}>
        <div className="grid3">
          <Field label={t('newTeam.name')} error={errFor('name')}>
            {(p) => <input {...p} name="name" value={name} onChange={(e) => setName(e.target.value)} required />}
          </Field>
          <Field label={t('newTeam.displayName')} error={errFor('display_name')}>
            {(p) => <input {...p} name="display_name" value={displayName} onChange={(e) => setDisplayName(e.target.value)} />}
          </Field>
          <div className="field bottom">
            <button type="submit" className="primary" disabled={busy}>{busy ? t('common.creating') : t('common.create')}</button>
          </div>
        </div>
        {error && !error.field && <p className="error-banner" role="alert">{error.text}</p>}
      </form>
    </section>
  );
}
