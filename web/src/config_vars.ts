// Config vars (Heroku's name for a component's `env`): the pure logic behind the Config vars
// tab, kept apart from React so it is unit-tested. Each set or unset is one JSON merge patch
// of `env` (docs/api.md), so the runtime replaces the instances once per change.

// The API's rule for env names (model.cc ValidateEnvName): [A-Za-z_][A-Za-z0-9_]*.
export const ENV_NAME = /^[A-Za-z_][A-Za-z0-9_]*$/;

// What a hidden value shows: its length is not given away beyond "empty or not".
export const MASK = '••••••••';
export function maskValue(value: string): string {
  return value === '' ? '' : MASK;
}

// The variables, sorted by name (the API's object order is not an order people look things up in).
export function sortedVars(env: Record<string, string> | undefined | null): { key: string; value: string }[] {
  return Object.entries(env ?? {})
    .map(([key, value]) => ({ key, value: String(value) }))
    .sort((a, b) => (a.key < b.key ? -1 : a.key > b.key ? 1 : 0));
}

export type ConfigProblem = 'config.emptyKey' | 'config.badKey';

// The body of "set KEY to VALUE" — or the reason the console refuses it before asking the API.
export function setPatch(key: string, value: string): { body: { env: Record<string, string> } } | { problem: ConfigProblem } {
  const k = key.trim();
  if (k === '') return { problem: 'config.emptyKey' };
  if (!ENV_NAME.test(k)) return { problem: 'config.badKey' };
  return { body: { env: { [k]: value } } };
}

// The body of "unset KEY": null removes a key in a merge patch.
export function unsetPatch(key: string): { env: Record<string, null> } {
  return { env: { [key]: null } };
}

// Whether a change replaces running instances (the API makes it an `update` operation), or
// only applies from the next start or run: what the console says after saving.
export function rollsInstances(c: { desired_state: string; replicas: number; kind: string }): boolean {
  return c.desired_state === 'running' && c.replicas > 0 && c.kind !== 'job' && c.kind !== 'cronjob';
}
