// The gateway screens (docs/console.md "Gateway"): the team's HTTP and TCP rules (they live
// under apps; the team-wide lists show them all), one rule's form (new or edit, with canary
// weights), and the component page's "domains" card. Certificates are in Certificates.tsx.
import { useEffect, useMemo, useRef, useState, type FormEvent } from 'react';
import { api, can, errorField, paths, type App, type Component, type Role, type Version } from '../api';
import {
  HTTP_BALANCE, MAX_BACKENDS, MAX_MATCHES, TCP_BALANCE, covers, formFieldOf, gwPaths, httpDraftOf, httpRuleBody, httpRulesFor,
  newHttpDraft, newTcpDraft, ruleLabel, setShare, shares, splitEvenly, tcpDraftOf, tcpRuleBody, tcpStatusOf,
  type Certificate, type GatewayMatch, type HttpRule, type HttpRuleDraft, type TcpRule, type TcpRuleDraft,
} from '../gateway';
import { useT, type MessageKey } from '../i18n';
import { useLiveResource } from '../live';
import { Link, navigate, to, type GatewayView } from '../router';
import { Confirm, ErrorBanner, Field, Loading, errorText } from '../ui';
import { CertificatesPage } from './Certificates';

export function GatewayPage({ team, view, app, rule, role }: { team: string; view: GatewayView; app?: string; rule?: string; role?: Role }) {
  const writable = can.write(role);
  switch (view) {
    case 'rules':
      return <GatewayTabs team={team} view={view}><RulesList team={team} writable={writable} /></GatewayTabs>;
    case 'certificates':
      return <GatewayTabs team={team} view={view}><CertificatesPage team={team} writable={writable} /></GatewayTabs>;
    case 'httpNew':
    case 'httpEdit':
      return <HttpRuleForm key={view + (rule ?? '')} team={team} app={app} rule={rule} writable={writable} />;
    case 'tcpNew':
    case 'tcpEdit':
      return <TcpRuleForm key={view + (rule ?? '')} team={team} app={app} rule={rule} writable={writable} />;
  }
}

function GatewayTabs({ team, view, children }: { team: string; view: GatewayView; children: React.ReactNode }) {
  const { t } = useT();
  return (
    <section aria-labelledby="gw-title">
      <h1 id="gw-title">{t('gw.title')}</h1>
      <p className="muted">{t('gw.intro')}</p>
      <nav className="tabs" aria-label={t('gw.title')}>
        <Link href={to.gateway(team)} className={view === 'rules' ? 'tab active' : 'tab'} aria-current={view === 'rules' ? 'page' : undefined}>{t('gw.rules')}</Link>
        <Link href={to.certificates(team)} className={view === 'certificates' ? 'tab active' : 'tab'} aria-current={view === 'certificates' ? 'page' : undefined}>{t('gw.certificates')}</Link>
      </nav>
      {children}
    </section>
  );
}

// Every rule of the team, live.
export function useTeamRules(team: string) {
  return useLiveResource(
    async () => {
      const [http, tcp] = await Promise.all([api.list<HttpRule>(gwPaths.httpRules(team)), api.list<TcpRule>(gwPaths.tcpRules(team))]);
      return { http: http.items, tcp: tcp.items };
    },
    [team],
    (l) => l.kind === 'http_rule' || l.kind === 'tcp_rule',
  );
}

function balanceLabel(t: ReturnType<typeof useT>['t'], b: string) {
  return (HTTP_BALANCE as readonly string[]).includes(b) ? t(`gw.balance.${b}` as MessageKey) : b;
}

function RulesList({ team, writable }: { team: string; writable: boolean }) {
  const { t } = useT();
  const rules = useTeamRules(team);
  // The gateway's reports are not team changes (the team's watch does not carry them): while a
  // TCP listener is pending or failing, look again every few seconds.
  const unsettled = (rules.data?.tcp ?? []).some((r) => ['pending', 'failed'].includes(tcpStatusOf(r).state));
  const reload = useRef(rules.reload);
  reload.current = rules.reload;
  useEffect(() => {
    if (!unsettled) return;
    const id = setInterval(() => reload.current(), 3000);
    return () => clearInterval(id);
  }, [unsettled]);
  const [removing, setRemoving] = useState<{ kind: 'http' | 'tcp'; app: string; name: string; label: string; revision: number } | null>(null);
  const [removeError, setRemoveError] = useState<unknown>(null);
  const remove = async () => {
    if (!removing) return;
    try {
      await api.del(gwPaths.rule(team, removing.app, removing.kind, removing.name) + '?revision=' + removing.revision);
      setRemoving(null);
      setRemoveError(null);
      rules.reload();
    } catch (err) {
      setRemoveError(err);
    }
  };
  const d = rules.data;
  return (
    <>
      <ErrorBanner error={rules.error} />
      <div className="card">
        <div className="row between">
          <h2>{t('gw.httpRules')}</h2>
          {writable && <Link className="button primary" href={to.newRule(team, 'http')}>{t('gw.addHttp')}</Link>}
        </div>
        {!d && !rules.error && <Loading />}
        {d && d.http.length === 0 && <p className="muted">{t('gw.noHttp')}</p>}
        {d && d.http.length > 0 && (
          <table className="list" data-testid="http-rules">
            <thead>
              <tr>
                <th>{t('gw.domain')}</th><th>{t('gw.app')}</th><th>{t('gw.matches')}</th><th>{t('gw.backends')}</th>
                <th>{t('gw.tls')}</th><th>{t('gw.rateLimit')}</th>{writable && <th><span className="sr-only">{t('common.actions')}</span></th>}
              </tr>
            </thead>
            <tbody>
              {d.http.map((r) => {
                const s = shares(r.backends.map((b) => String(b.weight)));
                return (
                  <tr key={r.app + '/' + r.name}>
                    <td><Link className="mono" href={to.rule(team, 'http', r.app, r.name)}>{ruleLabel(r)}</Link><div className="muted small mono">{r.name}</div></td>
                    <td><Link href={to.app(team, r.app)}>{r.app}</Link></td>
                    <td className="mono small">
                      {r.headers.length + r.cookies.length === 0 ? <span className="muted">{t('gw.anyRequest')}</span> : (
                        <>
                          {r.headers.map((m) => <div key={'h' + m.name}>{t('gw.headerIs', { name: m.name, value: m.value })}</div>)}
                          {r.cookies.map((m) => <div key={'c' + m.name}>{t('gw.cookieIs', { name: m.name, value: m.value })}</div>)}
                        </>
                      )}
                    </td>
                    <td>
                      <ul className="backends">
                        {r.backends.map((b, i) => (
                          <li key={i}>
                            <Link className="mono" href={to.component(team, r.app, b.component, 'ports')}>{b.component}:{b.port}{b.version ? '@' + b.version : ''}</Link>{' '}
                            <span className="share" title={t('gw.weightIs', { weight: b.weight })}>{s[i]}%</span>
                          </li>
                        ))}
                      </ul>
                    </td>
                    <td>
                      {r.certificate ? <span className="mono">{r.certificate}</span> : <span className="muted">{t('gw.plainHttp')}</span>}
                      {r.redirect_https && <div className="small">{t('gw.redirects')}</div>}
                    </td>
                    <td>{r.rate_limit.requests_per_second > 0 ? t('gw.rateIs', { rps: r.rate_limit.requests_per_second, burst: r.rate_limit.burst || Math.ceil(r.rate_limit.requests_per_second) }) : <span className="muted">{t('gw.unlimited')}</span>}</td>
                    {writable && (
                      <td className="actions">
                        <button type="button" className="small danger" aria-label={t('gw.deleteLabel', { name: ruleLabel(r) })} onClick={() => setRemoving({ kind: 'http', app: r.app, name: r.name, label: ruleLabel(r), revision: r.revision })}>{t('common.delete')}</button>
                      </td>
                    )}
                  </tr>
                );
              })}
            </tbody>
          </table>
        )}
      </div>
      <div className="card">
        <div className="row between">
          <h2>{t('gw.tcpRules')}</h2>
          {writable && <Link className="button" href={to.newRule(team, 'tcp')}>{t('gw.addTcp')}</Link>}
        </div>
        {d && d.tcp.length === 0 && <p className="muted">{t('gw.noTcp')}</p>}
        {d && d.tcp.length > 0 && (
          <table className="list" data-testid="tcp-rules">
            <thead><tr><th>{t('gw.listenPort')}</th><th>{t('gw.app')}</th><th>{t('gw.target')}</th><th>{t('gw.balance')}</th><th>{t('gw.listener')}</th>{writable && <th><span className="sr-only">{t('common.actions')}</span></th>}</tr></thead>
            <tbody>
              {d.tcp.map((r) => {
                const st = tcpStatusOf(r);
                return (
                <tr key={r.app + '/' + r.name}>
                  <td><Link className="mono" href={to.rule(team, 'tcp', r.app, r.name)}>{r.listen_port}</Link><div className="muted small mono">{r.name}</div></td>
                  <td><Link href={to.app(team, r.app)}>{r.app}</Link></td>
                  <td><Link className="mono" href={to.component(team, r.app, r.component, 'ports')}>{r.component}:{r.port}</Link></td>
                  <td>{balanceLabel(t, r.balance)}</td>
                  <td data-testid={'tcp-status-' + r.name}>
                    <span className={'badge listener-' + st.state}>{t(('gw.listener.' + st.state) as MessageKey)}</span>
                    {st.state === 'failed' && <div className="small error-text" role="note">{st.detail}<br /><span className="muted">{t('gw.listener.retrying')}</span></div>}
                  </td>
                  {writable && (
                    <td className="actions">
                      <button type="button" className="small danger" aria-label={t('gw.deleteLabel', { name: String(r.listen_port) })} onClick={() => setRemoving({ kind: 'tcp', app: r.app, name: r.name, label: t('gw.tcpPort', { port: r.listen_port }), revision: r.revision })}>{t('common.delete')}</button>
                    </td>
                  )}
                </tr>
                );
              })}
            </tbody>
          </table>
        )}
      </div>
      <Confirm open={removing !== null} message={t('gw.deleteConfirm', { name: removing?.label ?? '' })} confirmLabel={t('common.delete')} onConfirm={remove} onCancel={() => { setRemoving(null); setRemoveError(null); }} error={removeError} />
    </>
  );
}

// ---- shared form data -------------------------------------------------------------------------

function useApps(team: string) {
  const [apps, setApps] = useState<string[] | null>(null);
  useEffect(() => {
    api.list<App>(paths.apps(team)).then((l) => setApps(l.items.map((a) => a.name)), () => setApps([]));
  }, [team]);
  return apps;
}

function useComponents(team: string, app: string) {
  const [comps, setComps] = useState<Component[]>([]);
  useEffect(() => {
    if (!app) return setComps([]);
    let cancelled = false;
    api.list<Component>(paths.components(team, app)).then((l) => !cancelled && setComps(l.items), () => !cancelled && setComps([]));
    return () => { cancelled = true; };
  }, [team, app]);
  return comps;
}

// Ready versions of the components a form names, loaded once per component.
function useVersions(team: string, app: string, names: string[]) {
  const [byName, setByName] = useState<Record<string, string[]>>({});
  const key = [...new Set(names.filter(Boolean))].sort().join(',');
  useEffect(() => {
    for (const n of key ? key.split(',') : []) {
      if (byName[n]) continue;
      api.list<Version>(paths.component(team, app, n) + '/versions').then(
        (l) => setByName((m) => ({ ...m, [n]: l.items.filter((v) => v.status === 'ready').sort((a, b) => b.number - a.number).map((v) => v.name) })),
        () => setByName((m) => ({ ...m, [n]: [] })),
      );
    }
    // eslint-disable-next-line react-hooks/exhaustive-deps
  }, [team, app, key]);
  return byName;
}

function prefill(): { app: string; component: string; port: string } {
  const q = new URLSearchParams(location.search);
  return { app: q.get('app') ?? '', component: q.get('component') ?? '', port: q.get('port') ?? '' };
}

// Where a rule form returns: the component's ports tab when it was opened from there (the
// "add a domain for this port" shortcut), else the gateway's rule list.
function useBack(team: string): string {
  const [back] = useState(() => {
    const p = prefill();
    return p.app && p.component ? to.component(team, p.app, p.component, 'ports') : to.gateway(team);
  });
  return back;
}

interface FormError {
  field: string | null; // the API's field name
  text: string;
}

// ---- HTTP rule form -----------------------------------------------------------------------------

// Draft keys whose API field has another name.
const DRAFT_LOC: Record<string, string> = {
  rps: 'rate_limit.requests_per_second', burst: 'rate_limit.burst', connect_ms: 'timeouts.connect_ms',
  header_ms: 'timeouts.header_ms', idle_ms: 'timeouts.idle_ms', total_ms: 'timeouts.total_ms',
};
const ADVANCED = ['balance', 'hash_cookie', 'max_body_bytes', 'timeouts.connect_ms', 'timeouts.header_ms', 'timeouts.idle_ms', 'timeouts.total_ms'];

function HttpRuleForm({ team, app: editApp, rule, writable }: { team: string; app?: string; rule?: string; writable: boolean }) {
  const { t } = useT();
  const editing = !!rule && !!editApp;
  const [draft, setDraftState] = useState<HttpRuleDraft | null>(() => {
    if (editing) return null;
    const p = prefill();
    return newHttpDraft(p.app, p.component, p.port);
  });
  const back = useBack(team);
  const [loaded, setLoaded] = useState<HttpRule | null>(null);
  const [loadError, setLoadError] = useState<unknown>(null);
  const [error, setError] = useState<FormError | null>(null);
  const [busy, setBusy] = useState(false);
  const [deleting, setDeleting] = useState(false);
  const [deleteError, setDeleteError] = useState<unknown>(null);
  const [advanced, setAdvanced] = useState(false);
  const apps = useApps(team);
  const certs = useLiveResource(() => api.list<Certificate>(gwPaths.certificates(team)), [team], (l) => l.kind === 'certificate');

  useEffect(() => {
    if (!editing) return;
    api.get<HttpRule>(gwPaths.rule(team, editApp!, 'http', rule!)).then((r) => { setLoaded(r); setDraftState(httpDraftOf(r)); }, setLoadError);
  }, [editing, team, editApp, rule]);
  // A new rule picks the first app when none was given.
  // Drafts change only by functional updates: an effect that runs after the user's own change
  // (a busy browser runs effects late) must not write back the draft it saw when it rendered.
  useEffect(() => {
    if (!editing && apps && apps.length > 0 && draft && !draft.app) setDraftState((d) => (d && !d.app ? { ...d, app: apps[0] } : d));
  }, [apps, editing, draft]);

  const app = draft?.app ?? '';
  const comps = useComponents(team, app);
  const versions = useVersions(team, app, draft?.backends.map((b) => b.component) ?? []);
  // A backend left without a component (a new rule) takes the app's first one with an HTTP port.
  useEffect(() => {
    if (!draft || comps.length === 0) return;
    const first = comps.find((c) => c.ports.some((p) => p.protocol === 'http'))?.name ?? comps[0].name;
    if (draft.backends.some((b) => !b.component)) setDraftState((d) => d && { ...d, backends: d.backends.map((b) => (b.component ? b : { ...b, component: first })) });
  }, [comps, draft]);

  if (loadError) return <ErrorBanner error={loadError} />;
  if (!draft) return <Loading />;

  // Editing the input an error names clears that error (the message was about the old value).
  const set = (f: Partial<HttpRuleDraft>) => {
    setDraftState((d) => d && { ...d, ...f });
    const l = formFieldOf(error?.field);
    if (l && Object.keys(f).some((k) => { const m = DRAFT_LOC[k] ?? k; return l === m || l.startsWith(m + '['); })) setError(null);
  };
  const setBackend = (i: number, f: Partial<HttpRuleDraft['backends'][number]>) => set({ backends: draft.backends.map((b, n) => (n === i ? { ...b, ...f } : b)) });
  const weights = draft.backends.map((b) => b.weight);
  const share = shares(weights);
  const loc = formFieldOf(error?.field);
  const errFor = (l: string) => (error && loc === l ? error.text : null);
  const rendered = new Set(['app', 'name', 'domain', 'path_prefix', 'backends', 'certificate', 'redirect_https', 'rate_limit.requests_per_second', 'rate_limit.burst', ...ADVANCED,
    ...draft.backends.map((_, i) => `backends[${i}]`), ...draft.headers.map((_, i) => `headers[${i}]`), ...draft.cookies.map((_, i) => `cookies[${i}]`)]);
  const shown = !!loc && rendered.has(loc);
  const httpPorts = (name: string) => comps.find((c) => c.name === name)?.ports.filter((p) => p.protocol === 'http') ?? [];
  const certList = certs.data?.items ?? [];

  const fail = (field: string | null, text: string) => {
    setError({ field, text });
    if (field && ADVANCED.includes(formFieldOf(field) ?? '')) setAdvanced(true);
  };
  const submit = async (e: FormEvent) => {
    e.preventDefault();
    setError(null);
    const r = httpRuleBody(draft);
    if ('problem' in r) return fail(r.problem.field, t(r.problem.key, r.problem.vars));
    setBusy(true);
    try {
      if (editing) await api.put(gwPaths.rule(team, app, 'http', rule!), { ...r.body, revision: loaded?.revision });
      else await api.post(gwPaths.appRules(team, app, 'http'), r.body);
      navigate(back);
    } catch (err) {
      fail(errorField(err), errorText(err, t));
    } finally {
      setBusy(false);
    }
  };
  const remove = async () => {
    try {
      await api.del(gwPaths.rule(team, app, 'http', rule!) + (loaded ? '?revision=' + loaded.revision : ''));
      navigate(to.gateway(team));
    } catch (err) {
      setDeleteError(err);
    }
  };
  const title = editing ? t('gw.editHttp', { name: ruleLabel(draft) }) : t('gw.newHttp');

  const matchRows = (list: 'headers' | 'cookies') => {
    const rows: GatewayMatch[] = draft[list];
    const setRow = (i: number, f: Partial<GatewayMatch>) => set({ [list]: rows.map((m, n) => (n === i ? { ...m, ...f } : m)) });
    const label = list === 'headers' ? t('gw.header') : t('gw.cookie');
    return (
      <fieldset className="matches">
        <legend>{list === 'headers' ? t('gw.headerMatches') : t('gw.cookieMatches')}</legend>
        {rows.map((m, i) => (
          <div key={i} className="match-row">
            <div className="row">
              <input aria-label={t('gw.matchName', { what: label, n: i + 1 })} className="mono" value={m.name} placeholder={list === 'headers' ? 'x-canary' : 'beta'} onChange={(e) => setRow(i, { name: e.target.value })} aria-invalid={errFor(`${list}[${i}]`) ? true : undefined} />
              <span aria-hidden="true">=</span>
              <input aria-label={t('gw.matchValue', { what: label, n: i + 1 })} className="mono" value={m.value} onChange={(e) => setRow(i, { value: e.target.value })} />
              {writable && <button type="button" className="small" onClick={() => set({ [list]: rows.filter((_, n) => n !== i) })} aria-label={t('gw.removeMatch', { what: label, n: i + 1 })}>{t('env.remove')}</button>}
            </div>
            {errFor(`${list}[${i}]`) && <small className="field-error" role="alert">{errFor(`${list}[${i}]`)}</small>}
          </div>
        ))}
        {writable && rows.length < MAX_MATCHES && <button type="button" className="small" onClick={() => set({ [list]: [...rows, { name: '', value: '' }] })}>{list === 'headers' ? t('gw.addHeader') : t('gw.addCookie')}</button>}
      </fieldset>
    );
  };

  return (
    <section aria-labelledby="rule-title">
      <nav className="crumbs" aria-label={t('nav.breadcrumb')}><Link href={to.gateway(team)}>{t('gw.title')}</Link> / <span>{title}</span></nav>
      <h1 id="rule-title">{title}</h1>
      <form className="card" onSubmit={submit} aria-label={title} data-testid="http-rule-form" noValidate>
        <fieldset disabled={!writable} className="plain">
          <div className="grid2">
            <Field label={t('gw.app')} error={errFor('app')}>
              {(p) => (
                <select {...p} value={app} disabled={editing || !writable} onChange={(e) => set({ app: e.target.value, backends: [{ component: '', port: '', version: '', weight: '100' }] })}>
                  {(apps ?? [app]).map((a) => <option key={a} value={a}>{a}</option>)}
                </select>
              )}
            </Field>
            <Field label={t('gw.ruleName')} hint={editing ? undefined : t('gw.ruleNameHint')} error={errFor('name')}>
              {(p) => <input {...p} className="mono" value={draft.name} readOnly={editing} onChange={(e) => set({ name: e.target.value })} />}
            </Field>
            <Field label={t('gw.domain')} hint={t('gw.domainHint')} error={errFor('domain')}>
              {(p) => <input {...p} name="domain" className="mono" value={draft.domain} placeholder="shop.example.com" onChange={(e) => set({ domain: e.target.value })} required autoFocus={!editing} />}
            </Field>
            <Field label={t('gw.pathPrefix')} hint={t('gw.pathPrefixHint')} error={errFor('path_prefix')}>
              {(p) => <input {...p} className="mono" value={draft.path_prefix} onChange={(e) => set({ path_prefix: e.target.value })} />}
            </Field>
          </div>

          <fieldset className="backends-edit" aria-describedby="backends-hint">
            <legend>{t('gw.backends')}</legend>
            <p id="backends-hint" className="muted small">{t('gw.backendsHint')}</p>
            <table className="list" data-testid="backends">
              <thead><tr><th>{t('gw.component')}</th><th>{t('gw.port')}</th><th>{t('gw.version')}</th><th>{t('gw.weight')}</th><th>{t('gw.share')}</th>{writable && <th><span className="sr-only">{t('common.actions')}</span></th>}</tr></thead>
              <tbody>
                {draft.backends.map((b, i) => {
                  const rowErr = errFor(`backends[${i}]`);
                  const n = i + 1;
                  return (
                    <tr key={i} className={rowErr ? 'has-error' : ''}>
                      <td>
                        <select aria-label={t('gw.componentN', { n })} value={b.component} onChange={(e) => setBackend(i, { component: e.target.value, port: '', version: '' })} aria-invalid={rowErr ? true : undefined}>
                          {!comps.some((c) => c.name === b.component) && <option value={b.component}>{b.component || t('gw.noComponents')}</option>}
                          {comps.map((c) => <option key={c.name} value={c.name}>{c.name}</option>)}
                        </select>
                        {rowErr && <small className="field-error" role="alert">{rowErr}</small>}
                      </td>
                      <td>
                        <select aria-label={t('gw.portN', { n })} value={b.port === '0' ? '' : b.port} onChange={(e) => setBackend(i, { port: e.target.value })}>
                          <option value="">{t('gw.firstHttpPort')}</option>
                          {b.port && b.port !== '0' && !httpPorts(b.component).some((p) => String(p.port) === b.port) && <option value={b.port}>{b.port}</option>}
                          {httpPorts(b.component).map((p) => <option key={p.port} value={String(p.port)}>{p.port}{p.outer ? '' : ' ' + t('gw.innerOnly')}</option>)}
                        </select>
                      </td>
                      <td>
                        <select aria-label={t('gw.versionN', { n })} value={b.version} onChange={(e) => setBackend(i, { version: e.target.value })}>
                          <option value="">{t('gw.anyVersion')}</option>
                          {b.version && !(versions[b.component] ?? []).includes(b.version) && <option value={b.version}>{b.version}</option>}
                          {(versions[b.component] ?? []).map((v) => <option key={v} value={v}>{v}</option>)}
                        </select>
                      </td>
                      <td><input aria-label={t('gw.weightN', { n })} className="narrow" inputMode="numeric" value={b.weight} onChange={(e) => setBackend(i, { weight: e.target.value })} /></td>
                      <td className="share-cell">
                        <input type="range" min={0} max={100} step={1} value={Math.round(share[i])} aria-label={t('gw.shareN', { n })} aria-valuetext={`${share[i]}%`} disabled={!writable || draft.backends.length < 2}
                          onChange={(e) => set({ backends: setShare(weights, i, Number(e.target.value)).map((w, k) => ({ ...draft.backends[k], weight: w })) })} />
                        <output className="share">{share[i]}%</output>
                      </td>
                      {writable && <td><button type="button" className="small" disabled={draft.backends.length < 2} onClick={() => set({ backends: draft.backends.filter((_, k) => k !== i) })} aria-label={t('gw.removeBackend', { n })}>{t('env.remove')}</button></td>}
                    </tr>
                  );
                })}
              </tbody>
            </table>
            {errFor('backends') && <small className="field-error" role="alert">{errFor('backends')}</small>}
            {writable && (
              <div className="row">
                <button type="button" className="small" disabled={draft.backends.length >= MAX_BACKENDS} onClick={() => set({ backends: [...draft.backends, { component: draft.backends[0]?.component ?? '', port: draft.backends[0]?.port ?? '', version: '', weight: '0' }] })}>{t('gw.addBackend')}</button>
                <button type="button" className="small" disabled={draft.backends.length < 2} onClick={() => set({ backends: splitEvenly(draft.backends.length).map((w, k) => ({ ...draft.backends[k], weight: w })) })}>{t('gw.splitEvenly')}</button>
              </div>
            )}
          </fieldset>

          <div className="grid2">
            {matchRows('headers')}
            {matchRows('cookies')}
          </div>

          <div className="grid3">
            <Field label={t('gw.certificate')} hint={t('gw.certificateHint')} error={errFor('certificate')}>
              {(p) => (
                <select {...p} value={draft.certificate} onChange={(e) => set({ certificate: e.target.value, redirect_https: e.target.value ? draft.redirect_https : false })}>
                  <option value="">{t('gw.noCertificate')}</option>
                  {draft.certificate && !certList.some((c) => c.name === draft.certificate) && <option value={draft.certificate}>{draft.certificate}</option>}
                  {certList.map((c) => (
                    <option key={c.name} value={c.name}>{c.name} ({c.domains.join(', ')}){draft.domain && !covers(c.domains, draft.domain) ? ' — ' + t('gw.notCovering') : ''}</option>
                  ))}
                </select>
              )}
            </Field>
            <Field label={t('gw.rps')} hint={t('gw.rpsHint')} error={errFor('rate_limit.requests_per_second')}>
              {(p) => <input {...p} inputMode="decimal" value={draft.rps} onChange={(e) => set({ rps: e.target.value })} />}
            </Field>
            <Field label={t('gw.burst')} hint={t('gw.burstHint')} error={errFor('rate_limit.burst')}>
              {(p) => <input {...p} inputMode="numeric" value={draft.burst} onChange={(e) => set({ burst: e.target.value })} />}
            </Field>
          </div>
          <div className={'field' + (errFor('redirect_https') ? ' has-error' : '')}>
            <label className="check">
              <input type="checkbox" checked={draft.redirect_https} disabled={!writable || !draft.certificate} onChange={(e) => set({ redirect_https: e.target.checked })} aria-describedby="redirect-hint" />
              {t('gw.redirectHttps')}
            </label>
            <small id="redirect-hint" className="hint">{t('gw.redirectHint')}</small>
            {errFor('redirect_https') && <small className="field-error" role="alert">{errFor('redirect_https')}</small>}
          </div>

          <details className="advanced" open={advanced} onToggle={(e) => setAdvanced((e.target as HTMLDetailsElement).open)}>
            <summary>{t('gw.advanced')}</summary>
            <div className="grid3">
              <Field label={t('gw.balance')} error={errFor('balance')}>
                {(p) => (
                  <select {...p} value={draft.balance} onChange={(e) => set({ balance: e.target.value })}>
                    {HTTP_BALANCE.map((b) => <option key={b} value={b}>{balanceLabel(t, b)}</option>)}
                  </select>
                )}
              </Field>
              {draft.balance === 'hash_cookie' && (
                <Field label={t('gw.hashCookie')} error={errFor('hash_cookie')}>
                  {(p) => <input {...p} className="mono" value={draft.hash_cookie} onChange={(e) => set({ hash_cookie: e.target.value })} />}
                </Field>
              )}
              <Field label={t('gw.maxBody')} hint={t('gw.zeroDefault')} error={errFor('max_body_bytes')}>
                {(p) => <input {...p} inputMode="numeric" value={draft.max_body_bytes} onChange={(e) => set({ max_body_bytes: e.target.value })} />}
              </Field>
              {(['connect_ms', 'header_ms', 'idle_ms', 'total_ms'] as const).map((k) => (
                <Field key={k} label={t(`gw.timeout.${k}` as MessageKey)} hint={k === 'total_ms' ? t('gw.zeroNone') : undefined} error={errFor('timeouts.' + k)}>
                  {(p) => <input {...p} inputMode="numeric" value={draft[k]} onChange={(e) => set({ [k]: e.target.value })} />}
                </Field>
              ))}
            </div>
          </details>
        </fieldset>
        {error && !shown && <p className="error-banner" role="alert">{error.text}</p>}
        <div className="row">
          {writable && <button type="submit" className="primary" disabled={busy}>{busy ? t('common.saving') : editing ? t('common.save') : t('common.create')}</button>}
          <Link className="button" href={back}>{writable ? t('common.cancel') : t('common.back')}</Link>
          <div className="spacer" />
          {writable && editing && <button type="button" className="danger" onClick={() => setDeleting(true)}>{t('gw.deleteRule')}</button>}
        </div>
      </form>
      <Confirm open={deleting} message={t('gw.deleteConfirm', { name: ruleLabel(draft) })} confirmLabel={t('common.delete')} onConfirm={remove} onCancel={() => { setDeleting(false); setDeleteError(null); }} error={deleteError} />
    </section>
  );
}

// ---- TCP rule form ------------------------------------------------------------------------------

function TcpRuleForm({ team, app: editApp, rule, writable }: { team: string; app?: string; rule?: string; writable: boolean }) {
  const { t } = useT();
  const editing = !!rule && !!editApp;
  const [draft, setDraftState] = useState<TcpRuleDraft | null>(() => {
    if (editing) return null;
    const p = prefill();
    return newTcpDraft(p.app, p.component, p.port);
  });
  const back = useBack(team);
  const [loaded, setLoaded] = useState<TcpRule | null>(null);
  const [loadError, setLoadError] = useState<unknown>(null);
  const [error, setError] = useState<FormError | null>(null);
  const [busy, setBusy] = useState(false);
  const [deleting, setDeleting] = useState(false);
  const [deleteError, setDeleteError] = useState<unknown>(null);
  const apps = useApps(team);
  useEffect(() => {
    if (!editing) return;
    api.get<TcpRule>(gwPaths.rule(team, editApp!, 'tcp', rule!)).then((r) => { setLoaded(r); setDraftState(tcpDraftOf(r)); }, setLoadError);
  }, [editing, team, editApp, rule]);
  useEffect(() => {
    if (!editing && apps && apps.length > 0 && draft && !draft.app) setDraftState((d) => (d && !d.app ? { ...d, app: apps[0] } : d));
  }, [apps, editing, draft]);
  const app = draft?.app ?? '';
  const comps = useComponents(team, app);
  useEffect(() => {
    if (draft && !draft.component && comps.length > 0) setDraftState((d) => (d && !d.component ? { ...d, component: comps[0].name } : d));
  }, [comps, draft]);

  if (loadError) return <ErrorBanner error={loadError} />;
  if (!draft) return <Loading />;
  const set = (f: Partial<TcpRuleDraft>) => {
    setDraftState((d) => d && { ...d, ...f });
    if (error?.field && error.field in f) setError(null);
  };
  const errFor = (f: string) => (error && error.field === f ? error.text : null);
  const shown = !!error?.field && ['app', 'name', 'listen_port', 'component', 'port', 'balance', 'connect_timeout_ms', 'idle_timeout_ms'].includes(error.field);
  const ports = comps.find((c) => c.name === draft.component)?.ports ?? [];

  const submit = async (e: FormEvent) => {
    e.preventDefault();
    setError(null);
    const r = tcpRuleBody(draft);
    if ('problem' in r) return setError({ field: r.problem.field, text: t(r.problem.key, r.problem.vars) });
    setBusy(true);
    try {
      if (editing) await api.put(gwPaths.rule(team, app, 'tcp', rule!), { ...r.body, revision: loaded?.revision });
      else await api.post(gwPaths.appRules(team, app, 'tcp'), r.body);
      navigate(back);
    } catch (err) {
      setError({ field: errorField(err), text: errorText(err, t) });
    } finally {
      setBusy(false);
    }
  };
  const remove = async () => {
    try {
      await api.del(gwPaths.rule(team, app, 'tcp', rule!) + (loaded ? '?revision=' + loaded.revision : ''));
      navigate(to.gateway(team));
    } catch (err) {
      setDeleteError(err);
    }
  };
  const title = editing ? t('gw.editTcp', { port: draft.listen_port }) : t('gw.newTcp');
  return (
    <section aria-labelledby="rule-title">
      <nav className="crumbs" aria-label={t('nav.breadcrumb')}><Link href={to.gateway(team)}>{t('gw.title')}</Link> / <span>{title}</span></nav>
      <h1 id="rule-title">{title}</h1>
      <form className="card" onSubmit={submit} aria-label={title} data-testid="tcp-rule-form" noValidate>
        <p className="muted">{t('gw.tcpHint')}</p>
        <fieldset disabled={!writable} className="plain">
          <div className="grid3">
            <Field label={t('gw.app')} error={errFor('app')}>
              {(p) => (
                <select {...p} value={app} disabled={editing || !writable} onChange={(e) => set({ app: e.target.value, component: '', port: '' })}>
                  {(apps ?? [app]).map((a) => <option key={a} value={a}>{a}</option>)}
                </select>
              )}
            </Field>
            <Field label={t('gw.ruleName')} hint={editing ? undefined : t('gw.tcpNameHint')} error={errFor('name')}>
              {(p) => <input {...p} className="mono" value={draft.name} readOnly={editing} onChange={(e) => set({ name: e.target.value })} />}
            </Field>
            <Field label={t('gw.listenPort')} hint={t('gw.listenPortHint')} error={errFor('listen_port')}>
              {(p) => <input {...p} inputMode="numeric" value={draft.listen_port} onChange={(e) => set({ listen_port: e.target.value })} autoFocus={!editing} />}
            </Field>
            <Field label={t('gw.component')} error={errFor('component')}>
              {(p) => (
                <select {...p} value={draft.component} onChange={(e) => set({ component: e.target.value, port: '' })}>
                  {!comps.some((c) => c.name === draft.component) && <option value={draft.component}>{draft.component || t('gw.noComponents')}</option>}
                  {comps.map((c) => <option key={c.name} value={c.name}>{c.name}</option>)}
                </select>
              )}
            </Field>
            <Field label={t('gw.port')} error={errFor('port')}>
              {(p) => (
                <select {...p} value={draft.port === '0' ? '' : draft.port} onChange={(e) => set({ port: e.target.value })}>
                  <option value="">{t('gw.firstPort')}</option>
                  {draft.port && draft.port !== '0' && !ports.some((x) => String(x.port) === draft.port) && <option value={draft.port}>{draft.port}</option>}
                  {ports.map((x) => <option key={x.port} value={String(x.port)}>{x.port}/{x.protocol}</option>)}
                </select>
              )}
            </Field>
            <Field label={t('gw.balance')} error={errFor('balance')}>
              {(p) => (
                <select {...p} value={draft.balance} onChange={(e) => set({ balance: e.target.value })}>
                  {TCP_BALANCE.map((b) => <option key={b} value={b}>{balanceLabel(t, b)}</option>)}
                </select>
              )}
            </Field>
            <Field label={t('gw.timeout.connect_ms')} error={errFor('connect_timeout_ms')}>
              {(p) => <input {...p} inputMode="numeric" value={draft.connect_timeout_ms} onChange={(e) => set({ connect_timeout_ms: e.target.value })} />}
            </Field>
            <Field label={t('gw.timeout.idle_ms')} error={errFor('idle_timeout_ms')}>
              {(p) => <input {...p} inputMode="numeric" value={draft.idle_timeout_ms} onChange={(e) => set({ idle_timeout_ms: e.target.value })} />}
            </Field>
          </div>
        </fieldset>
        {error && !shown && <p className="error-banner" role="alert">{error.text}</p>}
        <div className="row">
          {writable && <button type="submit" className="primary" disabled={busy}>{busy ? t('common.saving') : editing ? t('common.save') : t('common.create')}</button>}
          <Link className="button" href={back}>{writable ? t('common.cancel') : t('common.back')}</Link>
          <div className="spacer" />
          {writable && editing && <button type="button" className="danger" onClick={() => setDeleting(true)}>{t('gw.deleteRule')}</button>}
        </div>
      </form>
      <Confirm open={deleting} message={t('gw.deleteConfirm', { name: t('gw.tcpPort', { port: draft.listen_port }) })} confirmLabel={t('common.delete')} onConfirm={remove} onCancel={() => { setDeleting(false); setDeleteError(null); }} error={deleteError} />
    </section>
  );
}

// ---- the component page's card ------------------------------------------------------------------

// Where a component is reached: its `addresses` (clickable), the rules that point at it, and a
// shortcut per outer port to add a domain (HTTP) or a TCP listen port.
export function ComponentGateway({ team, app, c, writable }: { team: string; app: string; c: Component; writable: boolean }) {
  const { t } = useT();
  const rules = useTeamRules(team);
  const addresses = Array.isArray(c.addresses) ? (c.addresses as unknown[]).filter((x): x is string => typeof x === 'string') : [];
  const http = useMemo(() => (rules.data ? httpRulesFor(rules.data.http, app, c.name) : []), [rules.data, app, c.name]);
  const tcp = rules.data ? rules.data.tcp.filter((r) => r.app === app && r.component === c.name) : [];
  const outer = c.ports.filter((p) => p.outer);
  return (
    <div className="card" data-testid="component-gateway">
      <h2>{t('gw.domainsTitle')}</h2>
      <h3>{t('overview.addresses')}</h3>
      {addresses.length === 0 ? <p className="muted">{t('gw.noAddresses')}</p> : (
        <ul className="addresses" data-testid="component-addresses">
          {addresses.map((a) => <li key={a}><a href={a} target="_blank" rel="noreferrer" className="mono">{a}</a></li>)}
        </ul>
      )}
      <h3>{t('gw.rulesHere')}</h3>
      <ErrorBanner error={rules.error} />
      {rules.data && http.length + tcp.length === 0 && <p className="muted">{t('gw.noRulesHere')}</p>}
      {(http.length > 0 || tcp.length > 0) && (
        <ul className="rules-here" data-testid="component-rules">
          {http.map(({ rule, share }) => (
            <li key={'h' + rule.name}>
              <Link className="mono" href={to.rule(team, 'http', app, rule.name)}>{(rule.certificate ? 'https://' : 'http://') + ruleLabel(rule)}</Link>
              <span className="muted"> · {t('gw.shareHere', { share })}</span>
              {rule.headers.length + rule.cookies.length > 0 && <span className="muted"> · {t('gw.withMatches', { n: rule.headers.length + rule.cookies.length })}</span>}
            </li>
          ))}
          {tcp.map((r) => (
            <li key={'t' + r.name}>
              <Link className="mono" href={to.rule(team, 'tcp', app, r.name)}>{t('gw.tcpPort', { port: r.listen_port })}</Link>
              <span className="muted"> → {r.port}</span>
            </li>
          ))}
        </ul>
      )}
      {writable && outer.length > 0 && (
        <div className="row">
          {outer.map((p) => p.protocol === 'http'
            ? <Link key={p.port} className="button" href={to.newRule(team, 'http', { app, component: c.name, port: p.port })}>{t('gw.addDomainFor', { port: p.port })}</Link>
            : p.protocol === 'tcp'
              ? <Link key={p.port} className="button" href={to.newRule(team, 'tcp', { app, component: c.name, port: p.port })}>{t('gw.addTcpFor', { port: p.port })}</Link>
              : null)}
        </div>
      )}
      {outer.length === 0 && <p className="muted small">{t('gw.noOuterPorts')}</p>}
    </div>
  );
}
