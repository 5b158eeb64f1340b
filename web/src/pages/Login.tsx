import { useState, type FormEvent } from 'react';
import { api, session } from '../api';
import { useT } from '../i18n';
import { ErrorBanner, Field } from '../ui';
import { LanguageSwitch } from '../LanguageSwitch';

export function Login({ onLoggedIn }: { onLoggedIn: () => void }) {
  const { t } = useT();
  const [user, setUser] = useState('');
  const [password, setPassword] = useState('');
  const [busy, setBusy] = useState(false);
  const [error, setError] = useState<unknown>(null);

  const submit = async (e: FormEvent) => {
    e.preventDefault();
    setBusy(true);
    setError(null);
    try {
      const r = await api.login(user.trim(), password);
      const name = typeof r.user === 'string' ? r.user : r.user?.name ?? user.trim();
      session.set(r.token, name);
      onLoggedIn();
    } catch (err) {
      setError(err);
    } finally {
      setBusy(false);
    }
  };

  return (
    <main className="login" id="main">
      <form onSubmit={submit} className="card login-card" aria-labelledby="login-title">
        <div className="brand">
          <img src="/favicon.svg" alt="" width="32" height="32" />
          <div>
            <h1 id="login-title">{t('login.title')}</h1>
            <p className="muted">{t('app.tagline')}</p>
          </div>
        </div>
        <Field label={t('login.user')}>
          {(p) => <input {...p} name="user" autoComplete="username" value={user} onChange={(e) => setUser(e.target.value)} required autoFocus />}
        </Field>
        <Field label={t('login.password')}>
          {(p) => (
            <input {...p} name="password" type="password" autoComplete="current-password" value={password} onChange={(e) => setPassword(e.target.value)} required />
          )}
        </Field>
        <ErrorBanner error={error} />
        <button type="submit" className="primary" disabled={busy}>
          {busy ? t('login.signingIn') : t('login.submit')}
        </button>
        <LanguageSwitch />
      </form>
    </main>
  );
}
