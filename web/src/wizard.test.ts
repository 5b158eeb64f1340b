import { afterEach, describe, expect, it, vi } from 'vitest';
import type { Detection } from './api';
import { isProblem } from './component_form';
import {
  UploadError, componentBody, detectBody, initialWizard, undecided, uploadAndDetect, uploadProblem, wizardReducer,
  type WizardAction, type WizardState,
} from './wizard';

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
    for (const f of ['path', 'sourceKind', 'url', 'ref', 'archive', 'fileName', 'buildCommand', 'startCommand'] as const) {
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

  it('makes jobs and cronjobs: one instance per run, a cronjob needs its schedule', () => {
    const ok = { ...initialWizard().input, name: 'backup', path: '/srv/backup', replicas: 'ignored' };
    const job = componentBody({ ...ok, kind: 'job' });
    expect(isProblem(job) ? job : { kind: job.kind, replicas: job.replicas, schedule: job.schedule }).toEqual({ kind: 'job', replicas: 1, schedule: undefined });
    const noSchedule = componentBody({ ...ok, kind: 'cronjob', schedule: '  ' });
    expect(isProblem(noSchedule) && noSchedule.field).toBe('schedule');
    const cron = componentBody({ ...ok, kind: 'cronjob', schedule: ' 0 3 * * * ' });
    expect(isProblem(cron) ? cron : [cron.kind, cron.schedule]).toEqual(['cronjob', '0 3 * * *']);
    // A service sends no kind (the API's default).
    const svc = componentBody({ ...ok, replicas: '1' });
    expect(isProblem(svc) ? svc : 'kind' in svc).toBe(false);
  });
});

describe('uploading an archive', () => {
  const base = { ...initialWizard().input, sourceKind: 'upload' as const, name: 'web', fileName: 'shop.tar.gz', startCommand: 'python3 s.py' };
  const kept = '/data/uploads/shop.tar.gz';
  type Call = { method: string; url: string; body: unknown; type: string | null };
  // A fake server: answers each request from `answers` in order and records what was sent.
  function fakeServer(answers: [number, unknown][]) {
    const calls: Call[] = [];
    vi.stubGlobal('localStorage', { getItem: () => 'tok', setItem: () => {}, removeItem: () => {} });
    vi.stubGlobal('fetch', async (url: string, init: RequestInit) => {
      const headers = init.headers as Record<string, string>;
      calls.push({ method: init.method!, url, body: typeof init.body === 'string' ? JSON.parse(init.body) : init.body, type: headers['Content-Type'] ?? null });
      const [status, body] = answers.shift()!;
      return new Response(body === null ? '' : JSON.stringify(body), { status });
    });
    return calls;
  }
  afterEach(() => vi.unstubAllGlobals());
  const file = new Blob(['not really gzip']);
  // A picked file. Not `new File(...)`: Node 18 (Debian 12's, which `make test` runs on) has no
  // global File, and uploadProblem only needs one to be there.
  const picked = (name: string) =>
    Object.assign(new Blob([file]), { name, lastModified: 0, webkitRelativePath: '' }) as unknown as File;
  const component = (archive: string) => ({ name: 'web', source: { type: archive ? 'archive' : 'none', archive } });

  it('needs a name and a file first', () => {
    expect(uploadProblem({ ...base, name: ' ' }, picked('a.tgz'))?.field).toBe('name');
    expect(uploadProblem({ ...base, fileName: '' }, null)?.key).toBe('wizard.needFile');
    expect(uploadProblem(base, picked('a.tgz'))).toBeNull();
    const noFile = componentBody(base);
    expect(isProblem(noFile) && noFile.field).toBe('file');
  });

  it('creates the component with nothing to run, PUTs the raw file, detects the kept archive', async () => {
    const calls = fakeServer([[201, component('')], [200, component(kept)], [200, detection(8000)]]);
    const r = await uploadAndDetect('default', 'shop', base, file);
    expect(r.uploaded).toEqual({ component: 'web', archive: kept });
    expect(r.detection.port).toBe(8000);
    expect(calls.map((c) => [c.method, c.url])).toEqual([
      ['POST', '/api/v1/teams/default/apps/shop/components'],
      ['PUT', '/api/v1/teams/default/apps/shop/components/web/archive?name=shop.tar.gz'],
      ['POST', '/api/v1/teams/default/detect'],
    ]);
    expect(calls[0].body).toEqual({ name: 'web', replicas: 0 });
    expect(calls[1].body).toBe(file);
    expect(calls[1].type).toBe('application/octet-stream');
    expect(calls[2].body).toEqual({ source: { type: 'archive', archive: kept }, build: { start_command: 'python3 s.py' } });
    // The review then builds the update from the kept archive.
    const s = run([{ type: 'detected', detection: r.detection, uploaded: r.uploaded }], { ...initialWizard(), input: base });
    const body = componentBody(s.input, s.uploaded);
    expect(!isProblem(body) && body.source).toEqual({ type: 'archive', archive: kept });
    // Starting over (another file, name or kind) forgets the upload, so the page deletes it.
    expect(wizardReducer(s, set('fileName', 'other.zip')).uploaded).toBeNull();
    expect(wizardReducer(s, set('name', 'api')).uploaded).toBeNull();
    expect(wizardReducer(s, set('replicas', '2')).uploaded).toEqual(r.uploaded);
  });

  it('deletes the component it created when the upload is refused', async () => {
    const refused = { code: 'invalid_argument', message: 'archive entry escapes the directory', field: 'archive' };
    const calls = fakeServer([[201, component('')], [400, refused], [204, null]]);
    const err = await uploadAndDetect('default', 'shop', base, file).catch((e) => e);
    expect(err).toBeInstanceOf(UploadError);
    expect([err.stage, err.cause.code, err.cause.field]).toEqual(['upload', 'invalid_argument', 'archive']);
    expect(calls.map((c) => c.method)).toEqual(['POST', 'PUT', 'DELETE']);
    expect(calls[2].url).toBe('/api/v1/teams/default/apps/shop/components/web');
  });

  it('deletes it too when detection fails, and creates nothing when the name is refused', async () => {
    let calls = fakeServer([[201, component('')], [200, component(kept)], [400, { code: 'invalid_argument', message: 'no language' }], [204, null]]);
    const err = await uploadAndDetect('default', 'shop', base, file).catch((e) => e);
    expect(err.stage).toBe('detect');
    expect(calls.map((c) => c.method)).toEqual(['POST', 'PUT', 'POST', 'DELETE']);
    calls = fakeServer([[409, { code: 'already_exists', message: 'exists', field: 'name' }]]);
    const taken = await uploadAndDetect('default', 'shop', base, file).catch((e) => e);
    expect([taken.stage, taken.cause.code]).toEqual(['create', 'already_exists']);
    expect(calls.map((c) => c.method)).toEqual(['POST']);
  });
});
