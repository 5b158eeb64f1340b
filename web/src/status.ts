import type { Component, Instance } from './api';
import type { MessageKey } from './i18n';

export type ComponentStatus = 'running' | 'starting' | 'stopped' | 'noVersion' | 'degraded';

// A component's status from its desired state, its instances and whether it has a version.
export function componentStatus(c: Component, instances: Instance[], hasVersion: boolean): ComponentStatus {
  if (c.desired_state === 'stopped') return 'stopped';
  const ready = instances.filter((i) => i.ready === true).length;
  if (ready >= Math.max(c.replicas, 1)) return 'running';
  if (!hasVersion && instances.length === 0) return 'noVersion';
  if (instances.some((i) => i.state === 'crashloop' || i.state === 'failed' || i.state === 'backoff')) return 'degraded';
  return 'starting';
}

export const statusKey = (s: ComponentStatus): MessageKey => `status.${s}` as MessageKey;
