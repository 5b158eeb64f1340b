import { describe, expect, it } from 'vitest';
import { TABS, parseRoute, to } from './router';

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
