import { describe, expect, it } from 'vitest';
import type { Component, Instance, Version } from './api';
import { MASK, maskValue, rollsInstances, setPatch, sortedVars, unsetPatch } from './config_vars';
import { formatUptime, processType, psSummary, sortInstances, uptimeMs } from './processes';
import { releaseBy, releaseRows, releaseWhat } from './releases';

const comp = (over: Partial<Component> = {}): Component =>
  ({
    name: 'web', team: 'default', app: 'shop', kind: 'service', replicas: 2, desired_state: 'running', version: '', env: {}, ports: [],
    source: { type: 'dir', path: '/srv', url: '', ref: '', archive: '' }, resources: { memory_mb: 0, cpu_millis: 0 },
    revision: 1, created_at: '', updated_at: '', ...over,
  } as Component);
const ver = (number: number, status = 'ready', over: Partial<Version> = {}): Version =>
  ({ name: 'v' + number, number, status, built_at: '', size_bytes: 0, commit: '', message: '', revision: 1, created_at: '', updated_at: '', ...over } as Version);
const inst = (name: string, over: Partial<Instance> = {}): Instance =>
  ({ name, revision: 1, created_at: '', updated_at: '', ...over } as Instance);

describe('config vars', () => {
  it('sorts by name and hides every non-empty value the same way', () => {
    expect(sortedVars({ b: '2', A: '1', _x: '' }).map((v) => v.key)).toEqual(['A', '_x', 'b']);
    expect(maskValue('hunter2')).toBe(MASK);
    expect(maskValue('a much longer secret value')).toBe(MASK);
    expect(maskValue('')).toBe('');
  });
  it('sets one key per change, refusing names the API would refuse', () => {
    expect(setPatch(' DATABASE_URL ', 'postgres://x')).toEqual({ body: { env: { DATABASE_URL: 'postgres://x' } } });
    expect(setPatch('EMPTY', '')).toEqual({ body: { env: { EMPTY: '' } } });
    expect(setPatch('  ', 'x')).toEqual({ problem: 'config.emptyKey' });
    expect(setPatch('1ST', 'x')).toEqual({ problem: 'config.badKey' });
    expect(setPatch('A-B', 'x')).toEqual({ problem: 'config.badKey' });
    expect(setPatch('A=B', 'x')).toEqual({ problem: 'config.badKey' });
  });
  it('unsets with a merge-patch null', () => {
    expect(unsetPatch('FOO')).toEqual({ env: { FOO: null } });
  });
  it('knows when a change replaces running instances', () => {
    expect(rollsInstances(comp())).toBe(true);
    expect(rollsInstances(comp({ replicas: 0 }))).toBe(false);
    expect(rollsInstances(comp({ desired_state: 'stopped' }))).toBe(false);
    expect(rollsInstances(comp({ kind: 'job' }))).toBe(false);
  });
});

describe('releases', () => {
  it('says what each version was made from and by whom', () => {
    const git = ver(3, 'ready', { commit: 'a1b2c3d4e5f6', build_request: { source: { type: 'git', url: 'https://x/shop.git', ref: 'main' }, requested_by: 'alice' } });
    expect(releaseWhat(git)).toBe('git https://x/shop.git main @a1b2c3d');
    expect(releaseBy(git)).toBe('alice');
    expect(releaseWhat(ver(1, 'ready', { build_request: { source: { type: 'dir', path: '/srv/shop' } } }))).toBe('dir /srv/shop');
    expect(releaseWhat(ver(1, 'ready', { build_request: { source: { type: 'archive', archive: '/d/up/a.tgz' } } }))).toBe('archive /d/up/a.tgz');
    expect(releaseWhat(ver(2, 'ready', { build_request: { source: { type: 'git' }, trigger: { webhook: 'github', branch: 'main', commit: 'ffeeddccbb' } } }))).toBe('github push to main @ffeeddc');
    expect(releaseWhat(ver(4, 'ready', { start_command: 'python3 app.py' }))).toBe('start: python3 app.py');
    expect(releaseBy(ver(4))).toBe('');
  });
  it('orders newest first, marks the current one and offers deploy or roll back', () => {
    const versions = [ver(1), ver(10), ver(2, 'failed'), ver(3)];
    const rows = releaseRows(comp(), versions, [inst('web-1', { version: 'v10' }), inst('web-2', { version: 'v10' })]);
    expect(rows.map((r) => r.v.name)).toEqual(['v10', 'v3', 'v2', 'v1']);
    expect(rows.map((r) => r.action)).toEqual([null, 'rollback', null, 'rollback']);
    expect(rows[0]).toMatchObject({ current: true, running: 2, pinned: false });
    // Pinned to an older one: that one is current, newer ready ones are a deploy.
    const pinned = releaseRows(comp({ version: 'v3' }), versions, []);
    expect(pinned.map((r) => [r.v.name, r.current, r.pinned, r.action])).toEqual([
      ['v10', false, false, 'deploy'], ['v3', true, true, null], ['v2', false, false, null], ['v1', false, false, 'rollback'],
    ]);
  });
});

describe('processes', () => {
  it('measures uptime only while the process runs', () => {
    const now = Date.parse('2026-12-07T12:00:00Z');
    expect(uptimeMs(inst('web-1', { state: 'running', started_at: '2026-12-07T11:58:55Z' }), now)).toBe(65000);
    expect(uptimeMs(inst('web-1', { state: 'backoff', started_at: '2026-12-07T11:58:55Z' }), now)).toBeNull();
    expect(uptimeMs(inst('web-1', { state: 'running' }), now)).toBeNull();
    expect(uptimeMs(inst('web-1', { state: 'running', started_at: 'junk' }), now)).toBeNull();
  });
  it('formats uptime in whole units', () => {
    expect(formatUptime(0)).toBe('0 s');
    expect(formatUptime(12999)).toBe('12 s');
    expect(formatUptime(65000)).toBe('1 min 5 s');
    expect(formatUptime(2 * 3600000 + 5 * 60000)).toBe('2 h 5 min');
    expect(formatUptime(3 * 86400000 + 4 * 3600000)).toBe('3 d 4 h');
    expect(formatUptime(65000, { ms: '毫秒', s: '秒', min: '分', h: '小时', d: '天' })).toBe('1 分 5 秒');
  });
  it('sorts by process type, then instance index, and reads the type from the API when given', () => {
    const list = sortInstances([inst('web-10'), inst('web-2'), inst('worker-1', { process_type: 'worker' }), inst('web-1')]);
    expect(list.map((i) => i.name)).toEqual(['web-1', 'web-2', 'web-10', 'worker-1']);
    expect(processType(inst('x', { process: 'clock' }))).toBe('clock');
    expect(processType(inst('x'))).toBe('');
  });
  it('summarises wanted, running and ready', () => {
    const is = [inst('web-1', { state: 'running', ready: true }), inst('web-2', { state: 'backoff', ready: false })];
    expect(psSummary(comp(), is)).toEqual({ wanted: 2, running: 1, ready: 1, total: 2 });
    expect(psSummary(comp({ desired_state: 'stopped' }), [])).toMatchObject({ wanted: 0 });
  });
});
