// Platform administrators: who may create teams (and their quota), and which team each domain
// belongs to (docs/security.md "Identity, teams and the gateway").
import { useEffect, useState, type FormEvent } from 'react';
import { api, fieldOf, type DomainOwner, type List, type PlatformSettings, type Team } from '../api';
import { useT } from '../i18n';
import { settingsBody, settingsDraftOf, type SettingsDraft } from '../platform';
import { Link, to } from '../router';
import { Confirm, ErrorBanner, Field, Loading, errorText } from '../ui';

export function PlatformPage() {
  const { t } = useT();
  return (
    <section aria-labelledby="platform-title">
      <div className="row between">
        <h1 id="platform-title">{t('platform.title')}</h1>
        <Link className="button" href={to.newTeam()}>{t('nav.newTeam')}</Link>
      </div>
      <p className="muted">{t('platform.intro')}</p>
      <SettingsForm />
      <Domains />
    </section>
  );
}

function SettingsForm() {
  const { t } = useT();
  const [loaded, setLoaded] = useState<PlatformSettings | null>(null);
  const [draft, setDraft] = useState<SettingsDraft | null>(null);
  const [error, setError] = useState<{ field: string | null; text: string } | null>(null);
  const [busy, setBusy] = useState(false);
  const [saved, setSaved] = useState(false);
  useEffect(() => {
    api.get<PlatformSettings>('/settings').then((s) => { setLoaded(s); setDraft(settingsDraftOf(s)); }, (e) => setError({ field: null, text: errorText(e, t) }));
  }, [t]);
  if (!draft) return error ? <p className="error-banner" role="alert">{error.text}</p> : <Loading />;
  const set = (f: Partial<SettingsDraft>) => { setDraft({ ...draft, ...f }); setSaved(false); };
  const save = async (e: FormEvent) => {
    e.preventDefault();
    const r = settingsBody(draft, loaded?.revision);
    if ('field' in r) {
      setError({ field: r.field, text: t('scale.notNumber') });
      return;
    }
    setBusy(true);
    setError(null);
    try {
      const s = await api.patch<PlatformSettings>('/settings', r.body);
      setLoaded(s);
      setDraft(settingsDraftOf(s));
      setSaved(true);
    } catch (err) {
      const f = fieldOf(err, ['team_creation', 'max_teams_per_user', 'default_team_quota']);
      setError({ field: f === 'default_team_quota' ? 'instances' : f, text: errorText(err, t) });
    } finally {
      setBusy(false);
    }
  };
  const errFor = (f: string) => (error && error.field === f ? error.text : null);
  return (
    <form className="card" onSubmit={save} aria-label={t('platform.title')} data-testid="platform-settings">
      <div className="grid3">
        <Field label={t('platform.teamCreation')} error={errFor('team_creation')}>
          {(p) => (
            <select {...p} name="team_creation" value={draft.team_creation} onChange={(e) => set({ team_creation: e.target.value as SettingsDraft['team_creation'] })}>
              <option value="admins">{t('platform.teamCreation.admins')}</option>
              <option value="everyone">{t('platform.teamCreation.everyone')}</option>
            </select>
          )}
        </Field>
        <Field label={t('platform.maxTeams')} hint={t('platform.maxTeamsHint')} error={errFor('max_teams_per_user')}>
          {(p) => <input {...p} name="max_teams_per_user" inputMode="numeric" value={draft.max_teams_per_user} onChange={(e) => set({ max_teams_per_user: e.target.value })} />}
        </Field>
      </div>
      <h2>{t('platform.defaultQuota')}</h2>
      <p className="muted small">{t('platform.defaultQuotaHint')}</p>
      <div className="grid3">
        <Field label={t('platform.instances')} error={errFor('instances')}>
          {(p) => <input {...p} name="instances" inputMode="numeric" value={draft.instances} onChange={(e) => set({ instances: e.target.value })} />}
        </Field>
        <Field label={t('platform.memory')} error={errFor('memory_mb')}>
          {(p) => <input {...p} name="memory_mb" inputMode="numeric" value={draft.memory_mb} onChange={(e) => set({ memory_mb: e.target.value })} />}
        </Field>
        <Field label={t('platform.cpu')} error={errFor('cpu_millis')}>
          {(p) => <input {...p} name="cpu_millis" inputMode="numeric" value={draft.cpu_millis} onChange={(e) => set({ cpu_millis: e.target.value })} />}
        </Field>
        <Field label={t('platform.disk')} hint={t('platform.diskHint')} error={errFor('disk_mb')}>
          {(p) => <input {...p} name="disk_mb" inputMode="numeric" value={draft.disk_mb} onChange={(e) => set({ disk_mb: e.target.value })} />}
        </Field>
      </div>
      {error && !error.field && <p className="error-banner" role="alert">{error.text}</p>}
      <div className="row">
        <button type="submit" className="primary" disabled={busy}>{busy ? t('common.saving') : t('common.save')}</button>
        {saved && <span className="muted" role="status">{t('common.saved')}</span>}
      </div>
    </form>
  );
}

function Domains() {
  const { t } = useT();
  const [owners, setOwners] = useState<DomainOwner[] | null>(null);
  const [teams, setTeams] = useState<string[]>([]);
  const [loadError, setLoadError] = useState<unknown>(null);
  const [domain, setDomain] = useState('');
  const [team, setTeam] = useState('');
  const [formError, setFormError] = useState<{ field: string | null; text: string } | null>(null);
  const [busy, setBusy] = useState(false);
  const [releasing, setReleasing] = useState<string | null>(null);
  const [releaseError, setReleaseError] = useState<unknown>(null);
  const load = () => api.list<DomainOwner>('/gateway/domains').then((l: List<DomainOwner>) => setOwners(l.items), setLoadError);
  useEffect(() => {
    load();
    api.list<Team>('/teams').then((l) => { setTeams(l.items.map((x) => x.name)); setTeam((cur) => cur || l.items[0]?.name || ''); }, () => {});
  }, []);
  const assign = async (e: FormEvent) => {
    e.preventDefault();
    setBusy(true);
    setFormError(null);
    try {
      await api.put('/gateway/domains/' + encodeURIComponent(domain.trim()), { team });
      setDomain('');
      await load();
    } catch (err) {
      setFormError({ field: fieldOf(err, ['domain', 'team']), text: errorText(err, t) });
    } finally {
      setBusy(false);
    }
  };
  const release = async () => {
    if (!releasing) return;
    try {
      await api.del('/gateway/domains/' + encodeURIComponent(releasing));
      setReleasing(null);
      setReleaseError(null);
      await load();
    } catch (err) {
      setReleaseError(err);
    }
  };
  const errFor = (f: string) => (formError && formError.field === f ? formError.text : null);
  return (
    <div className="card" data-testid="domain-owners">
      <h2>{t('platform.domains')}</h2>
      <p className="muted small">{t('platform.domainsIntro')}</p>
      <form className="inline-form" onSubmit={assign} aria-label={t('platform.assign')}>
        <div className="grid3">
          <Field label={t('platform.domain')} error={errFor('domain')}>
            {(p) => <input {...p} name="domain" value={domain} placeholder="shop.example.com" onChange={(e) => setDomain(e.target.value)} required />}
          </Field>
          <Field label={t('platform.team')} error={errFor('team')}>
            {(p) => (
              <select {...p} name="team" value={team} onChange={(e) => setTeam(e.target.value)}>
                {teams.map((n) => <option key={n} value={n}>{n}</option>)}
              </select>
            )}
          </Field>
          <div className="field bottom">
            <button type="submit" className="primary" disabled={busy || !team}>{busy ? t('platform.assigning') : t('platform.assign')}</button>
          </div>
        </div>
        {formError && !formError.field && <p className="error-banner" role="alert">{formError.text}</p>}
      </form>
      <ErrorBanner error={loadError} />
      {!owners && !loadError && <Loading />}
      {owners && owners.length === 0 && <p className="muted">{t('platform.noDomains')}</p>}
      {owners && owners.length > 0 && (
        <table className="list">
          <thead><tr><th>{t('platform.domain')}</th><th>{t('platform.team')}</th><th>{t('platform.how')}</th><th><span className="sr-only">{t('common.actions')}</span></th></tr></thead>
          <tbody>
            {owners.map((o) => (
              <tr key={o.domain}>
                <td className="mono">{o.domain}</td>
                <td>{o.team}</td>
                <td className="muted">{o.assigned ? t('platform.assigned', { by: o.by }) : t('platform.claimed', { by: o.by })}</td>
                <td className="actions">
                  <button type="button" className="small danger" aria-label={t('platform.releaseLabel', { domain: o.domain })} onClick={() => { setReleaseError(null); setReleasing(o.domain); }}>{t('platform.release')}</button>
                </td>
              </tr>
            ))}
          </tbody>
        </table>
      )}
      <Confirm open={releasing !== null} message={t('platform.releaseConfirm', { domain: releasing ?? '' })} confirmLabel={t('platform.release')} onConfirm={release} onCancel={() => { setReleasing(null); setReleaseError(null); }} error={releaseError} />
    </div>
  );
}
