// Shared pieces: error messages, a confirmation dialog, form fields with their API error.
import { useEffect, useId, useRef, type ReactNode } from 'react';
import { ApiError } from './api';
import { useT } from './i18n';

export function errorText(err: unknown, t: ReturnType<typeof useT>['t']): string {
  if (err instanceof ApiError) {
    if (err.code === 'network') return t('common.networkError', { message: err.message });
    return err.message;
  }
  return err instanceof Error ? err.message : String(err);
}

export function ErrorBanner({ error }: { error: unknown }) {
  const { t } = useT();
  if (!error) return null;
  return (
    <p className="error-banner" role="alert">
      {errorText(error, t)}
    </p>
  );
}

// A labelled form field; `error` is shown under it and linked with aria-describedby.
export function Field({
  label,
  hint,
  error,
  children,
}: {
  label: string;
  hint?: string;
  error?: string | null;
  children: (props: { id: string; 'aria-describedby'?: string; 'aria-invalid'?: boolean }) => ReactNode;
}) {
  const id = useId();
  const hintId = hint ? id + '-hint' : undefined;
  const errId = error ? id + '-err' : undefined;
  const describedBy = [hintId, errId].filter(Boolean).join(' ') || undefined;
  return (
    <div className={'field' + (error ? ' has-error' : '')}>
      <label htmlFor={id}>{label}</label>
      {children({ id, 'aria-describedby': describedBy, 'aria-invalid': error ? true : undefined })}
      {hint && (
        <small id={hintId} className="hint">
          {hint}
        </small>
      )}
      {error && (
        <small id={errId} className="field-error" role="alert">
          {error}
        </small>
      )}
    </div>
  );
}

// A modal confirmation (native <dialog>: focus stays inside, Escape cancels).
export function Confirm({
  open,
  message,
  confirmLabel,
  onConfirm,
  onCancel,
  busy,
  error,
}: {
  open: boolean;
  message: string;
  confirmLabel: string;
  onConfirm: () => void;
  onCancel: () => void;
  busy?: boolean;
  error?: unknown;
}) {
  const { t } = useT();
  const ref = useRef<HTMLDialogElement>(null);
  useEffect(() => {
    const d = ref.current;
    if (!d) return;
    if (open && !d.open) d.showModal();
    if (!open && d.open) d.close();
  }, [open]);
  return (
    <dialog ref={ref} className="confirm" onCancel={(e) => { e.preventDefault(); onCancel(); }} aria-labelledby="confirm-title">
      <h2 id="confirm-title">{t('common.confirmTitle')}</h2>
      <p>{message}</p>
      <ErrorBanner error={error} />
      <div className="row end">
        <button type="button" onClick={onCancel} autoFocus>
          {t('common.cancel')}
        </button>
        <button type="button" className="danger" onClick={onConfirm} disabled={busy}>
          {confirmLabel}
        </button>
      </div>
    </dialog>
  );
}

export function Loading() {
  const { t } = useT();
  return <p className="muted" aria-live="polite">{t('common.loading')}</p>;
}

export function formatTime(s: string | undefined, lang: string): string {
  if (!s) return '';
  const d = new Date(s);
  if (isNaN(d.getTime())) return s;
  return d.toLocaleString(lang === 'zh' ? 'zh-CN' : 'en-GB', { dateStyle: 'short', timeStyle: 'medium' });
}
