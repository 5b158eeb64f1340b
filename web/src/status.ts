import type { Component, Instance, Version } from './api';
import type { MessageKey } from './i18n';

export type ComponentStatus = 'running' | 'starting' | 'stopped' | 'noVersion' | 'buildFailed' | 'degraded';

// A component's status from its desired state, its instances, whether it has a ready version
// and the status of its newest build.
export function componentStatus(c: Component, instances: Instance[], hasVersion: boolean, newestBuild?: string): ComponentStatus {
  if (c.desired_state === 'stopped') return 'stopped';
  // A job or cronjob keeps no instance up: between runs it is fine once it has a version.
  if ((c.kind === 'job' || c.kind === 'cronjob') && hasVersion) return 'running';
  const ready = instances.filter((i) => i.ready === true).length;
  if (ready >= Math.max(c.replicas, 1)) return 'running';
  if (!hasVersion && instances.length === 0) return newestBuild === 'failed' ? 'buildFailed' : 'noVersion';
  if (instances.some((i) => i.state === 'crashloop' || i.state === 'failed' || i.state === 'backoff')) return 'degraded';
  return 'starting';
}

export const statusKey = (s: ComponentStatus): MessageKey => `status.${s}` as MessageKey;

// componentStatus from a component's versions as the API lists them.
export function statusOf(c: Component, instances: Instance[], versions: Version[]): ComponentStatus {
  const newest = versions.reduce<Version | null>((a, v) => (!a || v.number > a.number ? v : a), null);
  return componentStatus(c, instances, versions.some((v) => v.status === 'ready'), newest?.status);
}
