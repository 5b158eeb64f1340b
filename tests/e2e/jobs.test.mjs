// End-to-end test of the console's job screens in headless Chromium against a real
// `berth server` (harness.mjs) with its real builder and runtime.
//
// Journey: a job component made through the API from a tiny directory source (a Python script
// that prints a line and exits 0) → its Runs tab open before the build → the build deploys v1,
// and the deploy's run appears and succeeds live (no reload) → the run expanded: its instance
// and a link to its logs, which open the Logs tab on that instance with the script's line →
// "Run now" → a second, manual run succeeds → the job settings: retries 101 refused by the API
// next to the Retries field, then 5 saved → the component stopped: "Run now" shows the API's
// 409 component_stopped → a failing job's run: its exit, message and last log lines → a cronjob's schedule and next firing, a bad schedule refused next to
// its field, suspended → a service's instance shows its memory in the overview, refreshed by
// polling → 中文 → a viewer sees the runs but no "Run now" and no save. No console errors but
// the deliberate refusals. Screenshot: jobs.png. About 15 s.
import { existsSync, mkdirSync, mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { test } from 'node:test';
import assert from 'node:assert/strict';
import {
  CHROMIUM, PASSWORD, SHOTS, WEB_ROOT, apiClient, eventually, launchBrowser, login, reapRuntime,
  startServer, stopServer, watchProblems, releaseMounts,
} from './harness.mjs';

const STEP_MS = 30000;
const BUILD_MS = 90000;

// Chromium logs each failed request as a console error: drop the ones the test caused on purpose.
function dropExpected(problems, status, count) {
  for (let i = 0; i < count; i++) {
    const at = problems.findIndex((p) => p.includes(`status of ${status}`));
    assert.ok(at >= 0, `expected a ${status} in the console (have: ${problems.join('; ')})`);
    problems.splice(at, 1);
  }
}

test('job runs in the console: live deploy run, run now, logs, settings, refusal, usage, viewer', { timeout: 150000 }, async () => {
  assert.ok(existsSync(join(WEB_ROOT, 'index.html')), 'build the console first: cd web && npm ci && npm run build');
  assert.ok(existsSync(CHROMIUM), `${CHROMIUM} is missing: apt-get install chromium`);
  mkdirSync(SHOTS, { recursive: true });
  const tmp = mkdtempSync(join(tmpdir(), 'berth-e2e-jobs-'));
  const dataDir = join(tmp, 'data');
  const src = join(tmp, 'src', 'report');
  mkdirSync(dataDir);
  mkdirSync(src, { recursive: true });
  writeFileSync(join(src, 'Procfile'), 'web: python3 report.py\n');
  writeFileSync(join(src, 'report.py'),
    'import os\nprint("report done for", os.environ["BERTH_VERSION"], os.environ["BERTH_INSTANCE"], flush=True)\n');
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
    assert.equal((await api('POST', '/teams/default/apps', { name: 'ops' })).status, 201);
    const comps = '/teams/default/apps/ops/components';
    const made = await api('POST', comps, {
      name: 'report', kind: 'job', source: { type: 'dir', path: src }, build: { start_command: 'python3 report.py' },
    });
    assert.equal(made.status, 201, made.text);

    // The Runs tab before anything was built: the job's settings, no runs, "Run now".
    await page.goto(server.url + '/teams/default/apps/ops/components/report/runs');
    await page.getByRole('tab', { name: 'Runs' }).waitFor();
    await page.getByText('No runs yet.').waitFor();
    await page.getByRole('button', { name: 'Run now' }).waitFor();

    // The build deploys v1 and the deploy's run appears and succeeds while the page stays open.
    const build = await api('POST', comps + '/report/builds', {});
    assert.equal(build.status, 201, build.text);
    const runs = page.getByTestId('runs');
    const run1 = runs.locator('tr[data-run="run-1"]');
    await run1.and(page.locator('[data-status="succeeded"]')).waitFor({ timeout: BUILD_MS });
    assert.match(await run1.innerText(), /succeeded\s+deploy\s+v1\s+1\b/);

    // Its detail: the instance and a link to its logs, which open on that instance.
    await run1.getByRole('button', { name: /run-1/ }).click();
    const detail = page.getByTestId('run-detail-run-1');
    await detail.getByText('report-run-1', { exact: true }).waitFor();
    await detail.getByRole('link', { name: 'Logs of report-run-1' }).click();
    await page.waitForURL('**/components/report/logs?instance=report-run-1');
    assert.equal(await page.getByTestId('logs').locator('select').first().inputValue(), 'report-run-1');
    await page.getByRole('log').getByText('report done for v1 report-run-1').waitFor();

    // Run now: a second, manual run, newest first, succeeds live.
    await page.getByRole('tab', { name: 'Runs' }).click();
    await page.getByRole('button', { name: 'Run now' }).click();
    await page.getByText('Started run-2.').waitFor();
    const run2 = runs.locator('tr[data-run="run-2"]');
    await run2.and(page.locator('[data-status="succeeded"]')).waitFor({ timeout: STEP_MS });
    assert.match(await run2.innerText(), /succeeded\s+manual · admin\s+v1/);
    assert.deepEqual(await runs.locator('tbody tr[data-run]').evaluateAll((rs) => rs.map((r) => r.dataset.run)), ['run-2', 'run-1']);
    await page.screenshot({ path: join(SHOTS, 'jobs.png'), fullPage: true });

    // Job settings on the Scale tab: an out-of-range retry count is the API's to refuse, next to
    // its field; a good one saves.
    await page.getByRole('tab', { name: 'Scale' }).click();
    const settings = page.getByTestId('job-settings');
    await settings.getByLabel('Retries').fill('101');
    await settings.getByLabel('Concurrency policy').selectOption('forbid');
    await settings.getByRole('button', { name: 'Save' }).click();
    await settings.locator('.field.has-error').filter({ has: page.getByLabel('Retries') }).locator('.field-error').waitFor();
    await settings.getByLabel('Retries').fill('5');
    await settings.getByRole('button', { name: 'Save' }).click();
    await settings.getByText('Saved').waitFor();
    const job = (await api('GET', comps + '/report')).body.job;
    assert.deepEqual([job.retries, job.concurrency_policy], [5, 'forbid']);

    // A stopped job refuses "Run now" and the page says why.
    assert.equal((await api('PATCH', comps + '/report', { desired_state: 'stopped' })).status, 200);
    await page.getByRole('tab', { name: 'Runs' }).click();
    await page.getByText('The component is stopped').waitFor();
    await page.getByRole('button', { name: 'Run now' }).click();
    await page.getByTestId('run-refused').getByText(/Not started: .*stopped/).waitFor();
    dropExpected(problems, 400, 1);
    dropExpected(problems, 409, 1);

    // A job that fails (no retries): its run turns failed with the exit, the message and the
    // last log lines.
    assert.equal((await api('POST', comps, { name: 'broken', kind: 'job', job: { retries: 0 } })).status, 201);
    await page.goto(server.url + '/teams/default/apps/ops/components/broken/runs');
    await page.getByText('No runs yet.').waitFor();
    assert.equal((await api('POST', comps + '/broken/versions', { start_command: 'echo checking the disk; echo disk full >&2; exit 3', status: 'ready' })).status, 201);
    const failed = runs.locator('tr[data-run="run-1"]');
    await failed.and(page.locator('[data-status="failed"]')).waitFor({ timeout: STEP_MS });
    assert.match(await failed.innerText(), /failed\s+deploy\s+v1\s+1\s.*exit 3/s);
    await failed.getByRole('button', { name: /run-1/ }).click();
    const failedDetail = page.getByTestId('run-detail-run-1');
    await failedDetail.getByText(/exited with code 3/).first().waitFor();
    await failedDetail.locator('pre').getByText('disk full').waitFor();

    // A cronjob: its schedule and next firing (computed in the browser), a bad schedule refused
    // next to its field, then suspended: no next firing.
    assert.equal((await api('POST', comps, { name: 'nightly', kind: 'cronjob', schedule: '0 3 * * *' })).status, 201);
    await page.goto(server.url + '/teams/default/apps/ops/components/nightly/runs');
    const summary = page.getByTestId('job-summary');
    await summary.getByText('0 3 * * *').waitFor();
    assert.match(await summary.getByTestId('next-firing').innerText(), /\(in \d+ (h|min)/);
    await page.getByRole('tab', { name: 'Scale' }).click();
    const cronSettings = page.getByTestId('job-settings');
    await cronSettings.getByLabel('Schedule').fill('every night');
    await cronSettings.getByRole('button', { name: 'Save' }).click();
    await cronSettings.locator('.field.has-error').filter({ has: page.getByLabel('Schedule') }).getByText('is not a cron expression').waitFor();
    await cronSettings.getByLabel('Schedule').fill('30 2 * * *');
    await cronSettings.getByLabel('Suspended', { exact: true }).check();
    await cronSettings.getByRole('button', { name: 'Save' }).click();
    await cronSettings.getByText('Saved').waitFor();
    await page.getByRole('tab', { name: 'Runs' }).click();
    await summary.getByText('30 2 * * *').waitFor();
    await summary.getByText('suspended', { exact: true }).waitFor();
    assert.equal(await summary.getByTestId('next-firing').innerText(), 'None');
    dropExpected(problems, 400, 1);

    // Usage: a service's running instance shows its memory in the overview (polled: usage is
    // not a store change), and a service has no Runs tab.
    assert.equal((await api('POST', comps, { name: 'idle' })).status, 201);
    assert.equal((await api('POST', comps + '/idle/versions', { start_command: 'sleep 120', status: 'ready' })).status, 201);
    await page.goto(server.url + '/teams/default/apps/ops/components/idle');
    await page.getByTestId('instances').locator('td[data-usage="memory"]').getByText(/MiB/).waitFor({ timeout: STEP_MS });
    assert.match(await page.getByTestId('instances').locator('td[data-usage="cpu"]').innerText(), /%|–/);
    assert.equal(await page.getByRole('tab', { name: 'Runs' }).count(), 0, 'a service has no Runs tab');

    // 中文.
    await page.goto(server.url + '/teams/default/apps/ops/components/report/runs');
    await page.getByTestId('language').first().selectOption('zh');
    await page.getByRole('tab', { name: '运行记录' }).waitFor();
    await page.getByTestId('runs').getByText('手动').waitFor();
    await page.getByTestId('language').first().selectOption('en');

    assert.deepEqual([...problems], [], `no console errors (failed responses: ${problems.http.join('; ')})`);

    // A viewer sees the runs but cannot start one or change the settings; the API agrees.
    assert.equal((await api('POST', '/users', { name: 'vera', password: 'vera-pass-123' })).status, 201);
    assert.equal((await api('POST', '/teams/default/members', { user: 'vera', role: 'viewer' })).status, 201);
    await page.getByRole('button', { name: 'Log out' }).click();
    await page.getByRole('button', { name: 'Sign in' }).waitFor();
    await login(page, server.url, 'vera', 'vera-pass-123');
    await page.goto(server.url + '/teams/default/apps/ops/components/report/runs');
    await page.getByTestId('runs').locator('tr[data-run="run-2"]').waitFor();
    assert.equal(await page.getByRole('button', { name: 'Run now' }).count(), 0, 'no Run now for a viewer');
    await page.getByRole('tab', { name: 'Scale' }).click();
    await page.getByTestId('job-settings').waitFor();
    assert.equal(await page.getByRole('button', { name: 'Save' }).count(), 0, 'no save for a viewer');
    const veraApi = apiClient(server.url, await page.evaluate(() => localStorage.getItem('berth.token')));
    assert.equal((await veraApi('POST', comps + '/report/runs')).status, 403);
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
