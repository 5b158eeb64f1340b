// The "create component" wizard (state in wizard.ts): source → detection result and its
// reasons → the few answers detection could not give → create the component and queue its
// first build, then open the live build log. An uploaded archive first creates the component it
// belongs to; leaving the wizard (or starting over) before "Create and build" deletes it.
import { useEffect, useReducer, useRef, useState, type FormEvent } from 'react';
import { api, fieldOf, paths, type Component, type Detection, type Version } from '../api';
import { isProblem } from '../component_form';
import { useT, type MessageKey } from '../i18n';
import { Link, navigate, to } from '../router';
import { Field, errorText } from '../ui';
import {
  UploadError, componentBody, detectBody, discardUpload, initialWizard, undecided, uploadAndDetect, uploadProblem, wizardReducer,
  type SourceKind, type Uploaded, type WizardInput,
} from '../wizard';

const FIELDS = ['name', 'source', 'build', 'ports', 'env', 'replicas', 'kind', 'schedule'] as const;
const COMPONENT_KINDS = ['service', 'job', 'cronjob'] as const;
const KINDS: SourceKind[] = ['dir', 'git', 'upload', 'archive'];
const ARCHIVE_TYPES = '.tar.gz,.tgz,.tar,.tar.bz2,.tar.xz,.zip';

export function WizardPage({ team, app }: { team: string; app: string }) {
  const { t } = useT();
  const [s, dispatch] = useReducer(wizardReducer, undefined, initialWizard);
  const [error, setError] = useState<{ field: string | null; text: string } | null>(null);
  const [busy, setBusy] = useState(false);
  const [buildError, setBuildError] = useState<{ name: string; text: string } | null>(null);
  const [file, setFile] = useState<File | null>(null);
  const i = s.input;
  // The component an upload created and that "Create and build" has not taken over yet: deleted
  // when the wizard replaces it (new upload, changed input) or is left.
  const pending = useRef<Uploaded | null>(null);
  // The last deletion, awaited before uploading again (the new component may reuse the name).
  const discarding = useRef<Promise<void>>(Promise.resolve());
  const discard = (u: Uploaded) => {
    discarding.current = discarding.current.then(() => discardUpload(team, app, u));
  };
  useEffect(() => {
    const prev = pending.current;
    if (prev && prev !== s.uploaded) discard(prev);
    pending.current = s.uploaded;
  }, [s.uploaded, team, app]);
  useEffect(() => () => {
    if (pending.current) void discardUpload(team, app, pending.current);
  }, [team, app]);
  const pickFile = (e: { target: { files: FileList | null } }) => {
    const f = e.target.files?.[0] ?? null;
    setFile(f);
    dispatch({ type: 'set', field: 'fileName', value: f ? f.name : '' });
  };
  const set = (field: keyof WizardInput) => (e: { target: { value: string } }) => {
    dispatch({ type: 'set', field, value: e.target.value });
  };
  const errFor = (f: string) => (error && error.field === f ? error.text : null);

  const detect = async (e: FormEvent) => {
    e.preventDefault();
    setError(null);
    if (i.sourceKind === 'upload') return detectUpload();
    const body = detectBody(i);
    if (isProblem(body)) return setError({ field: body.field, text: t(body.key, body.vars) });
    setBusy(true);
    try {
      const d = await api.post<Detection>(paths.detect(team), body);
      dispatch({ type: 'detected', detection: d });
    } catch (err) {
      setError({ field: fieldOf(err, FIELDS), text: errorText(err, t) });
    } finally {
      setBusy(false);
    }
  };

  const detectUpload = async () => {
    const problem = uploadProblem(i, file);
    if (problem) return setError({ field: problem.field, text: t(problem.key, problem.vars) });
    // Detecting again uploads again, into a new component: the previous one goes first.
    const old = pending.current;
    pending.current = null;
    if (old) discard(old);
    if (s.uploaded) dispatch({ type: 'back' });
    setBusy(true);
    try {
      await discarding.current;
      const r = await uploadAndDetect(team, app, i, file!);
      dispatch({ type: 'detected', detection: r.detection, uploaded: r.uploaded });
    } catch (err) {
      const cause = err instanceof UploadError ? err.cause : err;
      // A refused name belongs next to the name; everything else next to the file.
      const field = err instanceof UploadError && err.stage === 'create' && fieldOf(cause, ['name']) ? 'name' : 'file';
      setError({ field, text: errorText(cause, t) });
    } finally {
      setBusy(false);
    }
  };

  const create = async (e: FormEvent) => {
    e.preventDefault();
    setError(null);
    const body = componentBody(i, s.uploaded);
    if (isProblem(body)) return setError({ field: body.field, text: t(body.key, body.vars) });
    dispatch({ type: 'creating' });
    let created: Component;
    try {
      if (s.uploaded) {
        // The upload's component exists: give it the answers (and 1+ replicas) instead.
        const { name: _name, ...rest } = body;
        created = await api.patch<Component>(paths.component(team, app, s.uploaded.component), rest);
        pending.current = null;
      } else {
        created = await api.post<Component>(paths.components(team, app), body);
      }
    } catch (err) {
      dispatch({ type: 'failed' });
      return setError({ field: fieldOf(err, FIELDS), text: errorText(err, t) });
    }
    try {
      const v = await api.post<Version>(paths.component(team, app, created.name) + '/builds', {});
      navigate(to.component(team, app, created.name, 'versions', v.name));
    } catch (err) {
      // The component exists but its build did not start: say why and link to it.
      setBuildError({ name: created.name, text: errorText(err, t) });
    }
  };

  const d = s.detection;
  const todo = d ? undecided(d) : null;
  return (
    <section aria-labelledby="wizard-title">
      <nav className="crumbs" aria-label={t('nav.breadcrumb')}>
        <Link href={to.apps(team)}>{t('nav.apps')}</Link> / <Link href={to.app(team, app)}>{app}</Link> / <span>{t('app.newComponent')}</span>
      </nav>
      <h1 id="wizard-title">{t('app.newComponent')}</h1>
      <ol className="steps" aria-label={t('wizard.steps')}>
        <li aria-current={s.step === 'source' ? 'step' : undefined}>{t('wizard.stepSource')}</li>
        <li aria-current={s.step !== 'source' ? 'step' : undefined}>{t('wizard.stepReview')}</li>
      </ol>
      <form className="card" onSubmit={detect} aria-label={t('wizard.stepSource')} data-testid="wizard-source">
        <fieldset className="source-kind">
          <legend>{t('wizard.sourceKind')}</legend>
          {KINDS.map((k) => (
            <label key={k} className="radio">
              <input type="radio" name="sourceKind" value={k} checked={i.sourceKind === k} onChange={set('sourceKind')} />
              {t(`wizard.kind.${k}` as MessageKey)}
            </label>
          ))}
        </fieldset>
        <div className="grid2">
          {i.sourceKind === 'dir' && (
            <Field label={t('wizard.path')} hint={t('wizard.pathHint')} error={errFor('source')}>
              {(p) => <input {...p} name="path" className="mono" value={i.path} onChange={set('path')} placeholder="/srv/src/shop" autoFocus />}
            </Field>
          )}
          {i.sourceKind === 'git' && (
            <>
              <Field label={t('wizard.url')} hint={t('wizard.urlHint')} error={errFor('source')}>
                {(p) => <input {...p} name="url" className="mono" value={i.url} onChange={set('url')} placeholder="https://git.example.com/shop.git" />}
              </Field>
              <Field label={t('wizard.ref')} hint={t('wizard.refHint')}>
                {(p) => <input {...p} name="ref" className="mono" value={i.ref} onChange={set('ref')} placeholder="main" />}
              </Field>
            </>
          )}
          {i.sourceKind === 'upload' && (
            <>
              <Field label={t('comp.name')} hint={t('wizard.uploadNameHint')} error={errFor('name')}>
                {(p) => <input {...p} name="name" value={i.name} onChange={set('name')} maxLength={63} />}
              </Field>
              <Field label={t('wizard.file')} hint={t('wizard.fileHint')} error={errFor('file')}>
                {(p) => <input {...p} name="file" type="file" accept={ARCHIVE_TYPES} onChange={pickFile} />}
              </Field>
            </>
          )}
          {i.sourceKind === 'archive' && (
            <Field label={t('wizard.archive')} hint={t('wizard.archiveHint')} error={errFor('source')}>
              {(p) => <input {...p} name="archive" className="mono" value={i.archive} onChange={set('archive')} placeholder="/srv/uploads/shop.tar.gz" />}
            </Field>
          )}
        </div>
        <details className="advanced" open={!!(i.buildCommand || i.startCommand || errFor('build'))}>
          <summary>{t('wizard.overrides')}</summary>
          <div className="grid2">
            <Field label={t('wizard.buildCommand')} hint={t('wizard.buildCommandHint')} error={errFor('build')}>
              {(p) => <input {...p} name="buildCommand" className="mono" value={i.buildCommand} onChange={set('buildCommand')} />}
            </Field>
            <Field label={t('wizard.startCommand')} hint={t('wizard.startCommandHint')}>
              {(p) => <input {...p} name="startCommand" className="mono" value={i.startCommand} onChange={set('startCommand')} />}
            </Field>
          </div>
        </details>
        {error && !error.field && s.step === 'source' && <p className="error-banner" role="alert">{error.text}</p>}
        <div className="row">
          <button type="submit" className={s.step === 'source' ? 'primary' : ''} disabled={busy}>
            {busy ? t(i.sourceKind === 'upload' ? 'wizard.uploading' : 'wizard.detecting') : s.step === 'source' ? t('wizard.detect') : t('wizard.detectAgain')}
          </button>
          <Link href={to.app(team, app)}>{t('common.cancel')}</Link>
        </div>
      </form>

      {d && todo && (
        <form className="card" onSubmit={create} aria-label={t('wizard.stepReview')} data-testid="wizard-review">
          <h2>{t('wizard.detected', { language: d.language })}</h2>
          <div className="grid2">
            <div>
              <h3>{t('wizard.reasons')}</h3>
              <ul className="reasons" data-testid="reasons">
                {d.reasons.map((r, n) => <li key={n}>{r}</li>)}
              </ul>
            </div>
            <dl className="settings">
              <dt>{t('wizard.language')}</dt><dd className="mono">{d.language}{d.language_version ? ' ' + d.language_version : ''}</dd>
              <dt>{t('wizard.buildSteps')}</dt>
              <dd className="mono">{d.build_steps.length ? d.build_steps.map((b, n) => <div key={n}>{b}</div>) : t('common.none')}</dd>
              <dt>{t('wizard.startCommand')}</dt><dd className="mono">{d.start_command || t('wizard.noStart')}</dd>
              <dt>{t('wizard.port')}</dt><dd className="mono">{d.port > 0 ? d.port : t('wizard.noPort')}</dd>
              {d.tools.length > 0 && <><dt>{t('wizard.tools')}</dt><dd className="mono">{d.tools.map((x) => x.program).join(', ')}</dd></>}
            </dl>
          </div>
          {todo.start && <p className="error-banner" role="alert">{t('wizard.needStart')}</p>}
          <h3>{t('wizard.answers')}</h3>
          <div className="grid2">
            <Field label={t('comp.name')} error={errFor('name')}>
              {(p) => <input {...p} name="name" value={i.name} onChange={set('name')} required maxLength={63} autoFocus readOnly={!!s.uploaded} />}
            </Field>
            <Field label={t('comp.ports')} hint={todo.port ? t('wizard.portUndecided') : t('wizard.portDetected', { port: d.port })} error={errFor('ports')}>
              {(p) => <input {...p} name="ports" value={i.ports} onChange={set('ports')} placeholder="8080" />}
            </Field>
            <Field label={t('comp.kind')} hint={t(`wizard.kindHint.${i.kind}` as MessageKey)} error={errFor('kind')}>
              {(p) => (
                <select {...p} name="kind" value={i.kind} onChange={set('kind')}>
                  {COMPONENT_KINDS.map((k) => <option key={k} value={k}>{t(`kind.${k}` as MessageKey)}</option>)}
                </select>
              )}
            </Field>
            {i.kind === 'cronjob' && (
              <Field label={t('job.schedule')} hint={t('job.scheduleHint')} error={errFor('schedule')}>
                {(p) => <input {...p} name="schedule" className="mono" value={i.schedule} onChange={set('schedule')} placeholder="*/5 * * * *" />}
              </Field>
            )}
            {i.kind !== 'job' && i.kind !== 'cronjob' && (
              <Field label={t('comp.replicas')} error={errFor('replicas')}>
                {(p) => <input {...p} name="replicas" type="number" min={0} max={100} value={i.replicas} onChange={set('replicas')} />}
              </Field>
            )}
            <Field label={t('comp.env')} hint={t('comp.envHint')} error={errFor('env')}>
              {(p) => <textarea {...p} name="env" rows={3} value={i.env} onChange={set('env')} placeholder="KEY=value" />}
            </Field>
          </div>
          {error && (!error.field || ['source', 'build'].includes(error.field)) && <p className="error-banner" role="alert">{error.text}</p>}
          {buildError && (
            <p className="error-banner" role="alert">
              {t('wizard.buildNotStarted', { message: buildError.text })}{' '}
              <Link href={to.component(team, app, buildError.name, 'versions')}>{t('wizard.openComponent', { name: buildError.name })}</Link>
            </p>
          )}
          <div className="row">
            <button type="submit" className="primary" disabled={s.step === 'creating' || todo.start}>
              {s.step === 'creating' ? t('common.creating') : t('wizard.createAndBuild')}
            </button>
          </div>
        </form>
      )}
    </section>
  );
}
