// End-to-end test of the web console in headless Chromium (Debian's /usr/bin/chromium driven
// by playwright-core from web/node_modules; no browser download) against a real
// `berth server` on loopback with a temporary data directory.
//
// Journey: log in → create an app → open it → a component created through the API shows up
// live → edit a config var → members → audit → switch to 中文 → log out. No console errors allowed. Screenshots go to
// docs/screenshots/ (login).
//
// Run: node --test tests/e2e/   (BERTH_BIN picks the binary; default build/asan, build/console)
import { existsSync, mkdirSync, mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { CHROMIUM, PASSWORD, SHOTS, WEB_ROOT, launchBrowser, releaseMounts, startServer, stopServer, watchProblems } from './harness.mjs';

const STEP_MS = 15000;

test('console journey: login, app, component, env, members, audit, live, language, logout', { timeout: 110000 }, async () => {
  assert.ok(existsSync(join(WEB_ROOT, 'index.html')), 'build the console first: cd web && npm ci && npm run build');
  assert.ok(existsSync(CHROMIUM), `${CHROMIUM} is missing: apt-get install chromium`);
  mkdirSync(SHOTS, { recursive: true });
  const dataDir = mkdtempSync(join(tmpdir(), 'berth-e2e-'));
  const profile = mkdtempSync(join(tmpdir(), 'berth-e2e-profile-'));
  let server;
  let browser;
  try {
    server = await startServer(dataDir);
    browser = await launchBrowser(profile);
    const page = browser.pages()[0] ?? (await browser.newPage());
    page.setDefaultTimeout(STEP_MS);
    const problems = watchProblems(page);

    // The server serves the console with the right headers.
    const index = await fetch(server.url + '/teams/default/apps');
    assert.equal(index.status, 200);
    assert.match(index.headers.get('content-type'), /text\/html/);
    assert.equal(index.headers.get('cache-control'), 'no-cache');
    const api404 = await fetch(server.url + '/api/v1/nope');
    assert.equal((await api404.json()).code, 'route_not_found');

    // Log in.
    await page.goto(server.url + '/');
    await page.waitForURL('**/login');
    await page.getByLabel('User name').fill('admin');
    await page.getByLabel('Password').fill(PASSWORD);
    await page.screenshot({ path: join(SHOTS, 'login.png') });
    await page.getByRole('button', { name: 'Sign in' }).click();
    await page.waitForURL('**/teams/default/apps');
    await page.getByRole('heading', { name: 'Apps', level: 1 }).waitFor();
    await page.getByText('Live', { exact: true }).waitFor();

    // Create an app (a bad name first: the error shows next to the name field).
    const appForm = page.getByRole('form', { name: 'New app' });
    await appForm.getByLabel('Name', { exact: true }).fill('Shop_1');
    await appForm.getByRole('button', { name: 'Create' }).click();
    await appForm.locator('.field.has-error .field-error').waitFor();
    await appForm.getByLabel('Name', { exact: true }).fill('shop');
    await appForm.getByLabel('Display name').fill('Shop');
    await appForm.getByLabel('Description').fill('The online shop');
    await appForm.getByRole('button', { name: 'Create' }).click();
    await page.getByRole('link', { name: 'shop', exact: true }).waitFor();

    // Open it; a component without a source (made through the API: the wizard, which builds
    // from source, is covered by deploy.test.mjs) appears live.
    await page.getByRole('link', { name: 'shop', exact: true }).click();
    await page.waitForURL('**/teams/default/apps/shop');
    await page.getByText('No components yet.').waitFor();
    const tok0 = await page.evaluate(() => localStorage.getItem('berth.token'));
    const made = await fetch(server.url + '/api/v1/teams/default/apps/shop/components', {
      method: 'POST',
      headers: { Authorization: `Bearer ${tok0}`, 'Content-Type': 'application/json' },
      body: JSON.stringify({ name: 'web', ports: [{ port: 8080 }], env: { GREETING: 'hello' }, replicas: 2 }),
    });
    assert.equal(made.status, 201);
    const row = page.getByTestId('components').getByRole('row', { name: /web/ });
    await row.waitFor();
    await row.getByText('0/2 ready').waitFor();

    // The component page: overview, then edit an env var.
    await page.getByTestId('components').getByRole('link', { name: 'web', exact: true }).click();
    await page.waitForURL('**/apps/shop/components/web');
    await page.getByRole('heading', { name: 'Settings' }).waitFor();
    await page.getByText('8080/http').waitFor();
    await page.getByRole('tab', { name: 'Config vars' }).click();
    const env = page.getByTestId('config-vars');
    await env.getByRole('button', { name: 'Edit GREETING' }).click();
    await env.getByLabel('Edit GREETING').fill('hi there');
    await env.getByRole('button', { name: 'Save' }).click();
    await env.getByText('GREETING set.').waitFor();
    const token = await page.evaluate(() => localStorage.getItem('berth.token'));
    const comp = await (await fetch(server.url + '/api/v1/teams/default/apps/shop/components/web', {
      headers: { Authorization: `Bearer ${token}` },
    })).json();
    assert.deepEqual(comp.env, { GREETING: 'hi there' });

    // Members: add a user as viewer, make them a developer, remove them (with confirmation).
    const api = (method, path, body) => fetch(server.url + '/api/v1' + path, {
      method,
      headers: { Authorization: `Bearer ${token}`, 'Content-Type': 'application/json' },
      body: body === undefined ? undefined : JSON.stringify(body),
    });
    assert.equal((await api('POST', '/users', { name: 'alice', password: 'alice-pass-123' })).status, 201);
    await page.getByRole('link', { name: 'Members' }).click();
    await page.waitForURL('**/teams/default/members');
    const memberForm = page.getByRole('form', { name: 'Add member' });
    await memberForm.getByLabel('User', { exact: true }).fill('alice');
    await memberForm.getByLabel('Role', { exact: true }).selectOption('viewer');
    await memberForm.getByRole('button', { name: 'Add member' }).click();
    const roleOfAlice = page.getByLabel('Role of alice');
    await roleOfAlice.waitFor();
    await roleOfAlice.selectOption('developer');
    await page.waitForFunction(async (tok) => {
      const r = await fetch('/api/v1/teams/default/members/alice', { headers: { Authorization: `Bearer ${tok}` } });
      return (await r.json()).role === 'developer';
    }, token);
    await page.getByRole('row', { name: /alice/ }).getByRole('button', { name: 'Remove' }).click();
    await page.getByRole('dialog').getByRole('button', { name: 'Remove' }).click();
    await roleOfAlice.waitFor({ state: 'detached' });

    // The audit log shows what happened.
    await page.getByRole('link', { name: 'Audit log' }).click();
    await page.getByRole('cell', { name: 'apps/shop/components/web' }).first().waitFor();

    // Live: an app created elsewhere appears without a reload; delete it with confirmation.
    await page.getByRole('link', { name: 'Apps', exact: true }).click();
    await page.getByRole('link', { name: 'shop', exact: true }).waitFor();
    assert.equal((await api('POST', '/teams/default/apps', { name: 'blog' })).status, 201);
    await page.getByRole('link', { name: 'blog', exact: true }).waitFor();
    await page.getByRole('button', { name: 'Delete app blog' }).click();
    await page.getByRole('dialog').getByRole('button', { name: 'Delete' }).click();
    await page.getByRole('link', { name: 'blog', exact: true }).waitFor({ state: 'detached' });
    assert.equal((await api('GET', '/teams/default/apps/blog')).status, 404);
    await page.getByRole('link', { name: 'shop', exact: true }).click();
    await page.getByTestId('components').getByRole('link', { name: 'web', exact: true }).click();
    await page.getByRole('heading', { name: 'Settings' }).waitFor();

    // Switch to Chinese.
    await page.getByTestId('language').first().selectOption('zh');
    await page.getByRole('tab', { name: '配置变量' }).waitFor();
    await page.getByRole('button', { name: '退出登录' }).waitFor();
    await page.getByRole('link', { name: '应用' }).first().waitFor();
    await page.getByRole('tab', { name: '概览' }).click();
    await page.getByRole('heading', { name: '设置' }).waitFor();

    // Log out: back at the login page, in Chinese, and the token no longer works.
    await page.getByRole('button', { name: '退出登录' }).click();
    await page.waitForURL('**/login');
    await page.getByRole('heading', { name: '登录 berth' }).waitFor();
    const after = await fetch(server.url + '/api/v1/whoami', { headers: { Authorization: `Bearer ${token}` } });
    assert.equal(after.status, 401);

    // Chromium logs every failed request; the one deliberate 400 (the bad app name) is expected.
    const bad = problems.findIndex((p) => /status of 400/.test(p));
    if (bad >= 0) problems.splice(bad, 1);
    assert.deepEqual([...problems], [], `no console errors during the journey (failed responses: ${problems.http.join("; ")})`);

    // A stale token (401 from the API) leads back to the login page.
    await page.evaluate(() => localStorage.setItem('berth.token', 'not-a-valid-token'));
    await page.goto(server.url + '/teams/default/apps');
    await page.waitForURL('**/login');
    assert.equal(await page.evaluate(() => localStorage.getItem('berth.token')), null);
  } finally {
    if (browser) await browser.close().catch(() => {});
    await stopServer(server?.proc);
    releaseMounts(dataDir);
    rmSync(dataDir, { recursive: true, force: true });
    rmSync(profile, { recursive: true, force: true });
  }
});
