import { describe, expect, it } from 'vitest';
import type { Detection } from './api';
import { isProblem } from './component_form';
import { componentBody, detectBody, initialWizard, undecided, wizardReducer, type WizardAction, type WizardState } from './wizard';

const detection = (port: number, start = 'python3 app.py'): Detection => ({
  language: 'python', language_version: '', port, build_steps: [], processes: { web: start }, start_command: start,
  release: '', env: {}, tools: [], reasons: ['app.py found'],
});
const run = (actions: WizardAction[], s: WizardState = initialWizard()) => actions.reduce(wizardReducer, s);
const set = (field: keyof WizardState['input'], value: string): WizardAction => ({ type: 'set', field, value });

describe('wizard state', () => {
  it('goes to review with the detected port prefilled', () => {
    const s = run([set('path', '/srv/app'), { type: 'detected', detection: detection(8000) }]);
    expect(s.step).toBe('review');
    expect(s.input.ports).toBe('8000');
  });

  it('asks for the port when detection found none', () => {
    const s = run([set('path', '/srv/app'), { type: 'detected', detection: detection(0) }]);
    expect(s.input.ports).toBe('');
    expect(undecided(s.detection!)).toEqual({ port: true, start: false });
    expect(undecided(detection(3000, ''))).toEqual({ port: false, start: true });
  });

  it('keeps ports the user chose over a later detection', () => {
    const s = run([set('ports', '9000'), { type: 'detected', detection: detection(8000) }]);
    expect(s.input.ports).toBe('9000');
  });

  it('goes back to the source step when something detection read changes', () => {
    const reviewed = run([set('path', '/srv/app'), { type: 'detected', detection: detection(8000) }]);
    for (const f of ['path', 'sourceKind', 'url', 'ref', 'archive', 'buildCommand', 'startCommand'] as const) {
      const s = wizardReducer(reviewed, set(f, 'x'));
      expect([f, s.step, s.detection]).toEqual([f, 'source', null]);
    }
    // Answers to the review's questions keep the detection.
    for (const f of ['name', 'ports', 'env', 'replicas'] as const) {
      expect(wizardReducer(reviewed, set(f, '2')).step).toBe('review');
    }
  });

  it('creates only from review and returns there when creating fails', () => {
    expect(run([{ type: 'creating' }]).step).toBe('source');
    const s = run([{ type: 'detected', detection: detection(1) }, { type: 'creating' }]);
    expect(s.step).toBe('creating');
    expect(wizardReducer(s, { type: 'failed' }).step).toBe('review');
  });
});

describe('wizard requests', () => {
  const base = initialWizard().input;
  it('builds the detect body for each kind of source', () => {
    expect(detectBody({ ...base, path: ' /srv/app ' })).toEqual({ source: { type: 'dir', path: '/srv/app' }, build: {} });
    expect(detectBody({ ...base, sourceKind: 'git', url: 'https://x/y.git', ref: 'v1' })).toEqual({ source: { type: 'git', url: 'https://x/y.git', ref: 'v1' }, build: {} });
    expect(detectBody({ ...base, sourceKind: 'archive', archive: '/tmp/a.tgz', startCommand: 'node s.js' })).toEqual({ source: { type: 'archive', archive: '/tmp/a.tgz' }, build: { start_command: 'node s.js' } });
    const bad = detectBody({ ...base, path: 'relative' });
    expect(isProblem(bad) && bad.field).toBe('source');
    const noUrl = detectBody({ ...base, sourceKind: 'git' });
    expect(isProblem(noUrl) && noUrl.key).toBe('wizard.needUrl');
  });

  it('builds the component body and names the field at fault', () => {
    const ok = { ...base, name: 'web', path: '/srv/app', ports: '8000', env: 'A=1', replicas: '2', buildCommand: 'make' };
    expect(componentBody(ok)).toEqual({
      name: 'web', source: { type: 'dir', path: '/srv/app' }, build: { command: 'make' },
      ports: [{ port: 8000, protocol: 'http', inner: true, outer: true, name: '' }], env: { A: '1' }, replicas: 2,
    });
    const fieldOf = (x: unknown) => (isProblem(x) ? x.field : null);
    expect(fieldOf(componentBody({ ...ok, name: ' ' }))).toBe('name');
    expect(fieldOf(componentBody({ ...ok, ports: 'http' }))).toBe('ports');
    expect(fieldOf(componentBody({ ...ok, env: 'nope' }))).toBe('env');
    expect(fieldOf(componentBody({ ...ok, replicas: '1.5' }))).toBe('replicas');
    expect(fieldOf(componentBody({ ...ok, replicas: '101' }))).toBe('replicas');
  });
});
