// End-to-end test of the platform screens (docs/security.md "Identity, teams and the gateway")
// in headless Chromium against a real `berth server` (harness.mjs, gateway off).
//
// Journey: the administrator opens Platform → lets every user create teams (2 each, a default
// quota) → assigns shop.example.com to team default and releases it again (confirmed) → a TCP
// rule whose listener the gateway reports failing shows the bind error on the Gateway page, and
// its recovery (reported through the API as the gateway would) → 中文 → a user with no team
// sees "New team" but no "Platform", creates a team and lands in it, and the API says it has
// the default quota. Screenshots: platform.png, gateway-tcp-failed.png. About 10 s.
import { existsSync, mkdirSync, mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { test } from 'node:test';
import assert from 'node:assert/strict';
import {
  CHROMIUM, PASSWORD, SHOTS, WEB_ROOT, apiClient, eventually, launchBrowser, login, startServer, stopServer, watchProblems, releaseMounts,
} from './harness.mjs';

const STEP_MS = 30000;

test('platform settings, domain owners, a TCP rule that cannot listen, a new team', { timeout: 100000 }, async () => {
  assert.ok(existsSync(join(WEB_ROOT, 'index.html')), 'build the console first: cd web && npm ci && npm run build');
  assert.ok(existsSync(CHROMIUM), `${CHROMIUM} is missing: apt-get install chromium`);
  mkdirSync(SHOTS, { recursive: true });
  const dataDir = mkdtempSync(join(tmpdir(), 'berth-e2e-platform-'));
  const profile = mkdtempSync(join(tmpdir(), 'berth-e2e-platform-profile-'));
  const userProfile = mkdtempSync(join(tmpdir(), 'berth-e2e-platform-user-'));
  let server;
  let browser;
  let userBrowser;
  try {
    server = await startServer(dataDir);
    browser = await launchBrowser(profile);
    const page = browser.pages()[0] ?? (await browser.newPage());
    page.setDefaultTimeout(STEP_MS);
    const problems = watchProblems(page);
    await login(page, server.url, 'admin', PASSWORD);
    const api = apiClient(server.url, await page.evaluate(() => localStorage.getItem('berth.token')));

    // Platform settings: anyone may create teams, two each, with a default quota.
    await page.getByTestId('nav-platform').click();
    await page.getByRole('heading', { name: 'Platform settings', level: 1 }).waitFor();
    const form = page.getByTestId('platform-settings');
    assert.equal(await form.getByLabel('Who may create teams').inputValue(), 'admins');
    await form.getByLabel('Who may create teams').selectOption('everyone');
    await form.getByLabel('Teams a user may create').fill('2');
    await form.getByLabel('Instances').fill('4');
    await form.getByLabel('Memory (MB)').fill('x');
    await form.getByRole('button', { name: 'Save' }).click();
    await form.getByText('Enter a whole number').waitFor();
    await form.getByLabel('Memory (MB)').fill('1024');
    await form.getByRole('button', { name: 'Save' }).click();
    await form.getByText('Saved').waitFor();
    const settings = (await api('GET', '/settings')).body;
    assert.deepEqual([settings.team_creation, settings.max_teams_per_user, settings.default_team_quota],
      ['everyone', 2, { instances: 4, memory_mb: 1024, cpu_millis: 0, disk_mb: 0 }]);

    // Domains: assign one to team default, then release it.
    const domains = page.getByTestId('domain-owners');
    await domains.getByText('No domain belongs to a team yet.').waitFor();
    await domains.getByLabel('Domain').fill('shop.example.com');
    await domains.getByLabel('Team').selectOption('default');
    await domains.getByRole('button', { name: 'Assign' }).click();
    await domains.getByRole('cell', { name: 'shop.example.com', exact: true }).waitFor();
    await domains.getByText('assigned by admin').waitFor();
    assert.equal((await api('GET', '/gateway/domains')).body.items[0].team, 'default');
    await page.screenshot({ path: join(SHOTS, 'platform.png'), fullPage: true });
    await page.getByRole('button', { name: 'Release shop.example.com' }).click();
    await page.getByRole('dialog').getByRole('button', { name: 'Release' }).click();
    await domains.getByText('No domain belongs to a team yet.').waitFor();

    // A TCP rule whose port another process holds: the gateway's report (sent here as the gateway
    // sends it) shows on the rule; its recovery too, without reloading the page.
    assert.equal((await api('POST', '/teams/default/apps', { name: 'shop' })).status, 201);
    assert.equal((await api('POST', '/teams/default/apps/shop/components', { name: 'db', ports: [{ port: 5432, protocol: 'tcp' }] })).status, 201);
    assert.equal((await api('POST', '/teams/default/apps/shop/tcp-rules', { listen_port: 15432, component: 'db' })).status, 201);
    const route = 'default/shop/db/tcp-15432';
    const error = 'cannot listen on 127.0.0.1:15432: Address already in use';
    assert.equal((await api('PUT', '/gateway/status', { revision: 1, tcp: [{ route, address: '127.0.0.1:15432', listening: false, error }] })).status, 200);
    await page.goto(server.url + '/teams/default/gateway');
    const cell = page.getByTestId('tcp-status-tcp-15432');
    await cell.getByText('cannot listen', { exact: true }).waitFor();
    await cell.getByText(error).waitFor();
    await page.screenshot({ path: join(SHOTS, 'gateway-tcp-failed.png'), fullPage: true });
    const events = (await api('GET', '/teams/default/apps/shop/components/db/events')).body.items;
    assert.ok(events.some((e) => e.reason === 'TcpListenFailed'), JSON.stringify(events));
    assert.equal((await api('PUT', '/gateway/status', { revision: 2, tcp: [{ route, address: '127.0.0.1:15432', listening: true }] })).status, 200);
    await cell.getByText('listening', { exact: true }).waitFor({ timeout: 10000 });

    // In Chinese.
    await page.getByTestId('language').first().selectOption('zh');
    await cell.getByText('监听中').waitFor();
    await page.getByTestId('nav-platform').click();
    await page.getByRole('heading', { name: '平台设置', level: 1 }).waitFor();
    await page.getByLabel('谁可以创建团队').waitFor();
    await page.getByTestId('language').first().selectOption('en');

    // A user with no team: "New team", no "Platform".
    assert.equal((await api('POST', '/users', { name: 'uma', password: 'uma-pass-1234' })).status, 201);
    userBrowser = await launchBrowser(userProfile);
    const upage = userBrowser.pages()[0] ?? (await userBrowser.newPage());
    upage.setDefaultTimeout(STEP_MS);
    const uproblems = watchProblems(upage);
    await upage.goto(server.url + '/login');
    await upage.getByLabel('User name').fill('uma');
    await upage.getByLabel('Password').fill('uma-pass-1234');
    await upage.getByRole('button', { name: 'Sign in' }).click();
    await upage.getByText('You are not a member of any team yet.').waitFor();
    assert.equal(await upage.getByTestId('nav-platform').count(), 0, 'no platform link for a user');
    await upage.getByRole('link', { name: 'New team' }).click();
    await upage.getByLabel('Team name').fill('uma-team');
    await upage.getByRole('button', { name: 'Create' }).click();
    await upage.waitForURL('**/teams/uma-team/apps');
    await eventually(async () => (await upage.getByTestId('team').inputValue()) === 'uma-team', 'the new team in the switcher', 10000);
    const team = (await api('GET', '/teams/uma-team')).body;
    assert.deepEqual([team.created_by, team.quota], ['uma', { instances: 4, memory_mb: 1024, cpu_millis: 0, disk_mb: 0 }]);
    assert.deepEqual([...uproblems], [], `no console errors for the user (failed responses: ${uproblems.http.join('; ')})`);

    assert.deepEqual([...problems], [], `no console errors (failed responses: ${problems.http.join('; ')})`);
  } finally {
    if (userBrowser) await userBrowser.close().catch(() => {});
    if (browser) await browser.close().catch(() => {});
    await stopServer(server?.proc);
    releaseMounts(dataDir);
    for (const d of [dataDir, profile, userProfile]) rmSync(d, { recursive: true, force: true });
  }
});
