import { describe, expect, it } from 'vitest';
import { TABS, parseRoute, tabsFor, to } from './router';

describe('routes', () => {
  it('parses the wizard and every component tab, and builds the same paths', () => {
    expect(parseRoute('/teams/default/apps/shop/new-component')).toEqual({ page: 'newComponent', team: 'default', app: 'shop' });
    expect(to.newComponent('default', 'shop')).toBe('/teams/default/apps/shop/new-component');
    for (const tab of TABS) {
      const path = to.component('default', 'shop', 'web', tab);
      expect(parseRoute(path)).toEqual({ page: 'component', team: 'default', app: 'shop', component: 'web', tab, version: undefined });
    }
    expect(to.component('default', 'shop', 'web')).toBe('/teams/default/apps/shop/components/web');
  });
  it('opens a version build log only under versions', () => {
    const path = to.component('default', 'shop', 'web', 'versions', 'v3');
    expect(path).toBe('/teams/default/apps/shop/components/web/versions/v3');
    expect(parseRoute(path)).toMatchObject({ page: 'component', tab: 'versions', version: 'v3' });
    expect(parseRoute('/teams/default/apps/shop/components/web/logs/v3').page).toBe('notfound');
    expect(parseRoute('/teams/default/apps/shop/components/web/nope').page).toBe('notfound');
  });
});

describe('component tabs by kind', () => {
  it('shows runs only for jobs and cronjobs', () => {
    expect(tabsFor('service')).not.toContain('runs');
    expect(tabsFor('stateful')).not.toContain('runs');
    expect(tabsFor('job')).toContain('runs');
    expect(tabsFor('cronjob')).toEqual([...TABS]);
  });
});

describe('gateway routes', () => {
  it('parses the rules, certificates and rule forms, and builds the same paths', () => {
    expect(parseRoute(to.gateway('default'))).toEqual({ page: 'gateway', team: 'default', view: 'rules' });
    expect(parseRoute(to.certificates('default'))).toEqual({ page: 'gateway', team: 'default', view: 'certificates' });
    expect(parseRoute('/teams/default/gateway/http/new')).toEqual({ page: 'gateway', team: 'default', view: 'httpNew' });
    expect(parseRoute(to.rule('default', 'tcp', 'shop', 'tcp-15432'))).toEqual({ page: 'gateway', team: 'default', view: 'tcpEdit', app: 'shop', rule: 'tcp-15432' });
    expect(parseRoute('/teams/default/gateway/udp/new').page).toBe('notfound');
    expect(parseRoute('/teams/default/gateway/certificates/x').page).toBe('notfound');
  });
  it('prefills a new rule through the query', () => {
    expect(to.newRule('default', 'http', { app: 'shop', component: 'web', port: 8080 })).toBe('/teams/default/gateway/http/new?app=shop&component=web&port=8080');
    expect(to.newRule('default', 'tcp')).toBe('/teams/default/gateway/tcp/new');
  });
});
