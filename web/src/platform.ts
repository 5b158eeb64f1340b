// The platform settings form (docs/api.md "Health and session"): the draft the form edits and
// the PATCH body it sends. Kept apart from the page so it is unit-tested.
import type { PlatformSettings } from './api';

export interface SettingsDraft {
  team_creation: 'admins' | 'everyone';
  max_teams_per_user: string;
  instances: string;
  memory_mb: string;
  cpu_millis: string;
  disk_mb: string;
}

export function settingsDraftOf(s: PlatformSettings): SettingsDraft {
  return {
    team_creation: s.team_creation,
    max_teams_per_user: String(s.max_teams_per_user),
    instances: String(s.default_team_quota.instances),
    memory_mb: String(s.default_team_quota.memory_mb),
    cpu_millis: String(s.default_team_quota.cpu_millis),
    disk_mb: String(s.default_team_quota.disk_mb ?? 0),
  };
}

// The body for PATCH /settings, or the form field that is not a whole number (the server checks
// the ranges and names its own field).
export function settingsBody(d: SettingsDraft, revision?: number):
  | { body: Record<string, unknown> }
  | { field: keyof SettingsDraft } {
  const fields = ['max_teams_per_user', 'instances', 'memory_mb', 'cpu_millis', 'disk_mb'] as const;
  const n: Record<string, number> = {};
  for (const f of fields) {
    const v = d[f].trim();
    if (!/^\d{1,9}$/.test(v)) return { field: f };
    n[f] = Number(v);
  }
  const body: Record<string, unknown> = {
    team_creation: d.team_creation,
    max_teams_per_user: n.max_teams_per_user,
    default_team_quota: { instances: n.instances, memory_mb: n.memory_mb, cpu_millis: n.cpu_millis, disk_mb: n.disk_mb },
  };
  if (revision) body.revision = revision;
  return { body };
}
