// The component page's editing tabs: scale, environment, config files, ports, health checks
// and settings. Each saves with one PATCH carrying the revision it was edited from, so a
// concurrent change gives a revision conflict instead of being overwritten; API errors show
// next to the input their `field` names.
import { useEffect, useRef, useState, type FormEvent, type ReactNode } from 'react';
import { api, errorField, rowOf, type Component, type ConfigFile, type Port, type Probe, type ProbeKind } from '../api';
import { useT, type MessageKey } from '../i18n';
import { CONCURRENCY_POLICIES, JOB_DEFAULTS, jobPatch, type JobDraft } from '../runs';
import { Confirm, Field, errorText } from '../ui';

// One save at a time; remembers the API error (with its field) and a "saved" flag.
export function useSave(base: string, c: Component, onSaved: (c: Component) => void) {
  const { t } = useT();
  const [busy, setBusy] = useState(false);
  const [error, setError] = useState<unknown>(null);
  const [saved, setSaved] = useState(false);
  const save = async (patch: Record<string, unknown>): Promise<boolean> => {
    setBusy(true);
    setError(null);
    setSaved(false);
    try {
      const updated = await api.patch<Component>(base, { ...patch, revision: c.revision });
      setSaved(true);
      onSaved(updated);
      return true;
    } catch (err) {
      setError(err);
      return false;
    } finally {
      setBusy(false);
    }
  };
  const field = errorField(error);
  const text = error ? errorText(error, t) : null;
  // The error's text when it names `f` (exactly, or a path below it).
  const errFor = (f: string) => (field && (field === f || field.startsWith(f + '.') || field.startsWith(f + '[')) ? text : null);
  return { busy, error, saved, save, field, text, errFor, setError, clearSaved: () => setSaved(false) };
}

function Actions({ busy, saved, dirty, writable, error, shown, children }: { busy: boolean; saved: boolean; dirty: boolean; writable: boolean; error: string | null; shown: boolean; children?: ReactNode }) {
  const { t } = useT();
  if (!writable) return null;
  return (
    <>
      {error && !shown && <p className="error-banner" role="alert">{error}</p>}
      <div className="row">
        {children}
        <button type="submit" className="primary" disabled={busy || !dirty}>{busy ? t('common.saving') : t('common.save')}</button>
        {saved && !dirty && <span className="ok" role="status">{t('common.saved')}</span>}
      </div>
    </>
  );
}

// Keeps a local draft made by `make` that follows the live object (whose state `key`
// identifies) until the user edits it.
function useDraft<T>(make: () => T, key: string): [T, (v: T) => void, boolean, () => void] {
  const [draft, setDraft] = useState<T>(make);
  const [dirty, setDirty] = useState(false);
  const makeRef = useRef(make);
  makeRef.current = make;
  useEffect(() => {
    if (!dirty) setDraft(makeRef.current());
  }, [key, dirty]);
  return [draft, (v: T) => { setDraft(v); setDirty(true); }, dirty, () => setDirty(false)];
}

interface EditorProps {
  c: Component;
  base: string;
  writable: boolean;
  onSaved: (c: Component) => void;
}

// ---- scale ----------------------------------------------------------------------------------

export function ScaleEditor({ c, base, writable, onSaved }: EditorProps) {
  const { t } = useT();
  const s = useSave(base, c, onSaved);
  const [draft, setDraft, dirty, clean] = useDraft(
    () => ({ replicas: String(c.replicas), memory: String(c.resources?.memory_mb ?? 0), cpu: String(c.resources?.cpu_millis ?? 0) }),
    JSON.stringify([c.replicas, c.resources]),
  );
  const [local, setLocal] = useState<{ field: string; text: string } | null>(null);
  const [stopping, setStopping] = useState(false);
  const submit = async (e: FormEvent) => {
    e.preventDefault();
    setLocal(null);
    const n = (v: string) => (/^\d+$/.test(v.trim()) ? Number(v) : NaN);
    const replicas = n(draft.replicas), memory = n(draft.memory), cpu = n(draft.cpu);
    if (isNaN(replicas)) return setLocal({ field: 'replicas', text: t('scale.notNumber') });
    if (isNaN(memory)) return setLocal({ field: 'resources.memory_mb', text: t('scale.notNumber') });
    if (isNaN(cpu)) return setLocal({ field: 'resources.cpu_millis', text: t('scale.notNumber') });
    if (await s.save({ replicas, resources: { memory_mb: memory, cpu_millis: cpu } })) clean();
  };
  const errFor = (f: string) => (local?.field === f ? local.text : s.errFor(f));
  const setState = async (desired: 'running' | 'stopped') => {
    if (await s.save({ desired_state: desired })) setStopping(false);
  };
  const shown = !!s.field && ['replicas', 'resources'].some((f) => s.field!.startsWith(f));
  // Replicas and restarts do not apply to jobs (each run is one instance of its own).
  const job = c.kind === 'job' || c.kind === 'cronjob';
  return (
    <>
      <form className="card" onSubmit={submit} aria-label={t('tab.scale')} data-testid="scale">
        <h2>{t('tab.scale')}</h2>
        <div className="grid3">
          {!job && (
            <Field label={t('comp.replicas')} error={errFor('replicas')}>
              {(p) => <input {...p} name="replicas" type="number" min={0} max={100} value={draft.replicas} readOnly={!writable} onChange={(e) => setDraft({ ...draft, replicas: e.target.value })} />}
            </Field>
          )}
          <Field label={t('scale.memory')} hint={t('scale.zeroUnlimited')} error={errFor('resources.memory_mb')}>
            {(p) => <input {...p} name="memory_mb" type="number" min={0} value={draft.memory} readOnly={!writable} onChange={(e) => setDraft({ ...draft, memory: e.target.value })} />}
          </Field>
          <Field label={t('scale.cpu')} hint={t('scale.cpuHint')} error={errFor('resources.cpu_millis')}>
            {(p) => <input {...p} name="cpu_millis" type="number" min={0} value={draft.cpu} readOnly={!writable} onChange={(e) => setDraft({ ...draft, cpu: e.target.value })} />}
          </Field>
        </div>
        <Actions busy={s.busy} saved={s.saved} dirty={dirty} writable={writable} error={s.text} shown={shown} />
      </form>
      <div className="card">
        <h2>{t('scale.state')}</h2>
        <p>{t('scale.stateIs', { state: t(`state.${c.desired_state}` as MessageKey) })}</p>
        {writable && (
          <div className="row">
            {c.desired_state === 'running'
              ? <button type="button" className="danger" onClick={() => setStopping(true)}>{t('scale.stop')}</button>
              : <button type="button" className="primary" onClick={() => setState('running')}>{t('scale.start')}</button>}
            {!job && <RestartButton base={base} />}
          </div>
        )}
      </div>
      <Confirm open={stopping} message={t('scale.stopConfirm', { name: c.name })} confirmLabel={t('scale.stop')} onConfirm={() => setState('stopped')} onCancel={() => setStopping(false)} busy={s.busy} error={stopping ? s.error : null} />
    </>
  );
}

function RestartButton({ base }: { base: string }) {
  const { t } = useT();
  const [open, setOpen] = useState(false);
  const [error, setError] = useState<unknown>(null);
  const [done, setDone] = useState(false);
  const restart = async () => {
    try {
      await api.post(base + '/restart', {});
      setOpen(false);
      setDone(true);
    } catch (err) {
      setError(err);
    }
  };
  return (
    <>
      <button type="button" onClick={() => { setOpen(true); setDone(false); }}>{t('scale.restart')}</button>
      {done && <span className="ok" role="status">{t('scale.restarting')}</span>}
      <Confirm open={open} message={t('scale.restartConfirm')} confirmLabel={t('scale.restart')} onConfirm={restart} onCancel={() => { setOpen(false); setError(null); }} error={error} />
    </>
  );
}

// ---- config files -----------------------------------------------------------------------------

export function FilesEditor({ c, base, writable, onSaved }: EditorProps) {
  const { t } = useT();
  const s = useSave(base, c, onSaved);
  const [files, setFiles, dirty, clean] = useDraft<ConfigFile[]>(() => c.config_files ?? [], JSON.stringify(c.config_files ?? []));
  const save = async (e: FormEvent) => {
    e.preventDefault();
    if (await s.save({ config_files: files })) clean();
  };
  const at = rowOf(s.field, 'config_files');
  const set = (n: number, f: Partial<ConfigFile>) => setFiles(files.map((x, i) => (i === n ? { ...x, ...f } : x)));
  return (
    <form className="card" onSubmit={save} aria-label={t('files.title')} data-testid="files-editor">
      <h2>{t('files.title')}</h2>
      <p className="muted">{t('files.hint')}</p>
      {files.length === 0 && <p className="muted">{t('files.empty')}</p>}
      {files.map((f, n) => (
        <fieldset key={n} className="file-row">
          <legend className="sr-only">{t('files.file', { n: n + 1 })}</legend>
          <Field label={t('files.path')} error={at?.index === n && at.rest !== 'content' ? s.text : null}>
            {(p) => <input {...p} className="mono" value={f.path} readOnly={!writable} onChange={(e) => set(n, { path: e.target.value })} placeholder="config/app.ini" />}
          </Field>
          <Field label={t('files.content')} error={at?.index === n && at.rest === 'content' ? s.text : null}>
            {(p) => <textarea {...p} className="mono" rows={4} value={f.content} readOnly={!writable} onChange={(e) => set(n, { content: e.target.value })} />}
          </Field>
          {writable && <button type="button" className="small" onClick={() => setFiles(files.filter((_, i) => i !== n))}>{t('files.remove', { path: f.path })}</button>}
        </fieldset>
      ))}
      <Actions busy={s.busy} saved={s.saved} dirty={dirty} writable={writable} error={s.text} shown={!!at}>
        <button type="button" onClick={() => setFiles([...files, { path: '', content: '' }])}>{t('files.add')}</button>
      </Actions>
    </form>
  );
}

// ---- ports ----------------------------------------------------------------------------------

const PROTOCOLS: Port['protocol'][] = ['http', 'tcp', 'udp', 'grpc'];

export function PortsEditor({ c, base, writable, onSaved }: EditorProps) {
  const { t } = useT();
  const s = useSave(base, c, onSaved);
  const [ports, setPorts, dirty, clean] = useDraft<(Omit<Port, 'port'> & { port: string })[]>(() => c.ports.map((p) => ({ ...p, port: String(p.port) })), JSON.stringify(c.ports));
  const [local, setLocal] = useState<{ index: number; text: string } | null>(null);
  const save = async (e: FormEvent) => {
    e.preventDefault();
    setLocal(null);
    const out: Port[] = [];
    for (let i = 0; i < ports.length; i++) {
      const n = Number(ports[i].port);
      if (!/^\d+$/.test(ports[i].port) || n < 1 || n > 65535) return setLocal({ index: i, text: t('comp.badPort', { value: ports[i].port }) });
      // A port saved here is declared by the user: no longer the automatic one.
      const declared: Port = { ...ports[i], port: n };
      delete declared.auto;
      out.push(declared);
    }
    if (await s.save({ ports: out })) clean();
  };
  const at = rowOf(s.field, 'ports');
  const rowErr = (n: number) => (local?.index === n ? local.text : at?.index === n ? s.text : null);
  const set = (n: number, f: Partial<(typeof ports)[number]>) => setPorts(ports.map((x, i) => (i === n ? { ...x, ...f } : x)));
  return (
    <form className="card" onSubmit={save} aria-label={t('tab.ports')} data-testid="ports-editor">
      <h2>{t('comp.ports')}</h2>
      <p className="muted">{t('ports.hint')}</p>
      {ports.length === 0 ? <p className="muted">{t('ports.empty')}</p> : (
        <table className="list">
          <thead><tr><th>{t('ports.port')}</th><th>{t('ports.protocol')}</th><th>{t('ports.inner')}</th><th>{t('ports.outer')}</th><th>{t('ports.name')}</th>{writable && <th><span className="sr-only">{t('common.actions')}</span></th>}</tr></thead>
          <tbody>
            {ports.map((p, n) => (
              <tr key={n}>
                <td>
                  <input aria-label={t('ports.portN', { n: n + 1 })} className="mono narrow" inputMode="numeric" value={p.port} readOnly={!writable} aria-invalid={rowErr(n) ? true : undefined} onChange={(e) => set(n, { port: e.target.value })} />
                  {p.auto && <span className="badge" data-testid="auto-port" title={t('ports.autoHint')}>{t('ports.auto')}</span>}
                  {rowErr(n) && <small className="field-error" role="alert">{rowErr(n)}</small>}
                </td>
                <td>
                  <select aria-label={t('ports.protocolN', { n: n + 1 })} value={p.protocol} disabled={!writable} onChange={(e) => set(n, { protocol: e.target.value as Port['protocol'] })}>
                    {PROTOCOLS.map((x) => <option key={x} value={x}>{x}</option>)}
                  </select>
                </td>
                <td><input type="checkbox" aria-label={t('ports.innerN', { n: n + 1 })} checked={p.inner} disabled={!writable} onChange={(e) => set(n, { inner: e.target.checked })} /></td>
                <td><input type="checkbox" aria-label={t('ports.outerN', { n: n + 1 })} checked={p.outer} disabled={!writable} onChange={(e) => set(n, { outer: e.target.checked })} /></td>
                <td><input aria-label={t('ports.nameN', { n: n + 1 })} className="mono" value={p.name} readOnly={!writable} onChange={(e) => set(n, { name: e.target.value })} /></td>
                {writable && <td><button type="button" className="small" onClick={() => setPorts(ports.filter((_, i) => i !== n))}>{t('env.remove')}</button></td>}
              </tr>
            ))}
          </tbody>
        </table>
      )}
      <Actions busy={s.busy} saved={s.saved} dirty={dirty} writable={writable} error={s.text} shown={!!at}>
        <button type="button" onClick={() => setPorts([...ports, { port: '', protocol: 'http', inner: true, outer: true, name: '' }])}>{t('ports.add')}</button>
      </Actions>
    </form>
  );
}

// ---- health checks --------------------------------------------------------------------------

const PROBES: ProbeKind[] = ['startup', 'readiness', 'liveness'];
const defaultProbe = (c: Component): Probe => ({ type: 'tcp', port: c.ports[0]?.port ?? 0, path: '/', command: '', interval_s: 5, timeout_s: 2, failure_threshold: 3, expect_status: 0 });
type ProbeDraft = { on: boolean } & { [K in keyof Probe]: string };
const toDraft = (p: Probe | null | undefined, c: Component): ProbeDraft => {
  const v = p ?? defaultProbe(c);
  return { on: !!p, type: v.type, port: String(v.port), path: v.path, command: v.command, interval_s: String(v.interval_s), timeout_s: String(v.timeout_s), failure_threshold: String(v.failure_threshold), expect_status: String(v.expect_status) };
};

export function HealthEditor({ c, base, writable, onSaved }: EditorProps) {
  const { t } = useT();
  const s = useSave(base, c, onSaved);
  const [draft, setDraft, dirty, clean] = useDraft(
    () => Object.fromEntries(PROBES.map((k) => [k, toDraft(c.health?.[k], c)])) as Record<ProbeKind, ProbeDraft>,
    JSON.stringify([c.health, c.ports[0]?.port]),
  );
  const [local, setLocal] = useState<{ field: string; text: string } | null>(null);
  const save = async (e: FormEvent) => {
    e.preventDefault();
    setLocal(null);
    const health: Record<string, Probe | null> = {};
    for (const k of PROBES) {
      const d = draft[k];
      if (!d.on) {
        health[k] = null;
        continue;
      }
      const num: (keyof Probe)[] = ['port', 'interval_s', 'timeout_s', 'failure_threshold', 'expect_status'];
      for (const f of num) {
        if (!/^\d+$/.test(d[f].trim())) return setLocal({ field: `health.${k}.${f}`, text: t('scale.notNumber') });
      }
      health[k] = { type: d.type as Probe['type'], port: Number(d.port), path: d.path, command: d.command, interval_s: Number(d.interval_s), timeout_s: Number(d.timeout_s), failure_threshold: Number(d.failure_threshold), expect_status: Number(d.expect_status) };
    }
    if (await s.save({ health })) clean();
  };
  const errFor = (f: string) => (local?.field === f ? local.text : s.field === f ? s.text : null);
  const set = (k: ProbeKind, f: Partial<ProbeDraft>) => setDraft({ ...draft, [k]: { ...draft[k], ...f } });
  const shown = !!s.field && s.field.startsWith('health.');
  return (
    <form onSubmit={save} aria-label={t('tab.health')} data-testid="health-editor">
      {PROBES.map((k) => {
        const d = draft[k];
        const f = (x: string) => `health.${k}.${x}`;
        return (
          <fieldset key={k} className="card probe">
            <legend>{t(`health.${k}` as MessageKey)}</legend>
            <p className="muted">{t(`health.${k}Hint` as MessageKey)}</p>
            <label className="check">
              <input type="checkbox" checked={d.on} disabled={!writable} onChange={(e) => set(k, { on: e.target.checked })} /> {t('health.enabled', { check: t(`health.${k}` as MessageKey) })}
            </label>
            {d.on && (
              <div className="grid3">
                <Field label={t('health.type')} error={errFor(f('type'))}>
                  {(p) => (
                    <select {...p} value={d.type} disabled={!writable} onChange={(e) => set(k, { type: e.target.value })}>
                      <option value="tcp">TCP</option><option value="http">HTTP</option><option value="command">{t('health.command')}</option>
                    </select>
                  )}
                </Field>
                {d.type !== 'command' && (
                  <Field label={t('health.port')} hint={t('health.portHint')} error={errFor(f('port'))}>
                    {(p) => <input {...p} inputMode="numeric" value={d.port} readOnly={!writable} onChange={(e) => set(k, { port: e.target.value })} />}
                  </Field>
                )}
                {d.type === 'http' && (
                  <Field label={t('health.path')} error={errFor(f('path'))}>
                    {(p) => <input {...p} className="mono" value={d.path} readOnly={!writable} onChange={(e) => set(k, { path: e.target.value })} />}
                  </Field>
                )}
                {d.type === 'http' && (
                  <Field label={t('health.expectStatus')} hint={t('health.expectStatusHint')} error={errFor(f('expect_status'))}>
                    {(p) => <input {...p} inputMode="numeric" value={d.expect_status} readOnly={!writable} onChange={(e) => set(k, { expect_status: e.target.value })} />}
                  </Field>
                )}
                {d.type === 'command' && (
                  <Field label={t('health.command')} error={errFor(f('command'))}>
                    {(p) => <input {...p} className="mono" value={d.command} readOnly={!writable} onChange={(e) => set(k, { command: e.target.value })} />}
                  </Field>
                )}
                <Field label={t('health.interval')} error={errFor(f('interval_s'))}>
                  {(p) => <input {...p} inputMode="numeric" value={d.interval_s} readOnly={!writable} onChange={(e) => set(k, { interval_s: e.target.value })} />}
                </Field>
                <Field label={t('health.timeout')} error={errFor(f('timeout_s'))}>
                  {(p) => <input {...p} inputMode="numeric" value={d.timeout_s} readOnly={!writable} onChange={(e) => set(k, { timeout_s: e.target.value })} />}
                </Field>
                <Field label={t('health.threshold')} error={errFor(f('failure_threshold'))}>
                  {(p) => <input {...p} inputMode="numeric" value={d.failure_threshold} readOnly={!writable} onChange={(e) => set(k, { failure_threshold: e.target.value })} />}
                </Field>
              </div>
            )}
          </fieldset>
        );
      })}
      <div className="card">
        <Actions busy={s.busy} saved={s.saved} dirty={dirty} writable={writable} error={s.text} shown={shown && (s.field ? !!errFor(s.field) : false)} />
      </div>
    </form>
  );
}

// ---- job settings (job and cronjob) ----------------------------------------------------------

// Schedule (cronjob), retries, timeout, history limit, concurrency policy and suspend
// (cronjob), saved with one PATCH; the API's errors show next to `schedule` or `job.<field>`.
// The number inputs carry no min/max: the browser's own validation would block the form with a
// bubble instead of the API's message (the hints state the ranges).
export function JobEditor({ c, base, writable, onSaved }: EditorProps) {
  const { t } = useT();
  const s = useSave(base, c, onSaved);
  const cron = c.kind === 'cronjob';
  const j = { ...JOB_DEFAULTS, ...(c.job ?? {}) };
  const [d, setD, dirty, clean] = useDraft<JobDraft>(
    () => ({ schedule: c.schedule ?? '', retries: String(j.retries), timeout_s: String(j.timeout_s), history_limit: String(j.history_limit), concurrency_policy: j.concurrency_policy, suspend: j.suspend }),
    JSON.stringify([c.schedule, c.job]),
  );
  const [local, setLocal] = useState<string | null>(null);
  const submit = async (e: FormEvent) => {
    e.preventDefault();
    setLocal(null);
    const p = jobPatch(d, c.kind);
    if ('field' in p) return setLocal(p.field);
    if (await s.save(p.body)) clean();
  };
  const errFor = (f: string) => (local === f ? t('scale.notNumber') : s.errFor(f));
  const shown = !!s.field && (s.field === 'schedule' || /^job\.(retries|timeout_s|history_limit|concurrency_policy|suspend)$/.test(s.field));
  const set = (f: keyof JobDraft) => (e: { target: { value: string } }) => setD({ ...d, [f]: e.target.value });
  return (
    <form className="card" onSubmit={submit} aria-label={t('job.settings')} data-testid="job-settings">
      <h2>{t('job.settings')}</h2>
      <div className="grid3">
        {cron && (
          <Field label={t('job.schedule')} hint={t('job.scheduleHint')} error={errFor('schedule')}>
            {(p) => <input {...p} name="schedule" className="mono" value={d.schedule} readOnly={!writable} onChange={set('schedule')} placeholder="*/5 * * * *" />}
          </Field>
        )}
        <Field label={t('job.retries')} hint={t('job.retriesHint')} error={errFor('job.retries')}>
          {(p) => <input {...p} name="retries" type="number" value={d.retries} readOnly={!writable} onChange={set('retries')} />}
        </Field>
        <Field label={t('job.timeout')} hint={t('job.timeoutHint')} error={errFor('job.timeout_s')}>
          {(p) => <input {...p} name="timeout_s" type="number" value={d.timeout_s} readOnly={!writable} onChange={set('timeout_s')} />}
        </Field>
        <Field label={t('job.history')} hint={t('job.historyHint')} error={errFor('job.history_limit')}>
          {(p) => <input {...p} name="history_limit" type="number" value={d.history_limit} readOnly={!writable} onChange={set('history_limit')} />}
        </Field>
        <Field label={t('job.concurrency')} hint={t('job.concurrencyHint')} error={errFor('job.concurrency_policy')}>
          {(p) => (
            <select {...p} name="concurrency_policy" value={d.concurrency_policy} disabled={!writable} onChange={set('concurrency_policy')}>
              {CONCURRENCY_POLICIES.map((x) => <option key={x} value={x}>{t(`job.policy.${x}` as MessageKey)}</option>)}
            </select>
          )}
        </Field>
        {cron && (
          <Field label={t('job.suspend')} error={errFor('job.suspend')}>
            {(p) => (
              <span className="inline">
                <input {...p} type="checkbox" name="suspend" checked={d.suspend} disabled={!writable} onChange={(e) => setD({ ...d, suspend: e.target.checked })} />
                <span>{t('job.suspendLabel')}</span>
              </span>
            )}
          </Field>
        )}
      </div>
      <Actions busy={s.busy} saved={s.saved} dirty={dirty} writable={writable} error={s.text} shown={shown} />
    </form>
  );
}

// ---- settings: source, build, delete ------------------------------------------------------------

export function SettingsEditor({ c, base, writable, onSaved, onDelete }: EditorProps & { onDelete: () => Promise<void> }) {
  const { t } = useT();
  const s = useSave(base, c, onSaved);
  const b = c.build ?? { command: '', start_command: '', language: '', language_version: '', subdir: '' };
  const [d, setD, dirty, clean] = useDraft(
    () => ({ type: c.source?.type ?? 'none', path: c.source?.path ?? '', url: c.source?.url ?? '', ref: c.source?.ref ?? '', archive: c.source?.archive ?? '', command: b.command, start_command: b.start_command, language: b.language, subdir: b.subdir }),
    JSON.stringify([c.source, c.build]),
  );
  const [deleting, setDeleting] = useState(false);
  const [deleteError, setDeleteError] = useState<unknown>(null);
  const save = async (e: FormEvent) => {
    e.preventDefault();
    const ok = await s.save({
      source: { type: d.type, path: d.path, url: d.url, ref: d.ref, archive: d.archive },
      build: { command: d.command, start_command: d.start_command, language: d.language, subdir: d.subdir },
    });
    if (ok) clean();
  };
  const set = (f: keyof typeof d) => (e: { target: { value: string } }) => setD({ ...d, [f]: e.target.value });
  const errFor = s.errFor;
  const shown = !!s.field && /^(source|build)\./.test(s.field);
  const remove = async () => {
    try {
      await onDelete();
    } catch (err) {
      setDeleteError(err);
    }
  };
  return (
    <>
      <form className="card" onSubmit={save} aria-label={t('settings.title')} data-testid="settings">
        <h2>{t('settings.source')}</h2>
        <div className="grid2">
          <Field label={t('settings.sourceType')} error={errFor('source.type')}>
            {(p) => (
              <select {...p} value={d.type} disabled={!writable} onChange={set('type')}>
                {['none', 'dir', 'git', 'archive', 'package'].map((x) => <option key={x} value={x}>{t(`source.${x}` as MessageKey)}</option>)}
              </select>
            )}
          </Field>
          {(d.type === 'dir' || d.type === 'package') && (
            <Field label={t('wizard.path')} error={errFor('source.path')}>
              {(p) => <input {...p} className="mono" value={d.path} readOnly={!writable} onChange={set('path')} />}
            </Field>
          )}
          {d.type === 'git' && (
            <>
              <Field label={t('wizard.url')} error={errFor('source.url')}>
                {(p) => <input {...p} className="mono" value={d.url} readOnly={!writable} onChange={set('url')} />}
              </Field>
              <Field label={t('wizard.ref')} error={errFor('source.ref')}>
                {(p) => <input {...p} className="mono" value={d.ref} readOnly={!writable} onChange={set('ref')} />}
              </Field>
            </>
          )}
          {d.type === 'archive' && (
            <Field label={t('wizard.archive')} error={errFor('source.archive')}>
              {(p) => <input {...p} className="mono" value={d.archive} readOnly={!writable} onChange={set('archive')} />}
            </Field>
          )}
        </div>
        <h2>{t('settings.build')}</h2>
        <div className="grid2">
          <Field label={t('wizard.buildCommand')} hint={t('wizard.buildCommandHint')} error={errFor('build.command')}>
            {(p) => <input {...p} className="mono" value={d.command} readOnly={!writable} onChange={set('command')} />}
          </Field>
          <Field label={t('wizard.startCommand')} hint={t('wizard.startCommandHint')} error={errFor('build.start_command')}>
            {(p) => <input {...p} className="mono" value={d.start_command} readOnly={!writable} onChange={set('start_command')} />}
          </Field>
          <Field label={t('wizard.language')} hint={t('settings.languageHint')} error={errFor('build.language')}>
            {(p) => <input {...p} className="mono" value={d.language} readOnly={!writable} onChange={set('language')} />}
          </Field>
          <Field label={t('settings.subdir')} error={errFor('build.subdir')}>
            {(p) => <input {...p} className="mono" value={d.subdir} readOnly={!writable} onChange={set('subdir')} />}
          </Field>
        </div>
        <Actions busy={s.busy} saved={s.saved} dirty={dirty} writable={writable} error={s.text} shown={shown} />
      </form>
      {writable && (
        <div className="card danger-zone">
          <h2>{t('settings.danger')}</h2>
          <p className="muted">{t('settings.deleteHint')}</p>
          <button type="button" className="danger" onClick={() => setDeleting(true)}>{t('comp.deleteComponent')}</button>
        </div>
      )}
      <Confirm
        open={deleting}
        message={t('comp.deleteConfirm', { name: c.name })}
        confirmLabel={t('common.delete')}
        onConfirm={remove}
        onCancel={() => { setDeleting(false); setDeleteError(null); }}
        error={deleteError}
      />
    </>
  );
}

