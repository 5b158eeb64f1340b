import { describe, expect, it } from 'vitest';
import { settingsBody, settingsDraftOf } from './platform';
import { tcpStatusOf, type TcpRule } from './gateway';
import { parseRoute, to } from './router';

describe('platform settings form', () => {
  const stored = { team_creation: 'admins' as const, max_teams_per_user: 3, default_team_quota: { instances: 10, memory_mb: 0, cpu_millis: 0, disk_mb: 2048 }, revision: 7 };
  it('round-trips the stored settings', () => {
    const d = settingsDraftOf(stored);
    expect(d).toEqual({ team_creation: 'admins', max_teams_per_user: '3', instances: '10', memory_mb: '0', cpu_millis: '0', disk_mb: '2048' });
    expect(settingsBody(d, 7)).toEqual({ body: { team_creation: 'admins', max_teams_per_user: 3, default_team_quota: { instances: 10, memory_mb: 0, cpu_millis: 0, disk_mb: 2048 }, revision: 7 } });
  });
  it('names the field that is not a whole number', () => {
    const d = { ...settingsDraftOf(stored), team_creation: 'everyone' as const, memory_mb: '1.5' };
    expect(settingsBody(d)).toEqual({ field: 'memory_mb' });
    expect(settingsBody({ ...d, memory_mb: '512', max_teams_per_user: '' })).toEqual({ field: 'max_teams_per_user' });
  });
});

describe('platform routes', () => {
  it('parses and builds the platform pages', () => {
    expect(parseRoute(to.platform())).toEqual({ page: 'platform' });
    expect(parseRoute(to.newTeam())).toEqual({ page: 'newTeam' });
    expect(parseRoute('/platform/x').page).toBe('notfound');
  });
});

describe('TCP rule listener', () => {
  const rule = (status?: TcpRule['status']) => ({ name: 'db', status } as TcpRule);
  it('shows the bind error of a failed listener', () => {
    expect(tcpStatusOf(rule({ state: 'failed', address: '127.0.0.1:5432', error: 'cannot listen on 127.0.0.1:5432: Address already in use' })))
      .toEqual({ state: 'failed', detail: 'cannot listen on 127.0.0.1:5432: Address already in use' });
    expect(tcpStatusOf(rule({ state: 'listening', address: '127.0.0.1:5432' }))).toEqual({ state: 'listening', detail: '127.0.0.1:5432' });
    expect(tcpStatusOf(rule({ state: 'pending' }))).toEqual({ state: 'pending', detail: '' });
    expect(tcpStatusOf(rule())).toEqual({ state: 'unknown', detail: '' });
  });
});
