// The console's only way to the server: the public REST API (docs/api.md), with the token
// from localStorage. A 401 anywhere clears the session and sends the user to the login page.

const TOKEN_KEY = 'berth.token';
const USER_KEY = 'berth.user';

export class ApiError extends Error {
  constructor(
    readonly status: number,
    readonly code: string,
    message: string,
    readonly field?: string,
  ) {
    super(message);
  }
}

export interface List<T> {
  items: T[];
  next: string;
  revision: number;
}

export interface Meta {
  revision: number;
  created_at: string;
  updated_at: string;
}
export type Role = 'owner' | 'admin' | 'developer' | 'viewer';
export interface Quota {
  instances: number;
  memory_mb: number;
  cpu_millis: number;
  disk_mb?: number; // the team's own disk (0: the server's --team-disk-mb)
}
export interface Team extends Meta {
  name: string;
  display_name: string;
  quota?: Quota;
  created_by?: string;
}
export interface Whoami {
  user: { name: string; display_name: string; admin: boolean };
  teams: { team: string; role: Role }[];
  // Whether the caller may create teams (platform admins, or everyone when the platform's
  // team_creation setting says so).
  can_create_teams?: boolean;
}
// GET/PATCH /settings (docs/api.md "Health and session").
export interface PlatformSettings {
  team_creation: 'admins' | 'everyone';
  max_teams_per_user: number;
  default_team_quota: Quota;
  revision: number;
}
// GET /gateway/domains: which team each domain belongs to.
export interface DomainOwner {
  domain: string;
  team: string;
  assigned: boolean;
  by: string;
  revision: number;
}
export interface App extends Meta {
  name: string;
  team: string;
  display_name: string;
  description: string;
}
export interface Port {
  port: number;
  protocol: 'http' | 'tcp' | 'udp' | 'grpc';
  inner: boolean;
  outer: boolean;
  name: string;
  /** Declared by the platform for a detected web process (docs/api.md "Automatic port"). */
  auto?: boolean;
}
export interface Source {
  type: 'none' | 'dir' | 'git' | 'archive' | 'package' | string;
  path: string;
  url: string;
  ref: string;
  archive: string;
}
export interface BuildSettings {
  command: string;
  start_command: string;
  language: string;
  language_version: string;
  subdir: string;
}
export interface Probe {
  type: 'tcp' | 'http' | 'command';
  port: number;
  path: string;
  command: string;
  interval_s: number;
  timeout_s: number;
  failure_threshold: number;
  expect_status: number;
}
export type ProbeKind = 'startup' | 'readiness' | 'liveness';
export interface ConfigFile {
  path: string;
  content: string;
}
export interface Component extends Meta {
  name: string;
  team: string;
  app: string;
  kind: 'service' | 'stateful' | 'job' | 'cronjob';
  schedule?: string;
  source: Source;
  build?: BuildSettings;
  ports: Port[];
  env: Record<string, string>;
  config_files?: ConfigFile[];
  health?: Record<ProbeKind, Probe | null>;
  replicas: number;
  // Instances of the version's other process types (Procfile worker, ...); an unset type runs 1.
  processes?: Record<string, number>;
  // Read-only: the process types of the version it runs and the instances each should have.
  process_types?: Record<string, number>;
  desired_state: 'running' | 'stopped';
  version?: string;
  resources: { memory_mb: number; cpu_millis: number };
  restart_generation?: number;
  // job and cronjob only (docs/api.md "Jobs and cronjobs").
  job?: { retries: number; timeout_s: number; history_limit: number; concurrency_policy: string; suspend: boolean } | null;
  // Written by the gateway (issue #5) once it routes the component; absent before.
  addresses?: unknown;
}
// What detection found in a source tree (POST /teams/{team}/detect).
export interface Detection {
  language: string;
  language_version: string;
  port: number;
  build_steps: string[];
  processes: Record<string, string>;
  start_command: string;
  release: string;
  env: Record<string, string>;
  tools: { program: string; package: string }[];
  reasons: string[];
}
export interface Version extends Meta {
  name: string;
  number: number;
  status: 'queued' | 'building' | 'ready' | 'failed' | 'cancelled' | string;
  built_at: string;
  size_bytes: number;
  commit: string;
  message: string;
  start_command?: string;
  detect?: Detection;
  // A built version's request: the source and settings as queued, and who queued it.
  build_request?: {
    source?: { type?: string; url?: string; ref?: string; path?: string; archive?: string; name?: string };
    trigger?: { webhook?: string; branch?: string; commit?: string };
    requested_by?: string;
  };
}
export interface Instance extends Meta {
  name: string;
  process?: string; // its process type when not the main (web) one: worker, run, release
  version?: string;
  state?: string;
  ready?: boolean;
  outdated?: boolean;
  port?: number;
  ports?: Record<string, number>;
  restarts?: number;
  started_at?: string;
  message?: string;
  last_exit?: { code: number; signal: number; oom: boolean; at: string; reason: string } | null;
  netns?: string; // sandboxed: the team network it listens in
  [k: string]: unknown;
}
export interface Dependency extends Meta {
  name: string;
  target_app: string;
  target_component: string;
}
export interface BerthEvent {
  id: string;
  type: 'normal' | 'warning';
  reason: string;
  message: string;
  component: string;
  app: string;
  count: number;
  first_at: string;
  last_at: string;
}
export interface Member extends Meta {
  user: string;
  role: Role;
}
export interface AuditEntry {
  id: string | number;
  time: string;
  actor: string;
  team: string;
  action: string;
  resource: string;
}

type Listener = () => void;
const unauthorizedListeners = new Set<Listener>();

export const session = {
  token(): string | null {
    return localStorage.getItem(TOKEN_KEY);
  },
  user(): string | null {
    return localStorage.getItem(USER_KEY);
  },
  set(token: string, user: string) {
    localStorage.setItem(TOKEN_KEY, token);
    localStorage.setItem(USER_KEY, user);
  },
  clear() {
    localStorage.removeItem(TOKEN_KEY);
    localStorage.removeItem(USER_KEY);
  },
  onUnauthorized(l: Listener): () => void {
    unauthorizedListeners.add(l);
    return () => unauthorizedListeners.delete(l);
  },
  expire() {
    session.clear();
    unauthorizedListeners.forEach((l) => l());
  },
};

// Turns a non-2xx response body into an ApiError (the body may not be JSON at all).
export function errorFromBody(status: number, text: string): ApiError {
  try {
    const j = JSON.parse(text);
    if (j && typeof j.code === 'string') {
      return new ApiError(status, j.code, String(j.message ?? ''), j.field || undefined);
    }
  } catch {
    /* not JSON */
  }
  return new ApiError(status, 'http_' + status, text.slice(0, 200) || `HTTP ${status}`);
}

// A Blob body (an uploaded archive) is sent as it is; anything else as JSON.
export async function request<T>(method: string, path: string, body?: unknown): Promise<T> {
  const headers: Record<string, string> = {};
  const token = session.token();
  if (token) headers.Authorization = `Bearer ${token}`;
  const raw = body instanceof Blob;
  if (body !== undefined) headers['Content-Type'] = raw ? 'application/octet-stream' : 'application/json';
  let res: Response;
  try {
    res = await fetch('/api/v1' + path, {
      method,
      headers,
      body: body === undefined ? undefined : raw ? body : JSON.stringify(body),
    });
  } catch (e) {
    throw new ApiError(0, 'network', e instanceof Error ? e.message : String(e));
  }
  const text = await res.text();
  if (!res.ok) {
    const err = errorFromBody(res.status, text);
    if (res.status === 401 && path !== '/login') session.expire();
    throw err;
  }
  return (text ? JSON.parse(text) : null) as T;
}

const enc = encodeURIComponent;
export const paths = {
  team: (t: string) => `/teams/${enc(t)}`,
  apps: (t: string) => `/teams/${enc(t)}/apps`,
  app: (t: string, a: string) => `/teams/${enc(t)}/apps/${enc(a)}`,
  components: (t: string, a: string) => `/teams/${enc(t)}/apps/${enc(a)}/components`,
  component: (t: string, a: string, c: string) =>
    `/teams/${enc(t)}/apps/${enc(a)}/components/${enc(c)}`,
  members: (t: string) => `/teams/${enc(t)}/members`,
  member: (t: string, u: string) => `/teams/${enc(t)}/members/${enc(u)}`,
  audit: (t: string) => `/teams/${enc(t)}/audit`,
  detect: (t: string) => `/teams/${enc(t)}/detect`,
};

export const api = {
  login: (user: string, password: string) =>
    request<{ token: string; user: { name: string } | string; expires_at: string }>(
      'POST',
      '/login',
      { user, password },
    ),
  logout: () => request<unknown>('POST', '/logout'),
  whoami: () => request<Whoami>('GET', '/whoami'),
  get: <T>(path: string) => request<T>('GET', path),
  list: <T>(path: string, limit = 500) =>
    request<List<T>>('GET', path + (path.includes('?') ? '&' : '?') + 'limit=' + limit),
  post: <T>(path: string, body: unknown) => request<T>('POST', path, body),
  patch: <T>(path: string, body: unknown) => request<T>('PATCH', path, body),
  put: <T>(path: string, body: unknown) => request<T>('PUT', path, body),
  // PUT a file as the raw body (the server streams it to disk).
  upload: <T>(path: string, file: Blob) => request<T>('PUT', path, file),
  del: (path: string) => request<unknown>('DELETE', path),
};

// Which form field an API error belongs to: the first segment of its `field`
// ("ports[0].port" → "ports", "env.KEY" → "env"), if the form has such a field.
export function fieldOf(err: unknown, formFields: readonly string[]): string | null {
  if (!(err instanceof ApiError) || !err.field) return null;
  const top = err.field.split(/[.[]/)[0];
  return formFields.includes(top) ? top : null;
}

// Roles that may do each kind of action (docs/api.md, "Members and roles").
export const can = {
  write: (r: Role | undefined) => r === 'developer' || r === 'admin' || r === 'owner',
  manageMembers: (r: Role | undefined) => r === 'admin' || r === 'owner',
  readAudit: (r: Role | undefined) => r === 'admin' || r === 'owner',
  makeOwners: (r: Role | undefined) => r === 'owner',
};

// The API's `field` of an error, when it names one ("ports[1].port", "health.readiness.path").
export function errorField(err: unknown): string | null {
  return err instanceof ApiError && err.field ? err.field : null;
}

// For errors about a list field ("ports[1].port"): the row index and the rest of the path.
export function rowOf(field: string | null, list: string): { index: number; rest: string } | null {
  if (!field) return null;
  const m = new RegExp('^' + list.replace(/[.*+?^${}()|[\]\\]/g, '\\$&') + '\\[(\\d+)\\](?:\\.(.*))?$').exec(field);
  return m ? { index: Number(m[1]), rest: m[2] ?? '' } : null;
}
