import { useEffect, useState } from 'react';
import { api, paths, type AuditEntry, type List } from '../api';
import { useT, type MessageKey } from '../i18n';
import { useLiveResource } from '../live';
import { ErrorBanner, Loading, errorText, formatTime } from '../ui';

export function AuditPage({ team }: { team: string }) {
  const { t, lang } = useT();
  const first = useLiveResource(() => api.list<AuditEntry>(paths.audit(team), 100), [team], () => true);
  const [more, setMore] = useState<AuditEntry[]>([]);
  const [next, setNext] = useState<string | null>(null);
  const [moreError, setMoreError] = useState<string | null>(null);
  const page = first.data as List<AuditEntry> | null;
  // A live reload replaces the first page: start paging again from it.
  useEffect(() => {
    setMore([]);
    setNext(null);
  }, [page]);
  const cursor = next ?? page?.next ?? '';
  const loadMore = async () => {
    try {
      const r = await api.list<AuditEntry>(paths.audit(team) + '?after=' + encodeURIComponent(cursor), 100);
      setMore((m) => [...m, ...r.items]);
      setNext(r.next);
    } catch (err) {
      setMoreError(errorText(err, t));
    }
  };
  const forbidden = (first.error as { status?: number } | null)?.status === 403;
  const items = page ? [...page.items, ...more] : [];
  return (
    <section aria-labelledby="audit-title">
      <h1 id="audit-title">{t('audit.title')}</h1>
      {forbidden ? <p className="muted">{t('audit.forbidden')}</p> : <ErrorBanner error={first.error} />}
      {!page && !first.error && <Loading />}
      {page && items.length === 0 && <p className="muted">{t('audit.empty')}</p>}
      {items.length > 0 && (
        <table className="list">
          <thead><tr><th>{t('audit.time')}</th><th>{t('audit.actor')}</th><th>{t('audit.action')}</th><th>{t('audit.resource')}</th></tr></thead>
          <tbody>
            {items.map((e) => (
              <tr key={String(e.id)}>
                <td className="muted">{formatTime(e.time, lang)}</td>
                <td>{e.actor}</td>
                <td>{['create', 'update', 'delete'].includes(e.action) ? t(`action.${e.action}` as MessageKey) : e.action}</td>
                <td className="mono">{e.resource}</td>
              </tr>
            ))}
          </tbody>
        </table>
      )}
      {moreError && <p className="error-banner" role="alert">{moreError}</p>}
      {cursor && <button type="button" onClick={loadMore}>{t('audit.more')}</button>}
    </section>
  );
}
