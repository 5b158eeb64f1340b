// Dependencies ("this component depends on that one"): list, add (a component of this or
// another app in the team), remove with confirmation. Instances read <NAME>_HOST/_PORT when
// they start, so the page says a restart picks a change up.
import { useEffect, useState, type FormEvent } from 'react';
import { api, fieldOf, paths, type App, type Component, type Dependency } from '../api';
import { useT } from '../i18n';
import { useLiveResource } from '../live';
import { Link, to } from '../router';
import { Confirm, ErrorBanner, Field, Loading, errorText } from '../ui';

export function Dependencies({ team, app, component, base, writable }: { team: string; app: string; component: string; base: string; writable: boolean }) {
  const { t } = useT();
  const deps = useLiveResource(() => api.list<Dependency>(base + '/dependencies'), [base], (l) => l.kind === 'dependency' && l.app === app);
  const [apps, setApps] = useState<string[]>([app]);
  const [targetApp, setTargetApp] = useState(app);
  const [targets, setTargets] = useState<string[]>([]);
  const [target, setTarget] = useState('');
  const [error, setError] = useState<{ field: string | null; text: string } | null>(null);
  const [busy, setBusy] = useState(false);
  const [removing, setRemoving] = useState<string | null>(null);
  const [removeError, setRemoveError] = useState<unknown>(null);

  useEffect(() => {
    if (!writable) return;
    api.list<App>(paths.apps(team)).then((l) => setApps(l.items.map((a) => a.name)), () => {});
  }, [team, writable]);
  useEffect(() => {
    if (!writable) return;
    let cancelled = false;
    api.list<Component>(paths.components(team, targetApp)).then(
      (l) => {
        if (cancelled) return;
        const names = l.items.map((c) => c.name).filter((n) => !(targetApp === app && n === component));
        setTargets(names);
        setTarget((cur) => (names.includes(cur) ? cur : names[0] ?? ''));
      },
      () => !cancelled && setTargets([]),
    );
    return () => { cancelled = true; };
  }, [team, app, component, targetApp, writable]);

  const add = async (e: FormEvent) => {
    e.preventDefault();
    setError(null);
    setBusy(true);
    try {
      const body: Record<string, string> = { target_component: target };
      if (targetApp !== app) body.target_app = targetApp;
      await api.post(base + '/dependencies', body);
      deps.reload();
    } catch (err) {
      setError({ field: fieldOf(err, ['target_component', 'target_app']), text: errorText(err, t) });
    } finally {
      setBusy(false);
    }
  };
  const remove = async () => {
    if (!removing) return;
    try {
      await api.del(base + '/dependencies/' + encodeURIComponent(removing));
      setRemoving(null);
      setRemoveError(null);
      deps.reload();
    } catch (err) {
      setRemoveError(err);
    }
  };
  const envName = (name: string) => name.toUpperCase().replace(/-/g, '_');

  return (
    <>
      <div className="card">
        <h2>{t('deps.title')}</h2>
        <p className="muted">{t('deps.hint')}</p>
        <ErrorBanner error={deps.error} />
        {!deps.data && !deps.error && <Loading />}
        {deps.data && deps.data.items.length === 0 && <p className="muted">{t('deps.empty')}</p>}
        {deps.data && deps.data.items.length > 0 && (
          <table className="list" data-testid="dependencies">
            <thead><tr><th>{t('common.name')}</th><th>{t('deps.target')}</th><th>{t('deps.env')}</th>{writable && <th><span className="sr-only">{t('common.actions')}</span></th>}</tr></thead>
            <tbody>
              {deps.data.items.map((d) => (
                <tr key={d.name}>
                  <td className="mono">{d.name}</td>
                  <td><Link href={to.component(team, d.target_app, d.target_component)}>{d.target_app === app ? d.target_component : `${d.target_app}/${d.target_component}`}</Link></td>
                  <td className="mono">{envName(d.name)}_HOST, {envName(d.name)}_PORT</td>
                  {writable && <td className="actions"><button type="button" className="small danger" onClick={() => setRemoving(d.name)} aria-label={t('deps.removeLabel', { name: d.name })}>{t('env.remove')}</button></td>}
                </tr>
              ))}
            </tbody>
          </table>
        )}
      </div>
      {writable && (
        <form className="card" onSubmit={add} aria-label={t('deps.add')} data-testid="add-dependency">
          <h2>{t('deps.add')}</h2>
          <div className="grid3">
            <Field label={t('deps.targetApp')} error={error?.field === 'target_app' ? error.text : null}>
              {(p) => (
                <select {...p} value={targetApp} onChange={(e) => setTargetApp(e.target.value)}>
                  {apps.map((a) => <option key={a} value={a}>{a}</option>)}
                </select>
              )}
            </Field>
            <Field label={t('deps.targetComponent')} error={error?.field === 'target_component' ? error.text : null}>
              {(p) => (
                <select {...p} value={target} onChange={(e) => setTarget(e.target.value)} required>
                  {targets.length === 0 && <option value="">{t('deps.noTargets')}</option>}
                  {targets.map((n) => <option key={n} value={n}>{n}</option>)}
                </select>
              )}
            </Field>
          </div>
          {error && !error.field && <p className="error-banner" role="alert">{error.text}</p>}
          <button type="submit" className="primary" disabled={busy || !target}>{busy ? t('members.adding') : t('deps.add')}</button>
        </form>
      )}
      <Confirm open={removing !== null} message={t('deps.removeConfirm', { name: removing ?? '' })} confirmLabel={t('env.remove')} onConfirm={remove} onCancel={() => { setRemoving(null); setRemoveError(null); }} error={removeError} />
    </>
  );
}
