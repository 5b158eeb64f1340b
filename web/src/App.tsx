import { useCallback, useEffect, useMemo, useState } from 'react';
import { api, can, session, type Team, type Whoami } from './api';
import { I18nContext, LANG_KEY, initialLang, translate, useT, type Lang } from './i18n';
import { LanguageSwitch } from './LanguageSwitch';
import { LiveProvider, useLive } from './live';
import { AppPage } from './pages/AppPage';
import { AppsPage } from './pages/Apps';
import { AuditPage } from './pages/Audit';
import { ComponentPage } from './pages/ComponentPage';
import { GatewayPage } from './pages/Gateway';
import { Login } from './pages/Login';
import { MembersPage } from './pages/Members';
import { NewTeamPage } from './pages/NewTeam';
import { PlatformPage } from './pages/Platform';
import { WizardPage } from './pages/Wizard';
import { Link, navigate, parseRoute, to, usePath, type Route } from './router';
import { ErrorBanner, Loading } from './ui';

export function App() {
  const [lang, setLangState] = useState<Lang>(initialLang);
  const setLang = useCallback((l: Lang) => {
    localStorage.setItem(LANG_KEY, l);
    setLangState(l);
  }, []);
  const i18n = useMemo(() => ({ lang, setLang, t: (k: Parameters<typeof translate>[1], v?: Record<string, string | number>) => translate(lang, k, v) }), [lang, setLang]);
  useEffect(() => {
    document.documentElement.lang = lang === 'zh' ? 'zh-CN' : 'en';
    document.title = translate(lang, 'app.name');
  }, [lang]);

  const path = usePath();
  const route = parseRoute(path);
  const [token, setToken] = useState(session.token());
  const onLogout = useCallback(() => setToken(null), []);
  useEffect(() => session.onUnauthorized(() => { setToken(null); navigate('/login', true); }), []);
  useEffect(() => {
    if (!token && route.page !== 'login') navigate('/login', true);
    if (token && route.page === 'login') navigate('/', true);
  }, [token, route.page]);

  return (
    <I18nContext.Provider value={i18n}>
      {!token || route.page === 'login' ? (
        <Login onLoggedIn={() => { setToken(session.token()); navigate('/', true); }} />
      ) : (
        <Shell route={route} onLogout={onLogout} />
      )}
    </I18nContext.Provider>
  );
}

function Shell({ route, onLogout }: { route: Route; onLogout: () => void }) {
  const { t } = useT();
  const [who, setWho] = useState<Whoami | null>(null);
  const [error, setError] = useState<unknown>(null);
  const [allTeams, setAllTeams] = useState<string[]>([]);
  const [loads, setLoads] = useState(0);
  useEffect(() => {
    api.whoami().then(setWho, setError);
    // The switcher lists the caller's teams (platform admins: every team).
    api.list<Team>('/teams').then((l) => setAllTeams(l.items.map((x) => x.name)), () => {});
  }, [loads]);

  const teams = useMemo(() => {
    const mine = who?.teams ?? [];
    const extra = allTeams.filter((n) => !mine.some((m) => m.team === n)).map((team) => ({ team, role: undefined }));
    return [...mine, ...extra].sort((a, b) => a.team.localeCompare(b.team));
  }, [who, allTeams]);
  const routeTeam = 'team' in route ? route.team : null;
  const team = routeTeam ?? teams[0]?.team ?? null;
  useEffect(() => {
    if (who && route.page === 'home' && teams.length > 0) navigate(to.apps(teams[0].team), true);
  }, [who, route.page, teams]);
  // Platform admins act as owners in every team.
  const role = who?.user.admin ? 'owner' : teams.find((x) => x.team === team)?.role;

  // Logging out first unmounts every page (ending the watch and log streams), then revokes the
  // token: a stream still open at revocation would reconnect and be refused with a 401.
  const [leaving, setLeaving] = useState(false);
  const logout = () => setLeaving(true);
  useEffect(() => {
    if (!leaving) return;
    (async () => {
      try { await api.logout(); } catch { /* the token may already be gone */ }
      session.clear();
      onLogout();
      navigate('/login', true);
    })();
  }, [leaving, onLogout]);

  if (error) return <main className="page"><ErrorBanner error={error} /></main>;
  if (!who || leaving) return <main className="page"><Loading /></main>;

  const section = route.page === 'members' ? 'members' : route.page === 'audit' ? 'audit' : route.page === 'gateway' ? 'gateway'
    : route.page === 'platform' || route.page === 'newTeam' ? 'platform' : 'apps';
  const content = (
    <>
      <a className="skip" href="#main">{t('nav.skip')}</a>
      <header className="topbar">
        <Link href="/" className="brand-link"><img src="/favicon.svg" alt="" width="24" height="24" /> {t('app.name')}</Link>
        {teams.length > 0 && team && (
          <label className="team-switch">
            <span>{t('nav.team')}</span>
            <select aria-label={t('nav.team')} value={team} onChange={(e) => navigate(to.apps(e.target.value))} data-testid="team">
              {teams.map((x) => <option key={x.team} value={x.team}>{x.team}</option>)}
              {!teams.some((x) => x.team === team) && <option value={team}>{team}</option>}
            </select>
          </label>
        )}
        {team && (
          <nav className="mainnav" aria-label={t('nav.team')}>
            <Link href={to.apps(team)} aria-current={section === 'apps' ? 'page' : undefined}>{t('nav.apps')}</Link>
            <Link href={to.gateway(team)} aria-current={section === 'gateway' ? 'page' : undefined}>{t('nav.gateway')}</Link>
            <Link href={to.members(team)} aria-current={section === 'members' ? 'page' : undefined}>{t('nav.members')}</Link>
            {can.readAudit(role) && <Link href={to.audit(team)} aria-current={section === 'audit' ? 'page' : undefined}>{t('nav.audit')}</Link>}
          </nav>
        )}
        <div className="spacer" />
        {/* Administrators find "New team" on the Platform page (the bar has little room). */}
        {who.can_create_teams && !who.user.admin && <Link href={to.newTeam()} aria-current={route.page === 'newTeam' ? 'page' : undefined}>{t('nav.newTeam')}</Link>}
        {who.user.admin && <Link href={to.platform()} aria-current={route.page === 'platform' ? 'page' : undefined} data-testid="nav-platform">{t('nav.platform')}</Link>}
        {team && <LiveDot />}
        <LanguageSwitch />
        <span className="muted user">{t('nav.signedInAs', { user: who.user.name })}</span>
        <button type="button" onClick={logout}>{t('nav.logout')}</button>
      </header>
      <main className="page" id="main" tabIndex={-1}>
        {route.page === 'platform' ? (who.user.admin ? <PlatformPage /> : <p className="muted">{t('common.notFound')}</p>)
          : route.page === 'newTeam' ? <NewTeamPage onCreated={() => setLoads((n) => n + 1)} />
          : !team ? <p className="muted">{t('teams.none')}</p> : (
          <Page route={route} team={team} role={role} me={who.user.name} />
        )}
      </main>
    </>
  );
  return team ? <LiveProvider key={team} team={team}>{content}</LiveProvider> : content;
}

function LiveDot() {
  const { t } = useT();
  const { connected } = useLive();
  return (
    <span className={connected ? 'live on' : 'live'} role="status" data-testid="live">
      {connected ? t('live.connected') : t('live.reconnecting')}
    </span>
  );
}

function Page({ route, team, role, me }: { route: Route; team: string; role: Whoami['teams'][number]['role'] | undefined; me: string }) {
  const { t } = useT();
  switch (route.page) {
    case 'home':
    case 'apps':
      return <AppsPage team={team} role={role} />;
    case 'app':
      return <AppPage key={route.app} team={team} app={route.app} role={role} />;
    case 'newComponent':
      return can.write(role) ? <WizardPage key={route.app} team={team} app={route.app} /> : <p className="muted">{t('wizard.readOnly')}</p>;
    case 'component':
      return <ComponentPage key={route.app + '/' + route.component} team={team} app={route.app} component={route.component} tab={route.tab} version={route.version} role={role} />;
    case 'gateway':
      return <GatewayPage key={route.view + (route.rule ?? '')} team={team} view={route.view} app={route.app} rule={route.rule} role={role} />;
    case 'members':
      return <MembersPage team={team} role={role} me={me} />;
    case 'audit':
      return <AuditPage team={team} />;
    default:
      return <p className="muted">{t('common.notFound')}</p>;
  }
}
