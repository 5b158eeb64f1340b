// End-to-end: the first-deploy journey through the console, in headless Chromium against a real
// `berth server` (temporary data dir, loopback) whose builder and runtime really build and run
// a tiny dependency-free Python app written into a temporary directory.
//
// log in → create an app → wizard: source path, detection and its reasons, port → create and
// build → watch the live build log → open the instance's address and get the app's answer →
// scale to 2 and see 2 ready instances → change the source and build again (v2 deploys) → roll
// back to v1 (confirmed) → live logs with search → a dependency on the topology → a failed
// build shown with its reason → an archive uploaded from the browser, detected and built → language switch → a viewer sees no delete button and the API
// answers their delete with 403. No console errors. Every instance is killed at the end, by PID.
//
// Run: node --test tests/e2e/   (BERTH_BIN picks the binary; default build/asan)
import { execFile, execFileSync } from 'node:child_process';
import { existsSync, mkdirSync, mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { promisify } from 'node:util';
import { test } from 'node:test';
import assert from 'node:assert/strict';
import {
  CHROMIUM, PASSWORD, SHOTS, WEB_ROOT, apiClient, eventually, launchBrowser, login, reapRuntime,
  startServer, stopServer, watchProblems, releaseMounts,
} from './harness.mjs';

const STEP_MS = 30000;
const BUILD_MS = 90000;

const SERVER_PY = `import http.server, os, sys
HERE = os.path.dirname(os.path.abspath(__file__))
GREETING = open(os.path.join(HERE, "greeting.txt")).read().strip()
class H(http.server.BaseHTTPRequestHandler):
    def do_GET(self):
        body = (GREETING + "\\n").encode()
        self.send_response(200)
        self.send_header("Content-Type", "text/plain")
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)
    def log_message(self, *a):
        pass
port = int(os.environ["PORT"])
print("listening on", port, "saying", GREETING, flush=True)
http.server.ThreadingHTTPServer(("127.0.0.1", port), H).serve_forever()
`;

function writeSource(dir, greeting) {
  mkdirSync(dir, { recursive: true });
  writeFileSync(join(dir, 'Procfile'), 'web: python3 server.py\n');
  writeFileSync(join(dir, 'server.py'), SERVER_PY);
  writeFileSync(join(dir, 'greeting.txt'), greeting + '\n');
}

const execFileP = promisify(execFile);

// A sandboxed instance listens in its team's network: asked from inside it (nsenter).
async function get(url, netns = '') {
  if (netns) {
    const py = 'import sys,urllib.request\nr=urllib.request.urlopen(sys.argv[1],timeout=3)\nprint(r.status)\nsys.stdout.write(r.read().decode())';
    const { stdout } = await execFileP('nsenter', [`--net=${netns}`, 'python3', '-c', py, url], { timeout: 10000 });
    const nl = stdout.indexOf('\n');
    return { status: Number(stdout.slice(0, nl)), text: stdout.slice(nl + 1).trim() };
  }
  const r = await fetch(url, { signal: AbortSignal.timeout(3000) });
  return { status: r.status, text: (await r.text()).trim() };
}

// Each listed instance address: its URL and, when sandboxed, its team network.
const addressesIn = (page) => page.getByTestId('instance-addresses').locator('li')
  .evaluateAll((lis) => lis.map((li) => ({ url: li.dataset.url, netns: li.dataset.netns })));

test('first deploy from the console: wizard, build log, address, scale, deploy, rollback, logs, topology, failed build, viewer, language', { timeout: 170000 }, async () => {
  assert.ok(existsSync(join(WEB_ROOT, 'index.html')), 'build the console first: cd web && npm ci && npm run build');
  assert.ok(existsSync(CHROMIUM), `${CHROMIUM} is missing: apt-get install chromium`);
  mkdirSync(SHOTS, { recursive: true });
  const tmp = mkdtempSync(join(tmpdir(), 'berth-e2e-deploy-'));
  const dataDir = join(tmp, 'data');
  const src = join(tmp, 'src', 'hello');
  const brokenSrc = join(tmp, 'src', 'broken');
  const profile = join(tmp, 'profile');
  mkdirSync(dataDir);
  writeSource(src, 'hello v1');
  writeSource(brokenSrc, 'never served');
  let server;
  let browser;
  try {
    server = await startServer(dataDir);
    browser = await launchBrowser(profile);
    const page = browser.pages()[0] ?? (await browser.newPage());
    page.setDefaultTimeout(STEP_MS);
    const problems = watchProblems(page);
    const base = '/teams/default/apps/shop/components';

    // Log in and create an app.
    await login(page, server.url, 'admin', PASSWORD);
    const token = await page.evaluate(() => localStorage.getItem('berth.token'));
    const api = apiClient(server.url, token);
    const appForm = page.getByRole('form', { name: 'New app' });
    await appForm.getByLabel('Name', { exact: true }).fill('shop');
    await appForm.getByRole('button', { name: 'Create' }).click();
    await page.getByRole('link', { name: 'shop', exact: true }).click();
    await page.waitForURL('**/apps/shop');

    // The wizard: detection and its reasons before building, then only the open questions.
    await page.getByRole('link', { name: 'New component' }).click();
    await page.waitForURL('**/apps/shop/new-component');
    const source = page.getByTestId('wizard-source');
    // A relative path is refused next to the field, before asking the server.
    await source.getByLabel('Directory', { exact: true }).fill('relative/path');
    await source.getByRole('button', { name: 'Detect' }).click();
    await source.locator('.field.has-error .field-error').getByText('absolute path').waitFor();
    await source.getByLabel('Directory', { exact: true }).fill(src);
    await source.getByRole('button', { name: 'Detect' }).click();
    const review = page.getByTestId('wizard-review');
    await review.getByRole('heading', { name: /Detected: / }).waitFor();
    const reasons = await review.getByTestId('reasons').locator('li').allTextContents();
    assert.ok(reasons.some((r) => /Procfile/.test(r)), `reasons name the Procfile: ${reasons}`);
    await review.getByText('python3 server.py').first().waitFor();
    await review.getByLabel('Name', { exact: true }).fill('web');
    if (!(await review.getByLabel('Ports', { exact: true }).inputValue())) {
      await review.getByLabel('Ports', { exact: true }).fill('8000');
    }
    await page.screenshot({ path: join(SHOTS, 'wizard.png'), fullPage: true });
    await review.getByRole('button', { name: 'Create and build' }).click();

    // The live build log of v1, until the build is ready.
    await page.waitForURL('**/components/web/versions/v1');
    const log = page.getByTestId('build-log');
    await log.locator('[data-vstatus="ready"]').waitFor({ timeout: BUILD_MS });
    assert.ok((await log.locator('pre').textContent()).length > 0, 'the build log has lines');
    await page.screenshot({ path: join(SHOTS, 'build-log.png'), fullPage: true });

    // The overview shows the gateway's default domain (from the API's `addresses`) and the
    // ready instance's own address; opening the latter gets the app's answer. (The server this
    // test starts runs no gateway data plane on a known port, so the domain is only listed.)
    await page.getByRole('tab', { name: 'Overview' }).click();
    await page.getByTestId('addresses').getByRole('link', { name: /^http:\/\/web\.shop\.localhost(:\d+)?$/ }).waitFor();
    await page.getByTestId('instance-addresses').locator('li').first().waitFor({ timeout: BUILD_MS });
    const [first] = await addressesIn(page);
    if (first.netns) {
      // Sandboxed: shown, not linked, with where it can be reached from.
      await page.getByTestId('instance-addresses').getByText("in the team's network").first().waitFor();
      assert.equal((await get(first.url, first.netns)).text, 'hello v1');
    } else {
      const appPage = await browser.newPage();
      await appPage.goto(first.url);
      assert.equal((await appPage.locator('body').textContent()).trim(), 'hello v1');
      await appPage.close();
    }

    // Scale to 2: two ready instances.
    await page.getByRole('tab', { name: 'Scale' }).click();
    const scale = page.getByTestId('scale');
    // By keyboard: type the number and press Enter to save.
    await scale.getByLabel('Replicas', { exact: true }).fill('2');
    await scale.getByLabel('Replicas', { exact: true }).press('Enter');
    await scale.getByText('Saved').waitFor();
    await page.getByRole('tab', { name: 'Overview' }).click();
    await eventually(async () => (await page.getByTestId('instances').locator('tr[data-ready="yes"]').count()) === 2, 'two ready instances', BUILD_MS);
    await page.screenshot({ path: join(SHOTS, 'component.png'), fullPage: true });

    // What every address (ready instance) answers, once there are exactly `n` of them.
    const answers = async (n) => {
      const addrs = await addressesIn(page);
      if (addrs.length !== n) return null;
      const got = await Promise.all(addrs.map((a) => get(a.url, a.netns).then((r) => r.text, () => '')));
      return [...new Set(got)].sort().join(',');
    };

    // Deploy a change: a new build becomes v2 and replaces v1 (the component follows the newest).
    writeSource(src, 'hello v2');
    await page.getByRole('tab', { name: 'Versions & builds' }).click();
    await page.getByRole('button', { name: 'Build now' }).click();
    await page.waitForURL('**/components/web/versions/v2');
    await page.getByTestId('build-log').locator('[data-vstatus="ready"]').waitFor({ timeout: BUILD_MS });
    await page.getByRole('tab', { name: 'Overview' }).click();
    await eventually(async () => (await answers(2)) === 'hello v2', 'both instances answering hello v2', BUILD_MS);

    // Roll back to v1, with confirmation, once the v2 deploy has ended (a component runs one
    // operation at a time: a rollback during it would be refused with operation_in_progress).
    await eventually(async () => (await api('GET', base + '/web/operation')).body.status !== 'in_progress',
      'the v2 deploy operation to end', BUILD_MS);
    await page.getByRole('tab', { name: 'Versions & builds' }).click();
    // The confirmation by keyboard: Cancel has the focus, Tab reaches the action.
    await page.getByRole('button', { name: 'Roll back to v1' }).click();
    await page.getByRole('dialog').getByText('Roll web back to v1?').waitFor();
    await page.keyboard.press('Tab');
    assert.equal(await page.evaluate(() => document.activeElement?.textContent), 'Roll back');
    await page.keyboard.press('Enter');
    await page.getByTestId('deploy-policy').getByText('Pinned to v1').waitFor();
    await page.getByRole('tab', { name: 'Overview' }).click();
    await eventually(async () => (await answers(2)) === 'hello v1', 'both instances answering hello v1 again', BUILD_MS);
    assert.equal((await api('GET', base + '/web')).body.version, 'v1');

    // Live logs with search: the app's start-up lines, the match highlighted.
    await page.getByRole('tab', { name: 'Logs' }).click();
    const logs = page.getByTestId('logs');
    await logs.getByRole('log').getByText('saying hello v1').first().waitFor();
    await logs.getByLabel('Search').fill('saying hello v2');
    await logs.locator('mark', { hasText: 'saying hello v2' }).first().waitFor();
    assert.equal(await logs.getByRole('log').getByText('saying hello v1').count(), 0, 'the search filters lines');
    await page.screenshot({ path: join(SHOTS, 'logs.png'), fullPage: true });

    // A dependency, then the app's topology: nodes, the edge, live status colour.
    assert.equal((await api('POST', base, { name: 'db', ports: [{ port: 5432, protocol: 'tcp' }] })).status, 201);
    await page.getByRole('tab', { name: 'Dependencies' }).click();
    const addDep = page.getByTestId('add-dependency');
    await addDep.getByLabel('Component').selectOption('db');
    await addDep.getByRole('button', { name: 'Add dependency' }).click();
    await page.getByTestId('dependencies').getByText('DB_HOST').waitFor();
    await page.getByRole('link', { name: 'shop', exact: true }).click();
    const topo = page.getByTestId('topology');
    await topo.locator('[data-node="web"][data-status="running"]').waitFor();
    await topo.locator('[data-node="db"][data-status="noVersion"]').waitFor();
    await topo.locator('[data-edge="web>db"]').waitFor({ state: 'attached' });
    await page.screenshot({ path: join(SHOTS, 'topology.png'), fullPage: true });
    // Removing the dependency asks first; the edge goes away live.
    await topo.locator('[data-node="web"]').click();
    await page.getByRole('tab', { name: 'Dependencies' }).click();
    await page.getByRole('button', { name: 'Remove dependency db' }).click();
    await page.getByRole('dialog').getByRole('button', { name: 'Remove' }).click();
    await page.getByText('No dependencies.').waitFor();
    assert.deepEqual((await api('GET', base + '/web/dependencies')).body.items, []);
    await page.getByRole('link', { name: 'shop', exact: true }).click();
    await topo.locator('[data-node="db"]').waitFor();
    assert.equal(await topo.locator('[data-edge="web>db"]').count(), 0);

    // A failed build shows its reason (the step, its exit code and last lines).
    await page.getByRole('link', { name: 'New component' }).click();
    await source.getByLabel('Directory', { exact: true }).fill(brokenSrc);
    await source.getByText('Build overrides (optional)').click();
    await source.getByLabel('Build command').fill('echo compiling; echo "error: missing semicolon" >&2; exit 3');
    await source.getByRole('button', { name: 'Detect' }).click();
    await review.getByLabel('Name', { exact: true }).fill('broken');
    if (!(await review.getByLabel('Ports', { exact: true }).inputValue())) {
      await review.getByLabel('Ports', { exact: true }).fill('8000');
    }
    await review.getByRole('button', { name: 'Create and build' }).click();
    await page.waitForURL('**/components/broken/versions/v1');
    const failure = page.getByTestId('build-failure');
    await failure.waitFor({ timeout: BUILD_MS });
    assert.match(await failure.textContent(), /exit code 3/);
    await page.getByTestId('build-log').getByText('missing semicolon').first().waitFor();
    await page.locator('h1 [data-status="buildFailed"]').waitFor();
    await page.screenshot({ path: join(SHOTS, 'build-failed.png'), fullPage: true });
    await page.getByRole('tab', { name: 'Events' }).click();
    await page.getByRole('cell', { name: 'BuildFailed' }).first().waitFor();

    // An error the API names a field for shows next to that field: an HTTP check's path.
    await page.getByRole('tab', { name: 'Health checks' }).click();
    const health = page.getByTestId('health-editor');
    const readiness = health.getByRole('group', { name: 'Readiness check' });
    await readiness.getByLabel('Use a Readiness check').check();
    await readiness.getByLabel('Type').selectOption('http');
    await readiness.getByLabel('HTTP path').fill('healthz');
    await health.getByRole('button', { name: 'Save' }).click();
    await readiness.locator('.field.has-error').filter({ has: page.getByLabel('HTTP path') }).getByText("must start with '/'").waitFor();
    await readiness.getByLabel('HTTP path').fill('/healthz');
    await health.getByRole('button', { name: 'Save' }).click();
    await health.getByText('Saved').waitFor();
    assert.equal((await api('GET', base + '/broken')).body.health.readiness.path, '/healthz');
    // Chromium logs the deliberate 400 as a failed resource load.
    const expected400 = problems.findIndex((p) => /status of 400/.test(p));
    if (expected400 >= 0) problems.splice(expected400, 1);

    // The apps list sums up each app's components by status.
    await page.getByRole('navigation', { name: 'Team' }).getByRole('link', { name: 'Apps', exact: true }).click();
    const summary = page.getByTestId('summary-shop');
    await summary.locator('[data-status="running"]').getByText('1 Running').waitFor();
    await summary.locator('[data-status="buildFailed"]').getByText('1 Build failed').waitFor();
    await summary.locator('[data-status="noVersion"]').getByText('1 Not built yet').waitFor();
    await page.screenshot({ path: join(SHOTS, 'apps.png'), fullPage: true });

    // The wizard's other sources: a git repository at a tag, and an archive on the server.
    const repo = join(tmp, 'src', 'repo');
    writeSource(repo, 'from git');
    const git = (...args) => execFileSync('git', ['-C', repo, '-c', 'user.email=e2e@berth.test', '-c', 'user.name=e2e', ...args], { stdio: 'ignore' });
    git('init', '-q');
    git('add', '.');
    git('commit', '-qm', 'first');
    git('tag', 'v1');
    const archive = join(tmp, 'src', 'hello.tar.gz');
    execFileSync('tar', ['-czf', archive, '-C', src, '.']);
    await page.getByRole('link', { name: 'shop', exact: true }).click();
    await page.getByRole('link', { name: 'New component' }).click();
    await source.getByLabel('Git repository').check();
    await source.getByLabel('Repository URL').fill(repo);
    await source.getByLabel('Branch, tag or commit').fill('v1');
    await source.getByRole('button', { name: 'Detect' }).click();
    await review.getByTestId('reasons').getByText('Procfile found (web)').waitFor({ timeout: BUILD_MS });
    await source.getByLabel('Archive already on the server').check();
    await review.waitFor({ state: 'detached' });
    await source.getByLabel('Archive path on the server').fill(archive);
    await source.getByRole('button', { name: 'Detect' }).click();
    await review.getByTestId('reasons').getByText('Procfile found (web)').waitFor({ timeout: BUILD_MS });

    // Uploading the archive from the browser: a file that is no archive is refused next to the
    // file field and the component created for it is deleted again; a real one is created,
    // uploaded, detected, then built.
    await source.getByLabel('Upload an archive').check();
    await review.waitFor({ state: 'detached' });
    await source.getByLabel('Name', { exact: true }).fill('uploaded');
    await source.getByLabel('Archive to upload').setInputFiles({ name: 'junk.tar.gz', mimeType: 'application/gzip', buffer: Buffer.from('not an archive') });
    await source.getByRole('button', { name: 'Detect' }).click();
    await source.locator('.field.has-error').filter({ has: page.getByLabel('Archive to upload') }).locator('.field-error').waitFor();
    await eventually(async () => (await api('GET', base + '/uploaded')).status === 404, 'the refused upload leaves no component', STEP_MS);
    const refused400 = problems.findIndex((p) => /status of 400/.test(p));
    if (refused400 >= 0) problems.splice(refused400, 1);
    await source.getByLabel('Archive to upload').setInputFiles(archive);
    await source.getByRole('button', { name: 'Detect' }).click();
    await review.getByTestId('reasons').getByText('Procfile found (web)').waitFor({ timeout: BUILD_MS });
    const uploadedSource = (await api('GET', base + '/uploaded')).body.source;
    assert.equal(uploadedSource.type, 'archive');
    assert.match(uploadedSource.archive, /\/uploads\/.*\.tar\.gz$/);
    assert.equal(await review.getByLabel('Name', { exact: true }).inputValue(), 'uploaded');
    if (!(await review.getByLabel('Ports', { exact: true }).inputValue())) {
      await review.getByLabel('Ports', { exact: true }).fill('8000');
    }
    // Built, not run: the journey's other components already show running instances.
    await review.getByLabel('Replicas', { exact: true }).fill('0');
    await review.getByRole('button', { name: 'Create and build' }).click();
    await page.waitForURL('**/components/uploaded/versions/v1');
    await page.getByTestId('build-log').locator('[data-vstatus="ready"]').waitFor({ timeout: BUILD_MS });
    const uploaded = (await api('GET', base + '/uploaded')).body;
    assert.deepEqual([uploaded.replicas, uploaded.ports[0].port > 0, uploaded.source.archive], [0, true, uploadedSource.archive]);

    // Language switch: the component page in Chinese, and back.
    await page.goto(server.url + '/teams/default/apps/shop/components/web');
    // Every tab renders (and its form is reachable) without an error.
    const tabs = { Overview: 'instances', Processes: 'processes', 'Versions & builds': 'versions', Releases: 'releases', Scale: 'scale', Logs: 'logs',
      'Config vars': 'files-editor', 'Ports & domains': 'ports-editor', 'Health checks': 'health-editor',
      Dependencies: 'add-dependency', Events: null, Settings: 'settings' };
    for (const [name, testId] of Object.entries(tabs)) {
      await page.getByRole('tab', { name, exact: true }).click();
      await page.getByRole('tab', { name, exact: true, selected: true }).waitFor();
      if (testId) await page.getByTestId(testId).waitFor();
      assert.equal(await page.locator('.error-banner').count(), 0, `no error on the ${name} tab`);
    }
    await page.getByRole('tab', { name: 'Ports & domains', exact: true }).click();
    assert.equal(await page.getByLabel('Port 1', { exact: true }).inputValue(), String((await api('GET', base + '/web')).body.ports[0].port));
    await page.getByRole('tab', { name: 'Overview', exact: true }).click();
    await page.getByTestId('language').first().selectOption('zh');
    await page.getByRole('tab', { name: '版本与构建' }).waitFor();
    await page.getByRole('heading', { name: '访问地址' }).waitFor();
    await page.getByTestId('addresses').getByRole('link').first().waitFor();
    await page.screenshot({ path: join(SHOTS, 'component-zh.png'), fullPage: true });
    await page.getByRole('tab', { name: '版本与构建' }).click();
    await page.getByRole('button', { name: '回滚到 v1' }).or(page.getByRole('button', { name: '部署 v2' })).first().waitFor();
    await page.getByTestId('language').first().selectOption('en');
    await page.getByRole('tab', { name: 'Versions & builds' }).waitFor();

    assert.deepEqual([...problems], [], `no console errors during the journey (failed responses: ${problems.http.join('; ')})`);

    // A viewer: no delete button anywhere on the component or the app, and the API refuses.
    assert.equal((await api('POST', '/users', { name: 'vera', password: 'vera-pass-123' })).status, 201);
    assert.equal((await api('POST', '/teams/default/members', { user: 'vera', role: 'viewer' })).status, 201);
    await page.getByRole('button', { name: 'Log out' }).click();
    // Logging out revokes the token: wait for it to finish before loading another page.
    await page.getByRole('button', { name: 'Sign in' }).waitFor();
    assert.equal(await page.evaluate(() => localStorage.getItem('berth.token')), null);
    await login(page, server.url, 'vera', 'vera-pass-123');
    await page.goto(server.url + '/teams/default/apps/shop/components/web/settings');
    await page.getByRole('heading', { name: 'Source' }).waitFor();
    assert.equal(await page.getByRole('button', { name: /Delete/ }).count(), 0, 'no delete button for a viewer');
    await page.getByRole('tab', { name: 'Versions & builds' }).click();
    await page.getByTestId('versions').waitFor();
    assert.equal(await page.getByRole('button', { name: /Roll back|Deploy|Build now/ }).count(), 0, 'no deploy buttons for a viewer');
    await page.goto(server.url + '/teams/default/apps/shop');
    await page.getByTestId('topology').waitFor();
    assert.equal(await page.getByRole('button', { name: /Delete/ }).count(), 0);
    const veraToken = await page.evaluate(() => localStorage.getItem('berth.token'));
    const veraApi = apiClient(server.url, veraToken);
    const denied = await veraApi('DELETE', base + '/web');
    assert.equal(denied.status, 403);
    assert.equal(denied.body.code, 'permission_denied');
    // (The admin's console token was revoked by logging out: sign in again to look.)
    const relogin = await fetch(server.url + '/api/v1/login', {
      method: 'POST', headers: { 'Content-Type': 'application/json' },
      body: JSON.stringify({ user: 'admin', password: PASSWORD }),
    });
    const admin = apiClient(server.url, (await relogin.json()).token);
    assert.equal((await admin('GET', base + '/web')).status, 200, 'the component is still there');
    assert.deepEqual([...problems], [], `no console errors for the viewer (failed responses: ${problems.http.join('; ')})`);
  } finally {
    if (browser) await browser.close().catch(() => {});
    await stopServer(server?.proc);
    reapRuntime(dataDir);
    // Nothing the runtime started may outlive the test.
    const left = await eventually(() => reapRuntime(dataDir).length === 0, 'no instance process left', 10000).catch((e) => e);
    releaseMounts(dataDir);
    rmSync(tmp, { recursive: true, force: true });
    if (left instanceof Error) throw left;
  }
});
