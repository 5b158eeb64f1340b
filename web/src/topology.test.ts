import { describe, expect, it } from 'vitest';
import type { Component, Instance, Version } from './api';
import { rowOf } from './api';
import { layoutTopology, NODE_W } from './topology';
import { addressesOf, currentVersion, gatewayAddresses, instanceAddresses, sortVersions } from './versions';

const n = (id: string, external = false) => ({ id, label: id, external });

describe('topology layout', () => {
  it('puts each component left of what it depends on', () => {
    const l = layoutTopology([n('db'), n('api'), n('web'), n('worker')], [
      { from: 'web', to: 'api' }, { from: 'api', to: 'db' }, { from: 'worker', to: 'db' }, { from: 'web', to: 'db' },
    ]);
    const col = Object.fromEntries(l.nodes.map((x) => [x.id, x.column]));
    expect(col).toEqual({ web: 0, worker: 0, api: 1, db: 2 });
    expect(l.edges).toHaveLength(4);
    const e = l.edges.find((x) => x.from === 'web' && x.to === 'api')!;
    const web = l.nodes.find((x) => x.id === 'web')!;
    expect(e.x1).toBe(web.x + NODE_W);
  });

  it('ends on cycles and ignores edges to unknown nodes', () => {
    const l = layoutTopology([n('a'), n('b')], [{ from: 'a', to: 'b' }, { from: 'b', to: 'a' }, { from: 'a', to: 'zz' }, { from: 'a', to: 'a' }]);
    expect(l.nodes).toHaveLength(2);
    expect(l.edges).toHaveLength(2);
    expect(new Set(l.nodes.map((x) => x.column)).size).toBe(2);
  });

  it('sizes the drawing for an empty app and for a single node', () => {
    expect(layoutTopology([], []).nodes).toEqual([]);
    const one = layoutTopology([n('web')], []);
    expect(one.width).toBeGreaterThanOrEqual(NODE_W);
  });
});

describe('versions and addresses', () => {
  const v = (name: string, number: number, status = 'ready') => ({ name, number, status }) as Version;
  const c = (version = '', addresses?: unknown) => ({ version, addresses }) as Component;
  it('sorts newest first by number and finds the current one', () => {
    const vs = [v('v1', 1), v('v10', 10, 'failed'), v('v2', 2)];
    expect(sortVersions(vs).map((x) => x.name)).toEqual(['v10', 'v2', 'v1']);
    expect(currentVersion(c(), vs)?.name).toBe('v2');
    expect(currentVersion(c('v1'), vs)?.name).toBe('v1');
    expect(currentVersion(c(), [v('v1', 1, 'building')])).toBeNull();
  });
  it('prefers the gateway addresses, else instance ports', () => {
    const inst = [{ name: 'web-1', port: 4100 }, { name: 'web-2' }] as Instance[];
    expect(addressesOf(c(), inst)).toEqual([{ url: 'http://127.0.0.1:4100/', label: '127.0.0.1:4100', instance: 'web-1' }]);
    expect(addressesOf(c('', ['web.shop.local:8080', { url: 'https://x.example' }]), inst).map((a) => a.url))
      .toEqual(['http://web.shop.local:8080', 'https://x.example']);
    // The overview shows both, apart: the gateway's, and each instance's own.
    expect(gatewayAddresses(c('', ['http://web.shop.localhost'])).map((a) => a.url)).toEqual(['http://web.shop.localhost']);
    expect(gatewayAddresses(c())).toEqual([]);
    expect(instanceAddresses(inst).map((a) => a.url)).toEqual(['http://127.0.0.1:4100/']);
  });
  it('maps list errors to their row', () => {
    expect(rowOf('ports[1].port', 'ports')).toEqual({ index: 1, rest: 'port' });
    expect(rowOf('config_files[0]', 'config_files')).toEqual({ index: 0, rest: '' });
    expect(rowOf('env.X', 'ports')).toBeNull();
    expect(rowOf(null, 'ports')).toBeNull();
  });
});
