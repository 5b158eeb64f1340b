import { useState, type FormEvent } from 'react';
import { api, can, fieldOf, paths, type List, type Member, type Role } from '../api';
import { useT, type MessageKey } from '../i18n';
import { useLiveResource } from '../live';
import { Confirm, ErrorBanner, Field, Loading, errorText } from '../ui';

const ROLES: Role[] = ['owner', 'admin', 'developer', 'viewer'];

export function MembersPage({ team, role, me }: { team: string; role?: Role; me: string }) {
  const { t } = useT();
  const members = useLiveResource(() => api.list<Member>(paths.members(team)), [team], (l) => l.kind === 'member');
  const manage = can.manageMembers(role);
  // Admins manage everyone except owners; only owners make or remove owners.
  const assignable = ROLES.filter((r) => r !== 'owner' || can.makeOwners(role));
  const mayEdit = (m: Member) => manage && (m.role !== 'owner' || can.makeOwners(role));
  const [user, setUser] = useState('');
  const [newRole, setNewRole] = useState<Role>('developer');
  const [formError, setFormError] = useState<{ field: string | null; text: string } | null>(null);
  const [rowError, setRowError] = useState<unknown>(null);
  const [busy, setBusy] = useState(false);
  const [removing, setRemoving] = useState<string | null>(null);

  const add = async (e: FormEvent) => {
    e.preventDefault();
    setBusy(true);
    setFormError(null);
    try {
      await api.post(paths.members(team), { user: user.trim(), role: newRole });
      setUser('');
      members.reload();
    } catch (err) {
      setFormError({ field: fieldOf(err, ['user', 'role']), text: errorText(err, t) });
    } finally {
      setBusy(false);
    }
  };
  const change = async (m: Member, r: Role) => {
    setRowError(null);
    try {
      await api.patch(paths.member(team, m.user), { role: r, revision: m.revision });
      members.reload();
    } catch (err) {
      setRowError(err);
      members.reload();
    }
  };
  const remove = async () => {
    if (!removing) return;
    try {
      await api.del(paths.member(team, removing));
      setRemoving(null);
      members.reload();
    } catch (err) {
      setRowError(err);
      setRemoving(null);
    }
  };
  const errFor = (f: string) => (formError && formError.field === f ? formError.text : null);

  return (
    <section aria-labelledby="members-title">
      <h1 id="members-title">{t('members.title')}</h1>
      {manage && (
        <form className="card inline-form" onSubmit={add} aria-label={t('members.add')}>
          <div className="grid3">
            <Field label={t('members.user')} error={errFor('user')}>
              {(p) => <input {...p} name="user" value={user} onChange={(e) => setUser(e.target.value)} required />}
            </Field>
            <Field label={t('members.role')} error={errFor('role')}>
              {(p) => (
                <select {...p} value={newRole} onChange={(e) => setNewRole(e.target.value as Role)}>
                  {assignable.map((r) => <option key={r} value={r}>{t(`role.${r}` as MessageKey)}</option>)}
                </select>
              )}
            </Field>
            <div className="field bottom">
              <button type="submit" className="primary" disabled={busy}>{busy ? t('members.adding') : t('members.add')}</button>
            </div>
          </div>
          {formError && !formError.field && <p className="error-banner" role="alert">{formError.text}</p>}
        </form>
      )}
      <ErrorBanner error={rowError} />
      <ErrorBanner error={members.error} />
      {!members.data && !members.error && <Loading />}
      {members.data && (
        <table className="list">
          <thead><tr><th>{t('members.user')}</th><th>{t('members.role')}</th>{manage && <th><span className="sr-only">{t('common.actions')}</span></th>}</tr></thead>
          <tbody>
            {(members.data as List<Member>).items.map((m) => (
              <tr key={m.user}>
                <td className="strong">{m.user}{m.user === me && <span className="muted"> ★</span>}</td>
                <td>
                  {mayEdit(m) ? (
                    <select aria-label={t('members.roleOf', { user: m.user })} value={m.role} onChange={(e) => change(m, e.target.value as Role)}>
                      {(m.role === 'owner' ? ROLES : assignable).map((r) => <option key={r} value={r}>{t(`role.${r}` as MessageKey)}</option>)}
                    </select>
                  ) : t(`role.${m.role}` as MessageKey)}
                </td>
                {manage && (
                  <td className="actions">
                    {mayEdit(m) && (
                      <button type="button" className="danger small" onClick={() => setRemoving(m.user)}>{t('members.remove')}</button>
                    )}
                  </td>
                )}
              </tr>
            ))}
          </tbody>
        </table>
      )}
      <Confirm
        open={removing !== null}
        message={t('members.removeConfirm', { user: removing ?? '', team })}
        confirmLabel={t('members.remove')}
        onConfirm={remove}
        onCancel={() => setRemoving(null)}
      />
    </section>
  );
}
