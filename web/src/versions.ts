// Which version a component runs: the pinned `version`, or (when empty) the newest ready one.
import type { Component, Instance, Version } from './api';

// Newest first by number (the API lists by name, where "v10" sorts before "v2").
export function sortVersions(vs: Version[]): Version[] {
  return [...vs].sort((a, b) => b.number - a.number);
}

export function currentVersion(c: Component, vs: Version[]): Version | null {
  if (c.version) return vs.find((v) => v.name === c.version) ?? null;
  return sortVersions(vs).find((v) => v.status === 'ready') ?? null;
}

// Where a component answers through the gateway: the API's `addresses` (default domains,
// then the rules that send it traffic).
export function gatewayAddresses(c: Component): { url: string; label: string }[] {
  const a = c.addresses;
  if (!Array.isArray(a)) return [];
  return a
    .map((x) => {
      if (typeof x === 'string') return x;
      if (x && typeof x === 'object') {
        const o = x as Record<string, unknown>;
        const v = o.url ?? o.address ?? (o.host ? `${o.host}${o.port ? ':' + o.port : ''}` : '');
        return typeof v === 'string' ? v : '';
      }
      return '';
    })
    .filter(Boolean)
    .map((s) => ({ url: /^[a-z]+:\/\//.test(s) ? s : 'http://' + s, label: s }));
}

// Each ready instance's own loopback port: reachable on this machine without the gateway.
// A sandboxed instance listens in its team's network (`netns`): its address is shown, not linked
// — a browser on this machine cannot open it; the gateway and the team's own apps can.
export function instanceAddresses(instances: Instance[]): { url: string; label: string; instance: string; netns?: string }[] {
  return instances
    .filter((i) => typeof i.port === 'number' && i.port > 0)
    .map((i) => ({
      url: `http://127.0.0.1:${i.port}/`,
      label: `127.0.0.1:${i.port}`,
      instance: i.name,
      ...(typeof i.netns === 'string' && i.netns ? { netns: i.netns } : {}),
    }));
}

// The gateway's addresses when the API reports them, otherwise the instances' own.
export function addressesOf(c: Component, instances: Instance[]): { url: string; label: string; instance?: string }[] {
  const gw = gatewayAddresses(c);
  return gw.length > 0 ? gw : instanceAddresses(instances).filter((a) => !a.netns);
}
