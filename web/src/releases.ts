// Releases (Heroku's name for a component's versions): the version history with who made each,
// when and from what, which one runs, and which can be deployed or rolled back to — the pure
// logic behind the Releases tab (as `berth releases` in src/cli/heroku_commands.cc).
import type { Component, Instance, Version } from './api';
import { currentVersion, sortVersions } from './versions';

// What a version is made of, for people: "git https://…/shop.git main @a1b2c3d",
// "dir /srv/shop", "archive shop.tar.gz", "github push to main @a1b2c3d" (a webhook), or for a
// version made without a build (POST .../versions) its start command.
export function releaseWhat(v: Version): string {
  const req = v.build_request && typeof v.build_request === 'object' ? v.build_request : {};
  const src = req.source && typeof req.source === 'object' ? req.source : {};
  const trigger = req.trigger && typeof req.trigger === 'object' ? req.trigger : {};
  const commit = v.commit || '';
  let at = commit ? ' @' + commit.slice(0, 7) : '';
  if (trigger.webhook) {
    if (!at && trigger.commit) at = ' @' + trigger.commit.slice(0, 7);
    return `${trigger.webhook} push${trigger.branch ? ' to ' + trigger.branch : ''}${at}`;
  }
  switch (src.type) {
    case 'git':
      return `git ${src.url ?? ''}${src.ref ? ' ' + src.ref : ''}${at}`;
    case 'dir':
      return `dir ${src.path ?? ''}`;
    case 'archive':
      return `archive ${src.name || src.archive || src.path || ''}`.trim();
    case undefined:
    case '':
      return v.start_command ? `start: ${v.start_command}` : '';
    default:
      return String(src.type);
  }
}

// Who asked for it: the user who queued the build (`build_request.requested_by`), "" if unknown.
export function releaseBy(v: Version): string {
  const by = v.build_request?.requested_by;
  return typeof by === 'string' ? by : '';
}

export interface ReleaseRow {
  v: Version;
  running: number; // instances running it now
  current: boolean; // what the component runs (pinned, or the newest ready)
  pinned: boolean;
  action: 'deploy' | 'rollback' | null; // what a writer may do with it
}

// Newest first; only ready versions other than the current one can be deployed to, and those
// older than the current one are a roll back.
export function releaseRows(c: Component, versions: Version[], instances: Instance[]): ReleaseRow[] {
  const cur = currentVersion(c, versions);
  const running = new Map<string, number>();
  for (const i of instances) if (i.version) running.set(i.version, (running.get(i.version) ?? 0) + 1);
  return sortVersions(versions).map((v) => {
    const current = cur?.name === v.name;
    let action: ReleaseRow['action'] = null;
    if (v.status === 'ready' && !current) action = cur && v.number < cur.number ? 'rollback' : 'deploy';
    return { v, running: running.get(v.name) ?? 0, current, pinned: c.version === v.name, action };
  });
}

// The component's lifecycle operation (GET .../operation, docs/api.md "Operations").
export interface Operation {
  type: string;
  detail: string;
  by: string;
  status: 'in_progress' | 'succeeded' | 'failed' | 'cancelled' | string;
  message: string;
  started_at: string;
  finished_at: string;
}
export const OPERATION_STATUSES = ['in_progress', 'succeeded', 'failed', 'cancelled'] as const;
