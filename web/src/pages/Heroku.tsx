// The tabs Heroku and Render users look for first on a component: its config vars (set and
// unset one at a time, each one rollout; values hidden until revealed), its releases (the
// version history: what, who, when; roll back) and its processes (`berth ps`: instances with
// state, version, uptime, restarts). Logic in config_vars.ts, releases.ts, processes.ts.
import { useEffect, useState, type FormEvent } from 'react';
import { ApiError, api, errorField, type Component, type Instance, type Version } from '../api';
import { maskValue, rollsInstances, setPatch, sortedVars, unsetPatch } from '../config_vars';
import { useT, type MessageKey } from '../i18n';
import { useLiveResource } from '../live';
import { OPERATION_STATUSES, releaseBy, releaseRows, releaseWhat, type Operation } from '../releases';
import { formatUptime, processType, psSummary, sortInstances, uptimeMs } from '../processes';
import { Link, to } from '../router';
import { Confirm, ErrorBanner, formatTime } from '../ui';
import { VersionStatus } from './Versions';

// ---- the component's last operation -----------------------------------------------------------

// The rollout a change started (GET .../operation), kept live: a config change or a roll back
// shows here as "in progress" and then how it ended. Only asked for once the component has a
// ready version: before, no change begins an operation and the API would answer 404.
export function OperationStatus({ base, app, ran }: { base: string; app: string; ran: boolean }) {
  if (!ran) return null;
  return <LastOperation base={base} app={app} />;
}

function LastOperation({ base, app }: { base: string; app: string }) {
  const { t, lang } = useT();
  const op = useLiveResource<{ op: Operation | null }>(
    async () => {
      try {
        return { op: await api.get<Operation>(base + '/operation') };
      } catch (e) {
        if (e instanceof ApiError && e.status === 404) return { op: null }; // none yet
        throw e;
      }
    },
    [base],
    (l) => l.app === app && (l.kind === 'operation' || l.kind === 'component'),
  );
  if (op.error) return <ErrorBanner error={op.error} />;
  if (!op.data) return null;
  const o = op.data.op;
  if (!o) return <p className="muted small" data-testid="operation">{t('op.none')}</p>;
  const known = (OPERATION_STATUSES as readonly string[]).includes(o.status);
  return (
    <p className="small" data-testid="operation" data-op-status={o.status} aria-live="polite">
      <strong>{t('op.title')}:</strong> <span className="mono">{o.type}</span> — {o.detail}{' '}
      <span className={`badge op-${o.status}`}>{known ? t(`op.status.${o.status}` as MessageKey) : o.status}</span>{' '}
      <span className="muted">{o.by && t('op.by', { by: o.by })} · {formatTime(o.finished_at || o.started_at, lang)}</span>
      {o.message && <span className="muted"> · {o.message}</span>}
    </p>
  );
}

// ---- config vars ------------------------------------------------------------------------------

interface CompProps {
  c: Component;
  ran: boolean; // has a ready version (operations exist)
  base: string;
  app: string;
  writable: boolean;
  onSaved: (c: Component) => void;
}

export function ConfigVars({ c, ran, base, app, writable, onSaved }: CompProps) {
  const { t } = useT();
  const vars = sortedVars(c.env);
  const [revealed, setRevealed] = useState(false);
  const [editing, setEditing] = useState<{ key: string; value: string } | null>(null);
  const [newKey, setNewKey] = useState('');
  const [newValue, setNewValue] = useState('');
  const [busy, setBusy] = useState(false);
  const [error, setError] = useState<{ text: string; at: 'new' | 'edit' | 'top' } | null>(null);
  const [done, setDone] = useState<string | null>(null);
  const [unset, setUnset] = useState<string | null>(null);
  const [unsetError, setUnsetError] = useState<unknown>(null);

  // One change, one PATCH: the runtime replaces the instances once for it.
  const send = async (body: unknown, at: 'new' | 'edit' | 'top'): Promise<boolean> => {
    setBusy(true);
    setError(null);
    setDone(null);
    try {
      onSaved(await api.patch<Component>(base, body));
      return true;
    } catch (err) {
      const field = errorField(err);
      setError({ text: err instanceof Error ? err.message : String(err), at: field?.startsWith('env') ? at : 'top' });
      return false;
    } finally {
      setBusy(false);
    }
  };
  const add = async (e: FormEvent) => {
    e.preventDefault();
    const p = setPatch(newKey, newValue);
    if ('problem' in p) return setError({ text: t(p.problem), at: 'new' });
    const key = newKey.trim();
    if (key in (c.env ?? {})) return setError({ text: t('config.exists', { key }), at: 'new' });
    if (await send(p.body, 'new')) {
      setNewKey('');
      setNewValue('');
      setDone(t('config.saved', { key }));
    }
  };
  const saveEdit = async (e: FormEvent) => {
    e.preventDefault();
    if (!editing) return;
    const p = setPatch(editing.key, editing.value);
    if ('problem' in p) return setError({ text: t(p.problem), at: 'edit' });
    if (await send(p.body, 'edit')) {
      setDone(t('config.saved', { key: editing.key }));
      setEditing(null);
    }
  };
  const doUnset = async () => {
    if (!unset) return;
    try {
      onSaved(await api.patch<Component>(base, unsetPatch(unset)));
      setDone(t('config.removed', { key: unset }));
      setUnset(null);
      setUnsetError(null);
    } catch (err) {
      setUnsetError(err);
    }
  };

  return (
    <section className="card" aria-labelledby="config-title" data-testid="config-vars">
      <div className="row between">
        <h2 id="config-title">{t('config.title')}</h2>
        {vars.length > 0 && (
          <button type="button" className="small" onClick={() => setRevealed(!revealed)} aria-pressed={revealed}>
            {revealed ? t('config.hide') : t('config.reveal')}
          </button>
        )}
      </div>
      <p className="muted">{rollsInstances(c) ? t('config.hint', { name: c.name }) : t('config.hintStopped', { name: c.name })}</p>
      <OperationStatus base={base} app={app} ran={ran} />
      {vars.length === 0 ? <p className="muted">{t('config.empty')}</p> : (
        <table className="list env" data-testid="config-table">
          <thead><tr><th>{t('config.key')}</th><th>{t('config.value')}</th>{writable && <th><span className="sr-only">{t('common.actions')}</span></th>}</tr></thead>
          <tbody>
            {vars.map(({ key, value }) => (
              <tr key={key} data-key={key}>
                <td className="mono">{key}</td>
                {editing?.key === key ? (
                  <td colSpan={writable ? 2 : 1}>
                    <form className="row" onSubmit={saveEdit}>
                      <input aria-label={t('config.editLabel', { key })} className="mono" value={editing.value} autoFocus onChange={(e) => setEditing({ key, value: e.target.value })} aria-invalid={error?.at === 'edit' ? true : undefined} />
                      <button type="submit" className="primary small" disabled={busy}>{busy ? t('config.adding') : t('config.save')}</button>
                      <button type="button" className="small" onClick={() => { setEditing(null); setError(null); }}>{t('config.cancel')}</button>
                    </form>
                    {error?.at === 'edit' && <small className="field-error" role="alert">{error.text}</small>}
                  </td>
                ) : (
                  <>
                    <td className="mono" data-value>{revealed ? value : value === '' ? '' : <span aria-label={t('config.hidden')} className="muted">{maskValue(value)}</span>}</td>
                    {writable && (
                      <td className="actions">
                        <button type="button" className="small" aria-label={t('config.editLabel', { key })} onClick={() => { setEditing({ key, value }); setError(null); setDone(null); }}>{t('config.edit')}</button>
                        <button type="button" className="small danger" aria-label={t('config.unsetLabel', { key })} onClick={() => setUnset(key)}>{t('config.unset')}</button>
                      </td>
                    )}
                  </>
                )}
              </tr>
            ))}
          </tbody>
        </table>
      )}
      {writable ? (
        <form className="row config-add" onSubmit={add} aria-label={t('config.add')}>
          <input aria-label={t('config.newKey')} placeholder="KEY" className="mono" value={newKey} onChange={(e) => setNewKey(e.target.value)} aria-invalid={error?.at === 'new' ? true : undefined} />
          <input aria-label={t('config.newValue')} placeholder="value" className="mono" value={newValue} onChange={(e) => setNewValue(e.target.value)} />
          <button type="submit" className="primary" disabled={busy}>{busy && !editing ? t('config.adding') : t('config.add')}</button>
        </form>
      ) : <p className="muted small">{t('config.readOnly')}</p>}
      {error?.at === 'new' && <small className="field-error" role="alert" data-testid="config-error">{error.text}</small>}
      {error?.at === 'top' && <p className="error-banner" role="alert">{error.text}</p>}
      {done && <p className="ok small" role="status">{done}</p>}
      <Confirm
        open={unset !== null}
        message={unset ? t('config.unsetConfirm', { key: unset, name: c.name }) : ''}
        confirmLabel={t('config.unset')}
        onConfirm={doUnset}
        onCancel={() => { setUnset(null); setUnsetError(null); }}
        error={unsetError}
      />
    </section>
  );
}

// ---- releases --------------------------------------------------------------------------------

interface ReleaseProps {
  team: string;
  app: string;
  c: Component;
  base: string;
  versions: Version[];
  instances: Instance[];
  writable: boolean;
  onChanged: () => void;
}

export function Releases({ team, app, c, base, versions, instances, writable, onChanged }: ReleaseProps) {
  const { t, lang } = useT();
  const rows = releaseRows(c, versions, instances);
  const [target, setTarget] = useState<{ name: string; rollback: boolean } | null>(null);
  const [error, setError] = useState<unknown>(null);
  const deploy = async () => {
    if (!target) return;
    try {
      await api.patch<Component>(base, { version: target.name, revision: c.revision });
      setTarget(null);
      setError(null);
      onChanged();
    } catch (err) {
      setError(err);
    }
  };
  return (
    <section className="card" aria-labelledby="releases-title">
      <h2 id="releases-title">{t('releases.title')}</h2>
      <p className="muted">{t('releases.hint', { name: c.name })}</p>
      <OperationStatus base={base} app={app} ran={versions.some((v) => v.status === 'ready')} />
      {rows.length === 0 ? <p className="muted">{t('releases.empty')}</p> : (
        <table className="list" data-testid="releases">
          <thead>
            <tr><th>{t('releases.version')}</th><th>{t('releases.status')}</th><th>{t('releases.created')}</th><th>{t('releases.what')}</th><th>{t('releases.by')}</th><th>{t('releases.now')}</th><th><span className="sr-only">{t('common.actions')}</span></th></tr>
          </thead>
          <tbody>
            {rows.map((r) => (
              <tr key={r.v.name} data-version={r.v.name} data-current={r.current ? 'yes' : 'no'}>
                <td className="mono"><Link href={to.component(team, app, c.name, 'versions', r.v.name)}>{r.v.name}</Link></td>
                <td><VersionStatus status={r.v.status} /></td>
                <td className="muted">{formatTime(r.v.created_at, lang)}</td>
                <td className="mono small">{releaseWhat(r.v)}{r.v.message && r.v.status !== 'failed' && <div className="muted">{r.v.message}</div>}</td>
                <td>{releaseBy(r.v) || <span className="muted">{t('releases.unknownBy')}</span>}</td>
                <td>
                  {r.current && <span className="badge current">{t('releases.current')}</span>}
                  {r.pinned && <span className="badge">{t('releases.pinned')}</span>}
                  {r.running > 0 && <span className="muted"> {t('releases.runningN', { n: r.running })}</span>}
                </td>
                <td className="actions">
                  {writable && r.action && (
                    <button type="button" className="small" onClick={() => setTarget({ name: r.v.name, rollback: r.action === 'rollback' })}>
                      {r.action === 'rollback' ? t('versions.rollbackTo', { version: r.v.name }) : t('versions.deploy', { version: r.v.name })}
                    </button>
                  )}
                </td>
              </tr>
            ))}
          </tbody>
        </table>
      )}
      <Confirm
        open={target !== null}
        message={target ? (target.rollback ? t('versions.rollbackConfirm', { version: target.name, name: c.name }) : t('versions.deployConfirm', { version: target.name, name: c.name })) : ''}
        confirmLabel={target?.rollback ? t('versions.rollback') : t('versions.deployShort')}
        onConfirm={deploy}
        onCancel={() => { setTarget(null); setError(null); }}
        error={error}
      />
    </section>
  );
}

// ---- processes -------------------------------------------------------------------------------

export function Processes({ c, instances }: { c: Component; instances: Instance[] }) {
  const { t, lang } = useT();
  const [now, setNow] = useState(() => Date.now());
  useEffect(() => {
    const timer = setInterval(() => setNow(Date.now()), 1000);
    return () => clearInterval(timer);
  }, []);
  const units = { ms: t('unit.ms'), s: t('unit.s'), min: t('unit.min'), h: t('unit.h'), d: t('unit.d') };
  const list = sortInstances(instances);
  const typed = list.some((i) => processType(i) !== '');
  const sum = psSummary(c, instances);
  return (
    <section className="card" aria-labelledby="ps-title">
      <h2 id="ps-title">{t('ps.title')}</h2>
      <p className="muted" data-testid="ps-summary">{t('ps.summary', sum)}</p>
      {list.length === 0 ? <p className="muted">{t('ps.empty')}</p> : (
        <table className="list" data-testid="processes">
          <thead>
            <tr>{typed && <th>{t('ps.type')}</th>}<th>{t('ps.instance')}</th><th>{t('ps.state')}</th><th>{t('ps.version')}</th><th>{t('ps.uptime')}</th><th>{t('ps.restarts')}</th><th>{t('ps.started')}</th></tr>
          </thead>
          <tbody>
            {list.map((i) => {
              const up = uptimeMs(i, now);
              const state = i.state ?? '';
              const known = ['starting', 'running', 'backoff', 'stopping'].includes(state);
              return (
                <tr key={i.name} data-instance={i.name} data-state={state} data-ready={i.ready ? 'yes' : 'no'} className={state === 'backoff' ? 'warn' : ''}>
                  {typed && <td className="mono">{processType(i)}</td>}
                  <td className="mono">{i.name}</td>
                  <td>
                    {known ? t(`istate.${state}` as MessageKey) : state}
                    {i.ready && <span className="muted"> · {t('instance.ready').toLowerCase()}</span>}
                    {i.outdated && <span className="muted"> · {t('instance.outdated')}</span>}
                    {i.message && <div className="muted small">{i.message}</div>}
                  </td>
                  <td className="mono">{i.version ?? ''}</td>
                  <td className="mono" data-uptime>{up === null ? '–' : formatUptime(up, units)}</td>
                  <td>{i.restarts ?? 0}{i.last_exit?.reason && <div className="muted small">{t('ps.lastExit', { reason: i.last_exit.reason })}</div>}</td>
                  <td className="muted">{up === null ? '' : formatTime(i.started_at, lang)}</td>
                </tr>
              );
            })}
          </tbody>
        </table>
      )}
    </section>
  );
}
