// The "create component" wizard's state, apart from its screens so it can be tested:
//   source  — where the code is (a server directory, a git URL + ref, an archive on the server)
//             and optional build overrides; "Detect" asks POST /teams/{team}/detect
//   review  — what detection found and why; asks only for what it could not decide (the port
//             when detection found none, env, replicas)
//   creating → the component is created and its first build queued.
// Changing anything that detection looked at after detecting goes back to `source`: the shown
// result must always describe the inputs that will be built.
import type { Detection, Port } from './api';
import { isProblem, parseEnv, parsePorts, type FormProblem } from './component_form';

export type SourceKind = 'dir' | 'git' | 'archive';
export type Step = 'source' | 'review' | 'creating';

export interface WizardInput {
  name: string;
  sourceKind: SourceKind;
  path: string;
  url: string;
  ref: string;
  archive: string;
  buildCommand: string;
  startCommand: string;
  ports: string;
  env: string;
  replicas: string;
}

export interface WizardState {
  step: Step;
  input: WizardInput;
  detection: Detection | null;
  // Set when the user edited the port list (then a new detection does not overwrite it).
  portsTouched: boolean;
}

// Inputs detection depends on: editing one invalidates the detection.
const DETECTION_INPUTS: readonly (keyof WizardInput)[] = ['sourceKind', 'path', 'url', 'ref', 'archive', 'buildCommand', 'startCommand'];

export const initialWizard = (): WizardState => ({
  step: 'source',
  input: { name: '', sourceKind: 'dir', path: '', url: '', ref: '', archive: '', buildCommand: '', startCommand: '', ports: '', env: '', replicas: '1' },
  detection: null,
  portsTouched: false,
});

export type WizardAction =
  | { type: 'set'; field: keyof WizardInput; value: string }
  | { type: 'detected'; detection: Detection }
  | { type: 'back' }
  | { type: 'creating' }
  | { type: 'failed' };

export function wizardReducer(s: WizardState, a: WizardAction): WizardState {
  switch (a.type) {
    case 'set': {
      const input = { ...s.input, [a.field]: a.value };
      if (DETECTION_INPUTS.includes(a.field) && s.step === 'review') {
        return { ...s, input, step: 'source', detection: null };
      }
      return { ...s, input, portsTouched: s.portsTouched || a.field === 'ports' };
    }
    case 'detected': {
      // Prefill the port detection found unless the user already chose ports.
      const ports = s.portsTouched ? s.input.ports : a.detection.port > 0 ? String(a.detection.port) : '';
      return { ...s, step: 'review', detection: a.detection, input: { ...s.input, ports } };
    }
    case 'back':
      return { ...s, step: 'source', detection: null };
    case 'creating':
      return s.step === 'review' ? { ...s, step: 'creating' } : s;
    case 'failed':
      return s.step === 'creating' ? { ...s, step: 'review' } : s;
  }
}

export interface SourceBody {
  type: SourceKind;
  path?: string;
  url?: string;
  ref?: string;
  archive?: string;
}

// The source as the API takes it, or the problem with it (named like the API's field).
export function sourceOf(i: WizardInput): SourceBody | FormProblem {
  switch (i.sourceKind) {
    case 'dir': {
      const path = i.path.trim();
      if (!path.startsWith('/')) return { field: 'source', key: 'wizard.needAbsolutePath' };
      return { type: 'dir', path };
    }
    case 'git': {
      const url = i.url.trim();
      if (!url) return { field: 'source', key: 'wizard.needUrl' };
      return i.ref.trim() ? { type: 'git', url, ref: i.ref.trim() } : { type: 'git', url };
    }
    case 'archive': {
      const archive = i.archive.trim();
      if (!archive.startsWith('/')) return { field: 'source', key: 'wizard.needAbsolutePath' };
      return { type: 'archive', archive };
    }
  }
}

function buildOverrides(i: WizardInput): Record<string, string> {
  const b: Record<string, string> = {};
  if (i.buildCommand.trim()) b.command = i.buildCommand.trim();
  if (i.startCommand.trim()) b.start_command = i.startCommand.trim();
  return b;
}

// POST /teams/{team}/detect body.
export function detectBody(i: WizardInput): { source: SourceBody; build: Record<string, string> } | FormProblem {
  const source = sourceOf(i);
  if (isProblem(source)) return source;
  return { source, build: buildOverrides(i) };
}

// What detection could not decide, so the review step asks for it.
export function undecided(d: Detection): { port: boolean; start: boolean } {
  return { port: !(d.port > 0), start: !d.start_command };
}

export interface ComponentBody {
  name: string;
  source: SourceBody;
  build?: Record<string, string>;
  ports: Port[];
  env: Record<string, string>;
  replicas: number;
}

// POST .../components body from the wizard's answers.
export function componentBody(i: WizardInput): ComponentBody | FormProblem {
  const name = i.name.trim();
  if (!name) return { field: 'name', key: 'wizard.needName' };
  const source = sourceOf(i);
  if (isProblem(source)) return source;
  const ports = parsePorts(i.ports);
  if (isProblem(ports)) return ports;
  const env = parseEnv(i.env);
  if (isProblem(env)) return env;
  const replicas = Number(i.replicas);
  if (!/^\d+$/.test(i.replicas.trim()) || replicas > 100) return { field: 'replicas', key: 'wizard.badReplicas' };
  const body: ComponentBody = { name, source, ports, env, replicas };
  const build = buildOverrides(i);
  if (Object.keys(build).length) body.build = build;
  return body;
}
