// The team's TLS certificates: the list (domains, expiry — expired and expiring within 30 days
// highlighted — and which rules use each), upload or renew (PEM pasted or read from a file in
// the browser) and delete with confirmation. The API never returns a private key, and the
// form never shows one it read from a file.
import { useRef, useState, type ChangeEvent, type FormEvent } from 'react';
import { api, errorField, type List } from '../api';
import { expiryOf, gwPaths, ruleLabel, type Certificate, type HttpRule } from '../gateway';
import { useT } from '../i18n';
import { useLiveResource } from '../live';
import { Link, to } from '../router';
import { Confirm, ErrorBanner, Field, Loading, errorText, formatTime } from '../ui';

export function CertificatesPage({ team, writable }: { team: string; writable: boolean }) {
  const { t, lang } = useT();
  const data = useLiveResource(
    async () => {
      const [certs, rules] = await Promise.all([api.list<Certificate>(gwPaths.certificates(team)), api.list<HttpRule>(gwPaths.httpRules(team))]);
      return { certs: (certs as List<Certificate>).items, rules: rules.items };
    },
    [team],
    (l) => l.kind === 'certificate' || l.kind === 'http_rule',
  );
  const [removing, setRemoving] = useState<Certificate | null>(null);
  const [removeError, setRemoveError] = useState<unknown>(null);
  const [renewing, setRenewing] = useState<Certificate | null>(null);
  const formRef = useRef<HTMLFormElement>(null);
  const now = new Date();

  const remove = async () => {
    if (!removing) return;
    try {
      await api.del(gwPaths.certificate(team, removing.name) + '?revision=' + removing.revision);
      setRemoving(null);
      setRemoveError(null);
      data.reload();
    } catch (err) {
      setRemoveError(err);
    }
  };
  const d = data.data;
  return (
    <>
      <ErrorBanner error={data.error} />
      <div className="card">
        <h2>{t('cert.title')}</h2>
        {!d && !data.error && <Loading />}
        {d && d.certs.length === 0 && <p className="muted">{t('cert.empty')}</p>}
        {d && d.certs.length > 0 && (
          <table className="list" data-testid="certificates">
            <thead>
              <tr><th>{t('common.name')}</th><th>{t('cert.domains')}</th><th>{t('cert.expires')}</th><th>{t('cert.issuer')}</th><th>{t('cert.usedBy')}</th>{writable && <th><span className="sr-only">{t('common.actions')}</span></th>}</tr>
            </thead>
            <tbody>
              {d.certs.map((c) => {
                const e = expiryOf(c, now);
                const users = d.rules.filter((r) => r.certificate === c.name);
                return (
                  <tr key={c.name} className={'expiry-' + e.state} data-expiry={e.state}>
                    <td className="mono">{c.name}<div className="muted small" title={c.fingerprint_sha256}>{t('cert.fingerprint', { fp: c.fingerprint_sha256.slice(0, 16) })}</div></td>
                    <td className="mono small">{c.domains.map((x) => <div key={x}>{x}</div>)}</td>
                    <td>
                      <div>{formatTime(c.not_after, lang)}</div>
                      <span className={'badge expiry-badge-' + e.state} data-testid="expiry">
                        {e.state === 'expired' ? t('cert.expired') : e.state === 'expiring' ? t('cert.expiresIn', { days: e.days }) : e.state === 'ok' ? t('cert.validFor', { days: e.days }) : t('cert.unknownExpiry')}
                      </span>
                    </td>
                    <td className="small">{c.issuer}</td>
                    <td className="small">
                      {users.length === 0 ? <span className="muted">{t('cert.unused')}</span> : users.map((r) => (
                        <div key={r.app + '/' + r.name}><Link className="mono" href={to.rule(team, 'http', r.app, r.name)}>{ruleLabel(r)}</Link></div>
                      ))}
                    </td>
                    {writable && (
                      <td className="actions">
                        <div className="row">
                          <button type="button" className="small" onClick={() => { setRenewing(c); formRef.current?.scrollIntoView(); }} aria-label={t('cert.renewLabel', { name: c.name })}>{t('cert.renew')}</button>
                          <button type="button" className="small danger" onClick={() => setRemoving(c)} aria-label={t('cert.deleteLabel', { name: c.name })}>{t('common.delete')}</button>
                        </div>
                      </td>
                    )}
                  </tr>
                );
              })}
            </tbody>
          </table>
        )}
        <p className="muted small">{t('cert.keyNever')}</p>
      </div>
      {writable && <UploadForm key={renewing?.name ?? ''} team={team} renewing={renewing} formRef={formRef} onDone={() => { setRenewing(null); data.reload(); }} onCancelRenew={() => setRenewing(null)} />}
      <Confirm open={removing !== null} message={t('cert.deleteConfirm', { name: removing?.name ?? '' })} confirmLabel={t('common.delete')} onConfirm={remove} onCancel={() => { setRemoving(null); setRemoveError(null); }} error={removeError} />
    </>
  );
}

function UploadForm({ team, renewing, formRef, onDone, onCancelRenew }: { team: string; renewing: Certificate | null; formRef: React.RefObject<HTMLFormElement | null>; onDone: () => void; onCancelRenew: () => void }) {
  const { t } = useT();
  const [name, setName] = useState(renewing?.name ?? '');
  const [cert, setCert] = useState('');
  const [key, setKey] = useState('');
  // A key read from a file is kept but not shown: only its file name and size are.
  const [keyFile, setKeyFile] = useState<{ name: string; size: number } | null>(null);
  const [error, setError] = useState<{ field: string | null; text: string } | null>(null);
  const [busy, setBusy] = useState(false);
  const [done, setDone] = useState<string | null>(null);
  const keyInput = useRef<HTMLInputElement>(null);
  // Changing the input an error names clears that error.
  const clearFor = (f: string) => setError((e) => (e?.field === f ? null : e));

  const readCert = async (e: ChangeEvent<HTMLInputElement>) => {
    const f = e.target.files?.[0];
    if (!f) return;
    setCert(await f.text());
    clearFor('cert_pem');
  };
  const readKey = async (e: ChangeEvent<HTMLInputElement>) => {
    const f = e.target.files?.[0];
    if (!f) return;
    setKey(await f.text());
    setKeyFile({ name: f.name, size: f.size });
    clearFor('key_pem');
  };
  const clearKey = () => {
    setKey('');
    setKeyFile(null);
    if (keyInput.current) keyInput.current.value = '';
  };
  const submit = async (e: FormEvent) => {
    e.preventDefault();
    setError(null);
    setDone(null);
    if (!name.trim()) return setError({ field: 'name', text: t('cert.needName') });
    if (!cert.trim()) return setError({ field: 'cert_pem', text: t('cert.needCert') });
    if (!key.trim()) return setError({ field: 'key_pem', text: t('cert.needKey') });
    setBusy(true);
    try {
      const body = { name: name.trim(), cert_pem: cert, key_pem: key };
      const c = renewing
        ? await api.put<Certificate>(gwPaths.certificate(team, renewing.name), { ...body, revision: renewing.revision })
        : await api.post<Certificate>(gwPaths.certificates(team), body);
      setDone(t(renewing ? 'cert.renewed' : 'cert.uploaded', { name: c.name }));
      setName('');
      setCert('');
      clearKey();
      onDone();
    } catch (err) {
      setError({ field: errorField(err), text: errorText(err, t) });
    } finally {
      setBusy(false);
    }
  };
  const errFor = (f: string) => (error?.field === f ? error.text : null);
  const shown = !!error?.field && ['name', 'cert_pem', 'key_pem'].includes(error.field);
  const title = renewing ? t('cert.renewTitle', { name: renewing.name }) : t('cert.upload');
  return (
    <form ref={formRef} className="card" onSubmit={submit} aria-label={title} data-testid="certificate-form" noValidate>
      <h2>{title}</h2>
      <p className="muted">{t('cert.uploadHint')}</p>
      <Field label={t('common.name')} hint={t('cert.nameHint')} error={errFor('name')}>
        {(p) => <input {...p} className="mono" value={name} readOnly={!!renewing} onChange={(e) => { setName(e.target.value); clearFor('name'); }} />}
      </Field>
      <div className="grid2">
        <div>
          <Field label={t('cert.certPem')} hint={t('cert.certPemHint')} error={errFor('cert_pem')}>
            {(p) => <textarea {...p} className="mono" rows={8} spellCheck={false} value={cert} placeholder="-----BEGIN CERTIFICATE-----" onChange={(e) => { setCert(e.target.value); clearFor('cert_pem'); }} />}
          </Field>
          <Field label={t('cert.certFile')}>
            {(p) => <input {...p} type="file" accept=".pem,.crt,.cer,text/plain" onChange={readCert} />}
          </Field>
        </div>
        <div>
          {keyFile ? (
            <div className={'field' + (errFor('key_pem') ? ' has-error' : '')}>
              <span className="label-like">{t('cert.keyPem')}</span>
              <p className="key-loaded" role="status">{t('cert.keyLoaded', { file: keyFile.name, size: keyFile.size })} <button type="button" className="small" onClick={clearKey}>{t('cert.clearKey')}</button></p>
              {errFor('key_pem') && <small className="field-error" role="alert">{errFor('key_pem')}</small>}
            </div>
          ) : (
            <Field label={t('cert.keyPem')} hint={t('cert.keyPemHint')} error={errFor('key_pem')}>
              {(p) => <textarea {...p} className="mono secret" rows={8} spellCheck={false} autoComplete="off" value={key} placeholder="-----BEGIN PRIVATE KEY-----" onChange={(e) => { setKey(e.target.value); clearFor('key_pem'); }} />}
            </Field>
          )}
          <Field label={t('cert.keyFile')}>
            {(p) => <input {...p} ref={keyInput} type="file" accept=".pem,.key,text/plain" onChange={readKey} />}
          </Field>
        </div>
      </div>
      {error && !shown && <p className="error-banner" role="alert">{error.text}</p>}
      <div className="row">
        <button type="submit" className="primary" disabled={busy}>{busy ? t('cert.uploading') : renewing ? t('cert.renew') : t('cert.uploadButton')}</button>
        {renewing && <button type="button" onClick={onCancelRenew}>{t('common.cancel')}</button>}
        {done && <span className="ok" role="status">{done}</span>}
      </div>
    </form>
  );
}
