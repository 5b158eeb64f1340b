// A small History-API router: the server answers every non-API path with index.html, so
// deep links and reloads work.
import { useEffect, useState, type AnchorHTMLAttributes, type MouseEvent } from 'react';

const listeners = new Set<() => void>();

export function navigate(to: string, replace = false) {
  if (replace) history.replaceState(null, '', to);
  else history.pushState(null, '', to);
  listeners.forEach((l) => l());
}

export function usePath(): string {
  const [path, setPath] = useState(location.pathname);
  useEffect(() => {
    const update = () => setPath(location.pathname);
    listeners.add(update);
    window.addEventListener('popstate', update);
    return () => {
      listeners.delete(update);
      window.removeEventListener('popstate', update);
    };
  }, []);
  return path;
}

export type Route =
  | { page: 'login' }
  | { page: 'home' }
  | { page: 'apps'; team: string }
  | { page: 'app'; team: string; app: string }
  | { page: 'newComponent'; team: string; app: string }
  | { page: 'component'; team: string; app: string; component: string; tab: Tab; version?: string }
  | { page: 'members'; team: string }
  | { page: 'audit'; team: string }
  | { page: 'gateway'; team: string; view: GatewayView; app?: string; rule?: string }
  | { page: 'platform' }
  | { page: 'newTeam' }
  | { page: 'notfound' };

// The gateway screens: the team's rules, its certificates, and one rule's form (new or edit).
export type GatewayView = 'rules' | 'certificates' | 'httpNew' | 'httpEdit' | 'tcpNew' | 'tcpEdit';

export const TABS = ['overview', 'processes', 'runs', 'versions', 'releases', 'scale', 'logs', 'env', 'ports', 'health', 'dependencies', 'events', 'settings'] as const;
export type Tab = (typeof TABS)[number];

// The tabs a component of this kind has: runs only for jobs and cronjobs.
export function tabsFor(kind: string): Tab[] {
  const job = kind === 'job' || kind === 'cronjob';
  return TABS.filter((t) => t !== 'runs' || job);
}

export function parseRoute(path: string): Route {
  const s = path.split('/').filter(Boolean).map(decodeURIComponent);
  if (s.length === 0) return { page: 'home' };
  if (s[0] === 'login' && s.length === 1) return { page: 'login' };
  if (s[0] === 'platform' && s.length === 1) return { page: 'platform' };
  if (s[0] === 'new-team' && s.length === 1) return { page: 'newTeam' };
  if (s[0] !== 'teams' || s.length < 3) return { page: 'notfound' };
  const team = s[1];
  if (s[2] === 'members' && s.length === 3) return { page: 'members', team };
  if (s[2] === 'audit' && s.length === 3) return { page: 'audit', team };
  if (s[2] === 'gateway') {
    if (s.length === 3) return { page: 'gateway', team, view: 'rules' };
    if (s.length === 4 && s[3] === 'certificates') return { page: 'gateway', team, view: 'certificates' };
    const kind = s[3] === 'http' ? 'http' : s[3] === 'tcp' ? 'tcp' : null;
    if (kind && s.length === 5 && s[4] === 'new') return { page: 'gateway', team, view: kind === 'http' ? 'httpNew' : 'tcpNew' };
    if (kind && s.length === 6) return { page: 'gateway', team, view: kind === 'http' ? 'httpEdit' : 'tcpEdit', app: s[4], rule: s[5] };
    return { page: 'notfound' };
  }
  if (s[2] !== 'apps') return { page: 'notfound' };
  if (s.length === 3) return { page: 'apps', team };
  if (s.length === 4) return { page: 'app', team, app: s[3] };
  if (s[4] === 'new-component' && s.length === 5) return { page: 'newComponent', team, app: s[3] };
  if (s[4] === 'components' && s.length >= 6 && s.length <= 8) {
    const tab = (s[6] ?? 'overview') as Tab;
    if (!TABS.includes(tab)) return { page: 'notfound' };
    // .../versions/{version} opens that version's build log.
    if (s.length === 8 && tab !== 'versions') return { page: 'notfound' };
    return { page: 'component', team, app: s[3], component: s[5], tab, version: s[7] };
  }
  return { page: 'notfound' };
}

const e = encodeURIComponent;
export const to = {
  platform: () => '/platform',
  newTeam: () => '/new-team',
  apps: (t: string) => `/teams/${e(t)}/apps`,
  app: (t: string, a: string) => `/teams/${e(t)}/apps/${e(a)}`,
  newComponent: (t: string, a: string) => `/teams/${e(t)}/apps/${e(a)}/new-component`,
  component: (t: string, a: string, c: string, tab: Tab = 'overview', version?: string) =>
    `/teams/${e(t)}/apps/${e(a)}/components/${e(c)}${tab === 'overview' ? '' : '/' + tab}${version ? '/' + e(version) : ''}`,
  members: (t: string) => `/teams/${e(t)}/members`,
  audit: (t: string) => `/teams/${e(t)}/audit`,
  gateway: (t: string) => `/teams/${e(t)}/gateway`,
  certificates: (t: string) => `/teams/${e(t)}/gateway/certificates`,
  // A new rule, optionally prefilled with its app, component and port (the component page's
  // "add a domain for this port" shortcut).
  newRule: (t: string, kind: 'http' | 'tcp', prefill?: { app: string; component?: string; port?: number }) => {
    const q = prefill ? '?' + new URLSearchParams(Object.entries(prefill).filter(([, v]) => v !== undefined && v !== '').map(([k, v]) => [k, String(v)])).toString() : '';
    return `/teams/${e(t)}/gateway/${kind}/new${q}`;
  },
  rule: (t: string, kind: 'http' | 'tcp', app: string, rule: string) => `/teams/${e(t)}/gateway/${kind}/${e(app)}/${e(rule)}`,
};

export function Link({ href, ...rest }: AnchorHTMLAttributes<HTMLAnchorElement> & { href: string }) {
  const onClick = (ev: MouseEvent<HTMLAnchorElement>) => {
    rest.onClick?.(ev);
    if (ev.defaultPrevented || ev.button !== 0 || ev.metaKey || ev.ctrlKey || ev.shiftKey || ev.altKey) return;
    ev.preventDefault();
    navigate(href);
  };
  return <a {...rest} href={href} onClick={onClick} />;
}
