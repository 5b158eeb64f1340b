// The gateway screens' client logic (docs/api.md "Gateway"): the rule and certificate types,
// the HTTP/TCP rule form drafts (inputs kept as text until submit, checked the way the API
// checks them), canary weight shares, which form field an API error names, and certificate
// expiry classes. Pure functions, no React: unit-tested in gateway.test.ts.
import type { Meta } from './api';
import type { MessageKey } from './i18n';

export interface GatewayMatch {
  name: string;
  value: string;
}
export interface RuleBackend {
  component: string;
  port: number;
  version: string;
  weight: number;
}
export interface HttpRule extends Meta {
  name: string;
  team: string;
  app: string;
  domain: string;
  path_prefix: string;
  headers: GatewayMatch[];
  cookies: GatewayMatch[];
  backends: RuleBackend[];
  balance: 'round_robin' | 'least_conn' | 'hash_cookie' | 'hash_ip';
  hash_cookie: string;
  certificate: string;
  redirect_https: boolean;
  rate_limit: { requests_per_second: number; burst: number };
  max_body_bytes: number;
  timeouts: { connect_ms: number; header_ms: number; idle_ms: number; total_ms: number };
}
export interface TcpRule extends Meta {
  name: string;
  team: string;
  app: string;
  listen_port: number;
  component: string;
  port: number;
  balance: 'round_robin' | 'least_conn' | 'hash_ip';
  connect_timeout_ms: number;
  idle_timeout_ms: number;
  // The gateway's listener for the rule, as it last reported it (docs/api.md "Gateway").
  status?: TcpRuleStatus;
}
export interface TcpRuleStatus {
  state: 'listening' | 'failed' | 'pending' | 'unknown';
  address?: string;
  error?: string;
  since?: string;
  message?: string;
}
// What the rules table shows for a TCP rule's listener: a short state and, for a failure, the
// bind error (the gateway retries it every second while every other rule keeps serving).
export function tcpStatusOf(r: TcpRule): { state: TcpRuleStatus['state']; detail: string } {
  const s = r.status;
  if (!s) return { state: 'unknown', detail: '' };
  if (s.state === 'failed') return { state: 'failed', detail: s.error ?? '' };
  if (s.state === 'listening') return { state: 'listening', detail: s.address ?? '' };
  return { state: s.state, detail: '' };
}
export interface Certificate extends Meta {
  name: string;
  team: string;
  domains: string[];
  subject: string;
  issuer: string;
  not_before: string;
  not_after: string;
  expired: boolean;
  fingerprint_sha256: string;
}

export const HTTP_BALANCE = ['round_robin', 'least_conn', 'hash_cookie', 'hash_ip'] as const;
export const TCP_BALANCE = ['round_robin', 'least_conn', 'hash_ip'] as const;
export const MAX_BACKENDS = 10;
export const MAX_MATCHES = 8;

// ---- HTTP rule form -------------------------------------------------------------------------

export interface BackendDraft {
  component: string;
  port: string; // "" or "0" = the component's first HTTP port
  version: string; // "" = every version it runs
  weight: string;
}
export interface HttpRuleDraft {
  app: string;
  name: string;
  domain: string;
  path_prefix: string;
  headers: GatewayMatch[];
  cookies: GatewayMatch[];
  backends: BackendDraft[];
  balance: string;
  hash_cookie: string;
  certificate: string;
  redirect_https: boolean;
  rps: string;
  burst: string;
  max_body_bytes: string;
  connect_ms: string;
  header_ms: string;
  idle_ms: string;
  total_ms: string;
}

export function newHttpDraft(app = '', component = '', port = ''): HttpRuleDraft {
  return {
    app,
    name: '',
    domain: '',
    path_prefix: '/',
    headers: [],
    cookies: [],
    backends: [{ component, port, version: '', weight: '100' }],
    balance: 'round_robin',
    hash_cookie: 'berth_affinity',
    certificate: '',
    redirect_https: false,
    rps: '0',
    burst: '0',
    max_body_bytes: '0',
    connect_ms: '5000',
    header_ms: '30000',
    idle_ms: '60000',
    total_ms: '0',
  };
}

export function httpDraftOf(r: HttpRule): HttpRuleDraft {
  return {
    app: r.app,
    name: r.name,
    domain: r.domain,
    path_prefix: r.path_prefix,
    headers: r.headers.map((m) => ({ ...m })),
    cookies: r.cookies.map((m) => ({ ...m })),
    backends: r.backends.map((b) => ({ component: b.component, port: String(b.port), version: b.version, weight: String(b.weight) })),
    balance: r.balance,
    hash_cookie: r.hash_cookie,
    certificate: r.certificate,
    redirect_https: r.redirect_https,
    rps: String(r.rate_limit.requests_per_second),
    burst: String(r.rate_limit.burst),
    max_body_bytes: String(r.max_body_bytes),
    connect_ms: String(r.timeouts.connect_ms),
    header_ms: String(r.timeouts.header_ms),
    idle_ms: String(r.timeouts.idle_ms),
    total_ms: String(r.timeouts.total_ms),
  };
}

// A problem the form finds before sending: `field` is the API's name for the input.
export interface FormProblem {
  field: string;
  key: MessageKey;
  vars?: Record<string, string | number>;
}

const intIn = (s: string, min: number, max: number): number | null => {
  const v = s.trim();
  if (!/^\d+$/.test(v)) return null;
  const n = Number(v);
  return n >= min && n <= max ? n : null;
};

// The request body of a draft, or the first problem with it (the API would refuse it too; the
// form says so next to the input without a round trip).
export function httpRuleBody(d: HttpRuleDraft): { body: Record<string, unknown> } | { problem: FormProblem } {
  const fail = (field: string, key: MessageKey, vars?: Record<string, string | number>) => ({ problem: { field, key, vars } });
  if (!d.app) return fail('app', 'gw.needApp');
  if (!d.domain.trim()) return fail('domain', 'gw.needDomain');
  if (d.path_prefix.trim() && !d.path_prefix.trim().startsWith('/')) return fail('path_prefix', 'gw.pathSlash');
  if (d.backends.length === 0) return fail('backends', 'gw.needBackend');
  const backends: RuleBackend[] = [];
  for (let i = 0; i < d.backends.length; i++) {
    const b = d.backends[i];
    if (!b.component) return fail(`backends[${i}].component`, 'gw.needComponent');
    const port = b.port.trim() === '' ? 0 : intIn(b.port, 0, 65535);
    if (port === null) return fail(`backends[${i}].port`, 'gw.badPort', { value: b.port });
    const weight = intIn(b.weight, 0, 1000);
    if (weight === null) return fail(`backends[${i}].weight`, 'gw.badWeight', { value: b.weight });
    backends.push({ component: b.component, port, version: b.version, weight });
  }
  if (!backends.some((b) => b.weight > 0)) return fail('backends', 'gw.allZero');
  for (const [list, rows] of [['headers', d.headers], ['cookies', d.cookies]] as const) {
    for (let i = 0; i < rows.length; i++) {
      if (!rows[i].name.trim()) return fail(`${list}[${i}].name`, 'gw.needMatchName');
    }
  }
  if (d.redirect_https && !d.certificate) return fail('redirect_https', 'gw.redirectNeedsCert');
  const rpsText = d.rps.trim() || '0';
  const rps = Number(rpsText);
  if (!/^\d+(\.\d+)?$/.test(rpsText) || rps > 1e6) return fail('rate_limit.requests_per_second', 'gw.badNumber', { value: d.rps });
  const burst = intIn(d.burst.trim() || '0', 0, 1000000);
  if (burst === null) return fail('rate_limit.burst', 'gw.badNumber', { value: d.burst });
  const maxBody = intIn(d.max_body_bytes.trim() || '0', 0, 2 ** 40);
  if (maxBody === null) return fail('max_body_bytes', 'gw.badNumber', { value: d.max_body_bytes });
  const timeouts: Record<string, number> = {};
  for (const [k, min, max] of [['connect_ms', 1, 600000], ['header_ms', 1, 600000], ['idle_ms', 1, 86400000], ['total_ms', 0, 86400000]] as const) {
    const v = intIn(d[k], min, max);
    if (v === null) return fail(`timeouts.${k}`, 'gw.badRange', { value: d[k], min, max });
    timeouts[k] = v;
  }
  const body: Record<string, unknown> = {
    domain: d.domain.trim().toLowerCase(),
    path_prefix: d.path_prefix.trim() || '/',
    headers: d.headers.map((m) => ({ name: m.name.trim(), value: m.value })),
    cookies: d.cookies.map((m) => ({ name: m.name.trim(), value: m.value })),
    backends,
    balance: d.balance,
    hash_cookie: d.hash_cookie.trim(),
    certificate: d.certificate,
    redirect_https: d.redirect_https,
    rate_limit: { requests_per_second: rps, burst },
    max_body_bytes: maxBody,
    timeouts,
  };
  if (d.name.trim()) body.name = d.name.trim();
  return { body };
}

// ---- canary weights -------------------------------------------------------------------------

// Each backend's share of the traffic in percent (weights are relative; unparsable = 0).
export function shares(weights: readonly string[]): number[] {
  const w = weights.map((s) => intIn(s, 0, 1000) ?? 0);
  const total = w.reduce((a, b) => a + b, 0);
  return w.map((x) => (total === 0 ? 0 : Math.round((x * 1000) / total) / 10));
}

// Weights (summing to 100) that give backend `index` `percent`% of the traffic and split the
// rest over the others in their current proportions (evenly when they all have 0).
export function setShare(weights: readonly string[], index: number, percent: number): string[] {
  const p = Math.max(0, Math.min(100, Math.round(percent)));
  if (weights.length === 1) return ['100'];
  const w = weights.map((s) => intIn(s, 0, 1000) ?? 0);
  const others = w.map((x, i) => (i === index ? 0 : x));
  let othersTotal = others.reduce((a, b) => a + b, 0);
  const basis = othersTotal === 0 ? others.map((_, i) => (i === index ? 0 : 1)) : others;
  othersTotal = basis.reduce((a, b) => a + b, 0);
  const rest = 100 - p;
  // Largest-remainder rounding so the weights add up to exactly 100.
  const exact = basis.map((x) => (x * rest) / othersTotal);
  const out = exact.map(Math.floor);
  let left = rest - out.reduce((a, b) => a + b, 0);
  const order = exact.map((x, i) => [x - Math.floor(x), i] as const).filter(([, i]) => i !== index).sort((a, b) => b[0] - a[0] || a[1] - b[1]);
  for (let k = 0; left > 0; k = (k + 1) % order.length, left--) out[order[k][1]]++;
  out[index] = p;
  return out.map(String);
}

export function splitEvenly(n: number): string[] {
  if (n <= 0) return [];
  const base = Math.floor(100 / n);
  return Array.from({ length: n }, (_, i) => String(base + (i < 100 - base * n ? 1 : 0)));
}

// ---- API errors → form fields ---------------------------------------------------------------

// The form location an API error's `field` belongs to: list rows keep their index and drop
// the sub-field ("backends[1].weight" → "backends[1]"), nested objects stay whole
// ("rate_limit.burst", "timeouts.idle_ms"), anything else is its top-level name.
export function formFieldOf(field: string | null | undefined): string | null {
  if (!field) return null;
  const row = /^(backends|headers|cookies)\[(\d+)\]/.exec(field);
  if (row) return `${row[1]}[${row[2]}]`;
  if (/^(rate_limit|timeouts)\./.test(field)) return field;
  return field.split(/[.[]/)[0];
}

// ---- TCP rule form --------------------------------------------------------------------------

export interface TcpRuleDraft {
  app: string;
  name: string;
  listen_port: string;
  component: string;
  port: string;
  balance: string;
  connect_timeout_ms: string;
  idle_timeout_ms: string;
}
export function newTcpDraft(app = '', component = '', port = ''): TcpRuleDraft {
  return { app, name: '', listen_port: '', component, port, balance: 'round_robin', connect_timeout_ms: '5000', idle_timeout_ms: '3600000' };
}
export function tcpDraftOf(r: TcpRule): TcpRuleDraft {
  return { app: r.app, name: r.name, listen_port: String(r.listen_port), component: r.component, port: String(r.port), balance: r.balance, connect_timeout_ms: String(r.connect_timeout_ms), idle_timeout_ms: String(r.idle_timeout_ms ?? 3600000) };
}
export function tcpRuleBody(d: TcpRuleDraft): { body: Record<string, unknown> } | { problem: FormProblem } {
  if (!d.app) return { problem: { field: 'app', key: 'gw.needApp' } };
  const listen = intIn(d.listen_port, 1, 65535);
  if (listen === null) return { problem: { field: 'listen_port', key: 'gw.badRange', vars: { value: d.listen_port, min: 1, max: 65535 } } };
  if (!d.component) return { problem: { field: 'component', key: 'gw.needComponent' } };
  const port = d.port.trim() === '' ? 0 : intIn(d.port, 0, 65535);
  if (port === null) return { problem: { field: 'port', key: 'gw.badPort', vars: { value: d.port } } };
  const timeout = intIn(d.connect_timeout_ms, 1, 600000);
  if (timeout === null) return { problem: { field: 'connect_timeout_ms', key: 'gw.badRange', vars: { value: d.connect_timeout_ms, min: 1, max: 600000 } } };
  const idle = intIn(d.idle_timeout_ms, 1000, 86400000);
  if (idle === null) return { problem: { field: 'idle_timeout_ms', key: 'gw.badRange', vars: { value: d.idle_timeout_ms, min: 1000, max: 86400000 } } };
  const body: Record<string, unknown> = { listen_port: listen, component: d.component, port, balance: d.balance, connect_timeout_ms: timeout, idle_timeout_ms: idle };
  if (d.name.trim()) body.name = d.name.trim();
  return { body };
}

// ---- rules of one component -----------------------------------------------------------------

// The HTTP rules that send `component` (of `app`) traffic, and its share in each.
export function httpRulesFor(rules: readonly HttpRule[], app: string, component: string): { rule: HttpRule; share: number }[] {
  const out: { rule: HttpRule; share: number }[] = [];
  for (const rule of rules) {
    if (rule.app !== app) continue;
    const s = shares(rule.backends.map((b) => String(b.weight)));
    const share = rule.backends.reduce((acc, b, i) => acc + (b.component === component ? s[i] : 0), 0);
    if (rule.backends.some((b) => b.component === component)) out.push({ rule, share: Math.round(share * 10) / 10 });
  }
  return out;
}

// "shop.example.com/api", without the root path.
export function ruleLabel(r: Pick<HttpRule, 'domain' | 'path_prefix'>): string {
  return r.domain + (r.path_prefix && r.path_prefix !== '/' ? r.path_prefix : '');
}

// ---- certificates ---------------------------------------------------------------------------

export type Expiry = 'expired' | 'expiring' | 'ok' | 'unknown';
export const EXPIRING_DAYS = 30;

// How soon a certificate expires: `expired` (the server says so, or not_after has passed),
// `expiring` within 30 days, else `ok`; `days` left, rounded down (negative once expired).
export function expiryOf(c: Pick<Certificate, 'not_after' | 'expired'>, now: Date): { state: Expiry; days: number } {
  const end = Date.parse(c.not_after);
  if (isNaN(end)) return { state: c.expired ? 'expired' : 'unknown', days: 0 };
  const days = Math.floor((end - now.getTime()) / 86400000);
  if (c.expired || end <= now.getTime()) return { state: 'expired', days };
  return { state: days < EXPIRING_DAYS ? 'expiring' : 'ok', days };
}

// Whether the certificate names cover a domain the way the API checks it: exact, or a
// "*.example.com" name covering exactly one more label.
export function covers(names: readonly string[], domain: string): boolean {
  const d = domain.trim().toLowerCase();
  return names.some((n) => {
    const x = n.toLowerCase();
    if (x === d) return true;
    if (x.startsWith('*.') && !d.startsWith('*.')) {
      const dot = d.indexOf('.');
      return dot > 0 && d.slice(dot + 1) === x.slice(2);
    }
    return false;
  });
}

// ---- API paths --------------------------------------------------------------------------------

const enc = encodeURIComponent;
export const gwPaths = {
  httpRules: (t: string) => `/teams/${enc(t)}/http-rules`,
  tcpRules: (t: string) => `/teams/${enc(t)}/tcp-rules`,
  appRules: (t: string, a: string, kind: 'http' | 'tcp') => `/teams/${enc(t)}/apps/${enc(a)}/${kind}-rules`,
  rule: (t: string, a: string, kind: 'http' | 'tcp', r: string) => `/teams/${enc(t)}/apps/${enc(a)}/${kind}-rules/${enc(r)}`,
  certificates: (t: string) => `/teams/${enc(t)}/certificates`,
  certificate: (t: string, c: string) => `/teams/${enc(t)}/certificates/${enc(c)}`,
};
