// End-to-end test of the component tabs Heroku and Render users look for first — Processes,
// Config vars, Releases — in headless Chromium against a real `berth server` (harness.mjs) with
// its real builder and runtime.
//
// Journey: a tiny Python web service built from a directory (v1) → Processes: its instance
// running v1, ready, its uptime ticking, 0 restarts → Config vars: values hidden until
// revealed (the secret is not in the page), a bad name refused next to the field, FOO=bar added
// (one PATCH, one `update` operation that replaces the instance once), a value edited, a
// variable removed with confirmation → a second build (v2) → Releases: v2 current, by admin,
// from the directory, v1 rolled back to with confirmation, the rollback operation succeeding
// and Processes showing v1 → 中文 → a viewer sees names and releases but no edit, add, remove
// or roll back. No console errors but the deliberate refusal. About 20 s.
import { existsSync, mkdirSync, mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { test } from 'node:test';
import assert from 'node:assert/strict';
import {
  CHROMIUM, PASSWORD, SHOTS, WEB_ROOT, apiClient, eventually, launchBrowser, login, reapRuntime,
  releaseMounts, startServer, stopServer, watchProblems,
} from './harness.mjs';

const STEP_MS = 30000;
const BUILD_MS = 90000;

const SERVER_PY = `import http.server, os
class H(http.server.BaseHTTPRequestHandler):
    def do_GET(self):
        self.send_response(200); self.end_headers(); self.wfile.write(b"ok")
    def log_message(self, *a): pass
http.server.HTTPServer(("127.0.0.1", int(os.environ["PORT"])), H).serve_forever()
`;

test('processes, config vars and releases in the console', { timeout: 150000 }, async () => {
  assert.ok(existsSync(join(WEB_ROOT, 'index.html')), 'build the console first: cd web && npm ci && npm run build');
  assert.ok(existsSync(CHROMIUM), `${CHROMIUM} is missing: apt-get install chromium`);
  mkdirSync(SHOTS, { recursive: true });
  const tmp = mkdtempSync(join(tmpdir(), 'berth-e2e-heroku-'));
  const dataDir = join(tmp, 'data');
  const src = join(tmp, 'src', 'web');
  mkdirSync(dataDir);
  mkdirSync(src, { recursive: true });
  writeFileSync(join(src, 'Procfile'), 'web: exec python3 server.py\n');
  writeFileSync(join(src, 'server.py'), SERVER_PY);
  let server;
  let browser;
  try {
    server = await startServer(dataDir);
    browser = await launchBrowser(join(tmp, 'profile'));
    const page = browser.pages()[0] ?? (await browser.newPage());
    page.setDefaultTimeout(STEP_MS);
    const problems = watchProblems(page);
    await login(page, server.url, 'admin', PASSWORD);
    const api = apiClient(server.url, await page.evaluate(() => localStorage.getItem('berth.token')));
    assert.equal((await api('POST', '/teams/default/apps', { name: 'shop' })).status, 201);
    const comp = '/teams/default/apps/shop/components/web';
    const made = await api('POST', '/teams/default/apps/shop/components', {
      name: 'web', source: { type: 'dir', path: src }, ports: [{ port: 8080 }], replicas: 1,
      env: { GREETING: 'hello', SECRET_KEY: 's3cret-value' },
    });
    assert.equal(made.status, 201, made.text);
    assert.equal((await api('POST', comp + '/builds', {})).status, 201);

    // Processes: the instance of v1, running and ready, its uptime ticking.
    await page.goto(server.url + '/teams/default/apps/shop/components/web/processes');
    const ps = page.getByTestId('processes');
    const web1 = ps.locator('tr[data-instance="web-1"][data-state="running"][data-ready="yes"]');
    await web1.waitFor({ timeout: BUILD_MS });
    assert.match(await web1.innerText(), /web-1\s+running · ready\s+v1\s+\d+ (s|min \d+ s)\s+0\b/);
    await page.getByTestId('ps-summary').getByText('1 wanted · 1 running · 1 ready').waitFor();
    const up1 = await web1.locator('td[data-uptime]').innerText();
    await eventually(async () => (await web1.locator('td[data-uptime]').innerText()) !== up1, 'the uptime to tick', 5000);

    // Config vars: hidden until revealed.
    await page.getByRole('tab', { name: 'Config vars' }).click();
    const cv = page.getByTestId('config-vars');
    await cv.locator('tr[data-key="SECRET_KEY"]').waitFor();
    assert.ok(!(await page.content()).includes('s3cret-value'), 'the value is not in the page before Reveal');
    await cv.getByRole('button', { name: 'Reveal values' }).click();
    await cv.locator('tr[data-key="SECRET_KEY"]').getByText('s3cret-value').waitFor();
    await cv.getByRole('button', { name: 'Hide values' }).click();

    // A name the API would refuse is refused next to the field, without a request.
    await cv.getByLabel('New key').fill('1BAD');
    await cv.getByLabel('New value').fill('x');
    await cv.getByRole('button', { name: 'Add' }).click();
    await cv.getByTestId('config-error').getByText('not starting with a digit').waitFor();

    // Add FOO=bar: one change, one update operation that replaces the instance once.
    const before = (await api('GET', comp + '/instances')).body.items[0];
    await cv.getByLabel('New key').fill('FOO');
    await cv.getByLabel('New value').fill('bar');
    await cv.getByRole('button', { name: 'Add' }).click();
    await cv.getByText('FOO set.').waitFor();
    const op = page.getByTestId('operation');
    await op.and(page.locator('[data-op-status="succeeded"]')).filter({ hasText: 'update' }).waitFor({ timeout: STEP_MS });
    assert.match(await op.innerText(), /update — replace the instances with the changed settings \(env\)/);
    const after = (await api('GET', comp + '/instances')).body.items;
    assert.equal(after.length, 1);
    assert.notEqual(after[0].pid, before.pid, 'the instance was replaced');
    assert.deepEqual((await api('GET', comp)).body.env, { FOO: 'bar', GREETING: 'hello', SECRET_KEY: 's3cret-value' });

    // Edit a value in its row; remove one with confirmation.
    await cv.getByRole('button', { name: 'Edit GREETING' }).click();
    await cv.getByLabel('Edit GREETING').fill('hi there');
    await cv.getByLabel('Edit GREETING').press('Enter');
    await cv.getByText('GREETING set.').waitFor();
    // One change at a time: the next is refused (409 operation_in_progress) while this rolls.
    await eventually(async () => (await api('GET', comp + '/operation')).body.status === 'succeeded', 'the edit to roll out', STEP_MS);
    await cv.getByRole('button', { name: 'Remove FOO' }).click();
    await page.getByRole('dialog').getByText('Remove FOO from web?').waitFor();
    await page.getByRole('dialog').getByRole('button', { name: 'Remove' }).click();
    await cv.getByText('FOO removed.').waitFor();
    assert.deepEqual((await api('GET', comp)).body.env, { GREETING: 'hi there', SECRET_KEY: 's3cret-value' });
    await eventually(async () => (await api('GET', comp + '/operation')).body.status === 'succeeded', 'the removal to roll out', STEP_MS);
    await page.screenshot({ path: join(SHOTS, 'config-vars.png'), fullPage: true });

    // A second build; Releases: v2 current, who and what; roll back to v1.
    assert.equal((await api('POST', comp + '/builds', {})).status, 201);
    await page.getByRole('tab', { name: 'Releases' }).click();
    const rel = page.getByTestId('releases');
    const v2 = rel.locator('tr[data-version="v2"][data-current="yes"]');
    await v2.waitFor({ timeout: BUILD_MS });
    assert.match(await v2.innerText(), new RegExp(`v2\\s+ready\\s+.*dir ${src.replace(/[.*+?^${}()|[\]\\]/g, '\\$&')}.*\\s+admin\\s+current`, 's'));
    await rel.locator('tr[data-version="v1"]').getByText('admin').waitFor();
    await page.getByTestId('operation').and(page.locator('[data-op-status="succeeded"]')).filter({ hasText: 'deploy v2' }).waitFor({ timeout: STEP_MS });
    await rel.getByRole('button', { name: 'Roll back to v1' }).click();
    await page.getByRole('dialog').getByRole('button', { name: 'Roll back' }).click();
    await rel.locator('tr[data-version="v1"][data-current="yes"]').getByText('pinned').waitFor();
    await page.getByTestId('operation').and(page.locator('[data-op-status="succeeded"]')).filter({ hasText: 'roll back to v1' }).waitFor({ timeout: STEP_MS });
    await page.screenshot({ path: join(SHOTS, 'releases.png'), fullPage: true });
    await page.getByRole('tab', { name: 'Processes' }).click();
    await ps.locator('tr[data-state="running"][data-ready="yes"]').getByText('v1', { exact: true }).waitFor({ timeout: STEP_MS });

    // 中文.
    await page.getByTestId('language').first().selectOption('zh');
    await page.getByRole('tab', { name: '配置变量' }).waitFor();
    await page.getByRole('tab', { name: '发布' }).waitFor();
    await page.getByTestId('ps-summary').getByText('期望 1 · 运行 1 · 就绪 1').waitFor();
    await page.getByTestId('language').first().selectOption('en');

    assert.deepEqual([...problems], [], `no console errors (failed responses: ${problems.http.join('; ')})`);

    // A viewer sees the names and the releases, but no edit, add, remove or roll back.
    assert.equal((await api('POST', '/users', { name: 'vera', password: 'vera-pass-123' })).status, 201);
    assert.equal((await api('POST', '/teams/default/members', { user: 'vera', role: 'viewer' })).status, 201);
    await page.getByRole('button', { name: 'Log out' }).click();
    await page.getByRole('button', { name: 'Sign in' }).waitFor();
    await login(page, server.url, 'vera', 'vera-pass-123');
    await page.goto(server.url + '/teams/default/apps/shop/components/web/env');
    await page.getByTestId('config-vars').locator('tr[data-key="GREETING"]').waitFor();
    assert.equal(await page.getByRole('button', { name: /^(Edit|Remove) / }).count(), 0, 'no edit or remove for a viewer');
    assert.equal(await page.getByLabel('New key').count(), 0, 'no add form for a viewer');
    await page.getByRole('tab', { name: 'Releases' }).click();
    await page.getByTestId('releases').locator('tr[data-version="v2"]').waitFor();
    assert.equal(await page.getByRole('button', { name: /Roll back|Deploy/ }).count(), 0, 'no roll back for a viewer');
  } finally {
    if (browser) await browser.close().catch(() => {});
    await stopServer(server?.proc);
    reapRuntime(dataDir);
    const left = await eventually(() => reapRuntime(dataDir).length === 0, 'no instance process left', 10000).catch((e) => e);
    releaseMounts(dataDir);
    rmSync(tmp, { recursive: true, force: true });
    if (left instanceof Error) throw left;
  }
});
