import { languages, useT, type Lang } from './i18n';

export function LanguageSwitch() {
  const { lang, setLang, t } = useT();
  return (
    <label className="lang-switch">
      <span>{t('nav.language')}</span>
      <select aria-label={t('nav.language')} value={lang} onChange={(e) => setLang(e.target.value as Lang)} data-testid="language">
        {languages.map((l) => (
          <option key={l.code} value={l.code}>
            {l.label}
          </option>
        ))}
      </select>
    </label>
  );
}
