// The "create component" wizard's state, apart from its screens so it can be tested:
//   source  — where the code is (a server directory, a git URL + ref, an archive file uploaded
//             from the browser, an archive already on the server) and optional build
//             overrides; "Detect" asks POST /teams/{team}/detect
//             An upload needs a component to attach to, so for it "Detect" creates the component
//             (no source, 0 replicas: nothing runs), PUTs the file, then detects the kept archive
//             (uploadAndDetect); "Create and build" then updates that component instead of
//             creating one, and abandoning the wizard deletes it.
//   review  — what detection found and why; asks only for what it could not decide (the port
//             when detection found none, env, replicas)
//   creating → the component is created and its first build queued.
// Changing anything that detection looked at after detecting goes back to `source`: the shown
// result must always describe the inputs that will be built.
import { api, paths, type Component, type Detection, type Port } from './api';
import { isProblem, parseEnv, parsePorts, type FormProblem } from './component_form';

export type SourceKind = 'dir' | 'git' | 'upload' | 'archive';
export type Step = 'source' | 'review' | 'creating';

export interface WizardInput {
  name: string;
  sourceKind: SourceKind;
  path: string;
  url: string;
  ref: string;
  archive: string;
  // The picked file's name (the File itself stays with the page: it is not state to compare).
  fileName: string;
  buildCommand: string;
  startCommand: string;
  ports: string;
  env: string;
  replicas: string;
  // service (kept running), job (runs to completion at each deploy) or cronjob (on `schedule`).
  kind: string;
  schedule: string;
}

export interface WizardState {
  step: Step;
  input: WizardInput;
  detection: Detection | null;
  // Set when the user edited the port list (then a new detection does not overwrite it).
  portsTouched: boolean;
  // An uploaded archive: the component the wizard created for it and the server's kept path.
  uploaded: Uploaded | null;
}

export interface Uploaded {
  component: string;
  archive: string;
}

// Inputs detection depends on: editing one invalidates the detection.
const DETECTION_INPUTS: readonly (keyof WizardInput)[] = ['sourceKind', 'path', 'url', 'ref', 'archive', 'fileName', 'buildCommand', 'startCommand'];

export const initialWizard = (): WizardState => ({
  step: 'source',
  input: { name: '', sourceKind: 'dir', path: '', url: '', ref: '', archive: '', fileName: '', buildCommand: '', startCommand: '', ports: '', env: '', replicas: '1', kind: 'service', schedule: '' },
  detection: null,
  portsTouched: false,
  uploaded: null,
});

export type WizardAction =
  | { type: 'set'; field: keyof WizardInput; value: string }
  | { type: 'detected'; detection: Detection; uploaded?: Uploaded }
  | { type: 'back' }
  | { type: 'creating' }
  | { type: 'failed' };

export function wizardReducer(s: WizardState, a: WizardAction): WizardState {
  switch (a.type) {
    case 'set': {
      const input = { ...s.input, [a.field]: a.value };
      // For an upload the name is the created component's: changing it means another one.
      const read = DETECTION_INPUTS.includes(a.field) || (a.field === 'name' && s.uploaded !== null);
      if (read && s.step === 'review') {
        return { ...s, input, step: 'source', detection: null, uploaded: null };
      }
      return { ...s, input, portsTouched: s.portsTouched || a.field === 'ports' };
    }
    case 'detected': {
      // Prefill the port detection found unless the user already chose ports.
      const ports = s.portsTouched ? s.input.ports : a.detection.port > 0 ? String(a.detection.port) : '';
      return { ...s, step: 'review', detection: a.detection, uploaded: a.uploaded ?? null, input: { ...s.input, ports } };
    }
    case 'back':
      return { ...s, step: 'source', detection: null, uploaded: null };
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
// An upload's source is the archive the server kept (known once uploaded).
export function sourceOf(i: WizardInput, uploaded: Uploaded | null = null): SourceBody | FormProblem {
  switch (i.sourceKind) {
    case 'upload':
      if (!uploaded) return { field: 'file', key: 'wizard.needFile' };
      return { type: 'archive', archive: uploaded.archive };
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
export function detectBody(i: WizardInput, uploaded: Uploaded | null = null): { source: SourceBody; build: Record<string, string> } | FormProblem {
  const source = sourceOf(i, uploaded);
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
  kind?: string;
  schedule?: string;
}

// POST .../components body from the wizard's answers.
export function componentBody(i: WizardInput, uploaded: Uploaded | null = null): ComponentBody | FormProblem {
  const name = i.name.trim();
  if (!name) return { field: 'name', key: 'wizard.needName' };
  const source = sourceOf(i, uploaded);
  if (isProblem(source)) return source;
  const ports = parsePorts(i.ports);
  if (isProblem(ports)) return ports;
  const env = parseEnv(i.env);
  if (isProblem(env)) return env;
  const job = i.kind === 'job' || i.kind === 'cronjob';
  // A job or cronjob runs one instance per run: replicas do not apply (1 counts for quotas).
  const replicas = job ? 1 : Number(i.replicas);
  if (!job && (!/^\d+$/.test(i.replicas.trim()) || replicas > 100)) return { field: 'replicas', key: 'wizard.badReplicas' };
  if (i.kind === 'cronjob' && !i.schedule.trim()) return { field: 'schedule', key: 'wizard.needSchedule' };
  const body: ComponentBody = { name, source, ports, env, replicas };
  if (i.kind && i.kind !== 'service') body.kind = i.kind;
  if (i.kind === 'cronjob') body.schedule = i.schedule.trim();
  const build = buildOverrides(i);
  if (Object.keys(build).length) body.build = build;
  return body;
}

// The upload's first step, checked before anything is sent: a name and a picked file.
export function uploadProblem(i: WizardInput, file: File | null): FormProblem | null {
  if (!i.name.trim()) return { field: 'name', key: 'wizard.needName' };
  if (!file || !i.fileName) return { field: 'file', key: 'wizard.needFile' };
  return null;
}

// Which step of an upload failed, with the API's error.
export class UploadError extends Error {
  constructor(readonly stage: 'create' | 'upload' | 'detect', readonly cause: unknown) {
    super(cause instanceof Error ? cause.message : String(cause));
  }
}

// Creates the component (no source, 0 replicas: nothing runs or builds), PUTs the file as its
// archive, and detects what the server kept. If the upload or the detection fails the component
// is deleted again, so a failed attempt leaves nothing behind.
export async function uploadAndDetect(
  team: string, app: string, i: WizardInput, file: Blob,
): Promise<{ uploaded: Uploaded; detection: Detection }> {
  const name = i.name.trim();
  let created: Component;
  try {
    created = await api.post<Component>(paths.components(team, app), { name, replicas: 0 });
  } catch (err) {
    throw new UploadError('create', err);
  }
  const cpath = paths.component(team, app, created.name);
  let stage: 'upload' | 'detect' = 'upload';
  try {
    const after = await api.upload<Component>(cpath + '/archive?name=' + encodeURIComponent(i.fileName), file);
    const uploaded = { component: created.name, archive: after.source.archive };
    stage = 'detect';
    const body = detectBody(i, uploaded);
    if (isProblem(body)) throw new Error(body.key);
    const detection = await api.post<Detection>(paths.detect(team), body);
    return { uploaded, detection };
  } catch (err) {
    await discardUpload(team, app, { component: created.name, archive: '' });
    throw new UploadError(stage, err);
  }
}

// Deletes the component an abandoned upload created (best effort: it may already be gone).
export async function discardUpload(team: string, app: string, u: Uploaded): Promise<void> {
  try {
    await api.del(paths.component(team, app, u.component));
  } catch {
    /* already deleted, or the session ended: nothing more the console can do */
  }
}
