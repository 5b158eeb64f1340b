// End-to-end test of the console's gateway screens in headless Chromium against a real
// `berth server` (harness.mjs). No builds: the components are made through the API without a
// source, which is all the gateway's control plane needs to route to them.
//
// Journey: the component's "Ports & domains" tab → its "add a domain for port 8080" shortcut →
// a default domain refused next to the Domain field → a canary second backend set to 10% with
// the keyboard → back on the component, the rule and its address → the rule listed with its
// shares → a TCP rule →
// a certificate made with the openssl CLI, uploaded (cert pasted, key from a file and never
// shown; a wrong key refused next to its field), its expiry highlighted → the rule served with
// it → 中文 → deleting the certificate in use refused in the dialog → renewed from files (no
// longer highlighted) → a viewer sees no create, edit
// or delete controls and the API refuses them → rules and certificate deleted with
// confirmation. No console errors except the deliberate refusals. Screenshots: gateway.png,
// gateway-rule.png, component-domains.png, certificates.png. About 12 s.
import { execFileSync } from 'node:child_process';
import { existsSync, mkdirSync, mkdtempSync, readFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { test } from 'node:test';
import assert from 'node:assert/strict';
import {
  CHROMIUM, PASSWORD, SHOTS, WEB_ROOT, apiClient, eventually, launchBrowser, login, startServer, stopServer, watchProblems, releaseMounts,
} from './harness.mjs';

const STEP_MS = 30000;

// Chromium logs each failed request as a console error: drop the ones the test caused on purpose.
function dropExpected(problems, status, count) {
  for (let i = 0; i < count; i++) {
    const at = problems.findIndex((p) => p.includes(`status of ${status}`));
    assert.ok(at >= 0, `expected a ${status} in the console (have: ${problems.join('; ')})`);
    problems.splice(at, 1);
  }
}

test('gateway screens: domain rule with canary, TCP rule, certificate, viewer, deletes', { timeout: 100000 }, async () => {
  assert.ok(existsSync(join(WEB_ROOT, 'index.html')), 'build the console first: cd web && npm ci && npm run build');
  assert.ok(existsSync(CHROMIUM), `${CHROMIUM} is missing: apt-get install chromium`);
  mkdirSync(SHOTS, { recursive: true });
  const dataDir = mkdtempSync(join(tmpdir(), 'berth-e2e-gw-'));
  const profile = mkdtempSync(join(tmpdir(), 'berth-e2e-gw-profile-'));
  const viewerProfile = mkdtempSync(join(tmpdir(), 'berth-e2e-gw-viewer-'));
  const pemDir = mkdtempSync(join(tmpdir(), 'berth-e2e-gw-pem-'));
  let server;
  let browser;
  let viewerBrowser;
  try {
    // A certificate for shop.example.com valid for 10 days (so "expiring" is highlighted).
    const certPath = join(pemDir, 'shop.crt');
    const keyPath = join(pemDir, 'shop.key');
    execFileSync('openssl', ['req', '-x509', '-newkey', 'ec', '-pkeyopt', 'ec_paramgen_curve:prime256v1', '-nodes',
      '-keyout', keyPath, '-out', certPath, '-days', '10', '-subj', '/CN=shop.example.com',
      '-addext', 'subjectAltName=DNS:shop.example.com'], { stdio: 'pipe' });
    const certPem = readFileSync(certPath, 'utf8');
    // Its renewal, valid for 400 days.
    const cert2Path = join(pemDir, 'shop2.crt');
    const key2Path = join(pemDir, 'shop2.key');
    execFileSync('openssl', ['req', '-x509', '-newkey', 'ec', '-pkeyopt', 'ec_paramgen_curve:prime256v1', '-nodes',
      '-keyout', key2Path, '-out', cert2Path, '-days', '400', '-subj', '/CN=shop.example.com',
      '-addext', 'subjectAltName=DNS:shop.example.com'], { stdio: 'pipe' });
    const keyBody = readFileSync(keyPath, 'utf8').split('\n').filter((l) => l && !l.startsWith('-----'))[0];

    server = await startServer(dataDir);
    browser = await launchBrowser(profile);
    const page = browser.pages()[0] ?? (await browser.newPage());
    page.setDefaultTimeout(STEP_MS);
    const problems = watchProblems(page);
    await login(page, server.url, 'admin', PASSWORD);
    const api = apiClient(server.url, await page.evaluate(() => localStorage.getItem('berth.token')));
    assert.equal((await api('POST', '/teams/default/apps', { name: 'shop' })).status, 201);
    const comps = '/teams/default/apps/shop/components';
    assert.equal((await api('POST', comps, { name: 'web', ports: [{ port: 8080, outer: true }] })).status, 201);
    assert.equal((await api('POST', comps, { name: 'web-next', ports: [{ port: 8000, outer: true }] })).status, 201);
    assert.equal((await api('POST', comps, { name: 'db', ports: [{ port: 5432, protocol: 'tcp', outer: true }] })).status, 201);

    // The component's ports & domains: its default addresses, no rules yet, the shortcut.
    await page.goto(server.url + '/teams/default/apps/shop/components/web/ports');
    const card = page.getByTestId('component-gateway');
    await card.getByTestId('component-addresses').getByRole('link', { name: /^http:\/\/web\.shop\.localhost(:\d+)?$/ }).waitFor();
    await card.getByText('No rules point at this component yet.').waitFor();
    await card.getByRole('link', { name: 'Add a domain for port 8080' }).click();
    await page.waitForURL('**/gateway/http/new?app=shop&component=web&port=8080');
    const form = page.getByTestId('http-rule-form');
    assert.equal(await form.getByLabel('App', { exact: true }).inputValue(), 'shop');
    assert.equal(await form.getByLabel('Component of backend 1').inputValue(), 'web');
    assert.equal(await form.getByLabel('Port of backend 1').inputValue(), '8080');

    // A default domain is the API's to refuse; its message shows next to the Domain field.
    await form.getByLabel('Domain', { exact: true }).fill('web.shop.localhost');
    await form.getByRole('button', { name: 'Create' }).click();
    await form.locator('.field.has-error').filter({ has: page.getByLabel('Domain', { exact: true }) }).getByText('default domains').waitFor();
    dropExpected(problems, 400, 1);

    // The real domain, with a canary: web-next gets 10%, set with the keyboard on its slider.
    await form.getByLabel('Domain', { exact: true }).fill('shop.example.com');
    await form.getByRole('button', { name: 'Add backend' }).click();
    await form.getByLabel('Component of backend 2').selectOption('web-next');
    const slider = form.getByLabel('Share of backend 2');
    await slider.focus();
    for (let i = 0; i < 10; i++) await page.keyboard.press('ArrowRight');
    assert.equal(await form.getByLabel('Weight of backend 1').inputValue(), '90');
    assert.equal(await form.getByLabel('Weight of backend 2').inputValue(), '10');
    await page.screenshot({ path: join(SHOTS, 'gateway-rule.png'), fullPage: true });
    // Created with Enter; the form returns to the component, which shows the rule and its address.
    await form.getByLabel('Domain', { exact: true }).press('Enter');
    await page.waitForURL('**/apps/shop/components/web/ports');
    await card.getByTestId('component-rules').getByRole('link', { name: /^http:\/\/shop\.example\.com(:\d+)?/ }).waitFor();
    await card.getByText('90% of the traffic').waitFor();
    await card.getByTestId('component-addresses').getByRole('link', { name: /^http:\/\/shop\.example\.com(:\d+)?$/ }).waitFor();
    await page.screenshot({ path: join(SHOTS, 'component-domains.png'), fullPage: true });

    // The team's gateway page lists it with its shares.
    await page.getByRole('link', { name: 'Gateway', exact: true }).click();
    const ruleRow = page.getByTestId('http-rules').getByRole('row', { name: /shop\.example\.com/ });
    await ruleRow.getByText('web:8080').waitFor();
    await ruleRow.getByText('90%').waitFor();
    await ruleRow.getByText('10%').waitFor();
    const rules = (await api('GET', '/teams/default/apps/shop/http-rules')).body.items;
    assert.equal(rules.length, 1);
    assert.deepEqual(rules[0].backends.map((b) => [b.component, b.port, b.weight]), [['web', 8080, 90], ['web-next', 8000, 10]]);
    const ruleName = rules[0].name;

    // A TCP rule for the database, from the list's button.
    await page.getByRole('link', { name: 'Add TCP rule' }).click();
    const tcp = page.getByTestId('tcp-rule-form');
    await tcp.getByLabel('Listen port').fill('15432');
    await tcp.getByLabel('Component', { exact: true }).selectOption('db');
    await tcp.getByRole('button', { name: 'Create' }).click();
    await page.getByTestId('tcp-rules').getByRole('row', { name: /15432/ }).getByText('db:5432').waitFor();

    // Certificates: a key that is not a key is refused next to its field; then the key file.
    await page.getByRole('link', { name: 'Certificates', exact: true }).click();
    await page.getByText('No certificates yet.').waitFor();
    const upload = page.getByTestId('certificate-form');
    await upload.getByLabel('Name', { exact: true }).fill('shop-cert');
    await upload.getByLabel('Certificate (PEM)').fill(certPem);
    await upload.getByLabel('Private key (PEM)').fill(certPem);
    await upload.getByRole('button', { name: 'Upload' }).click();
    await upload.locator('.field.has-error').filter({ has: page.getByLabel('Private key (PEM)') }).locator('.field-error').waitFor();
    dropExpected(problems, 400, 1);
    await upload.getByLabel('Private key file').setInputFiles(keyPath);
    await upload.getByText('Key read from shop.key').waitFor();
    await upload.getByRole('button', { name: 'Upload' }).click();
    const certRow = page.getByTestId('certificates').getByRole('row', { name: /shop-cert/ });
    await certRow.getByText('shop.example.com', { exact: true }).waitFor();
    await certRow.getByText(/expires in (9|10) days/).waitFor();
    assert.equal(await certRow.getAttribute('data-expiry'), 'expiring');
    assert.ok(!(await page.content()).includes(keyBody), 'the private key is never in the page');
    const cert = (await api('GET', '/teams/default/certificates/shop-cert')).body;
    assert.ok(!JSON.stringify(cert).includes(keyBody), 'the API never returns the key');

    // Serve the rule with it, redirecting HTTP to HTTPS.
    await page.getByRole('link', { name: 'Rules', exact: true }).click();
    await page.getByTestId('http-rules').getByRole('link', { name: 'shop.example.com' }).click();
    await form.getByLabel('Certificate', { exact: true }).selectOption('shop-cert');
    await form.getByLabel('Redirect HTTP to HTTPS').check();
    await form.getByRole('button', { name: 'Save' }).click();
    await page.waitForURL('**/teams/default/gateway');
    await ruleRow.getByText('HTTP → HTTPS').waitFor();
    await ruleRow.getByText('shop-cert').waitFor();
    await page.screenshot({ path: join(SHOTS, 'gateway.png'), fullPage: true });
    // In Chinese.
    await page.getByTestId('language').first().selectOption('zh');
    await page.getByRole('heading', { name: '网关', level: 1 }).waitFor();
    await page.getByRole('columnheader', { name: '后端' }).waitFor();
    await page.getByRole('button', { name: '删除规则 shop.example.com' }).waitFor();
    await page.getByTestId('language').first().selectOption('en');
    await page.getByRole('heading', { name: 'Gateway', level: 1 }).waitFor();

    // Deleting the certificate a rule uses is refused; the reason shows in the dialog.
    await page.getByRole('link', { name: 'Certificates', exact: true }).click();
    await certRow.getByRole('link', { name: 'shop.example.com' }).waitFor(); // "used by"
    await page.screenshot({ path: join(SHOTS, 'certificates.png'), fullPage: true });
    await page.getByRole('button', { name: 'Delete certificate shop-cert' }).click();
    const dialog = page.getByRole('dialog');
    await dialog.getByRole('button', { name: 'Delete' }).click();
    await dialog.getByText('remove it from those rules first').waitFor();
    dropExpected(problems, 409, 1);
    await dialog.getByRole('button', { name: 'Cancel' }).click();

    // Renew it (both files read in the browser): no longer highlighted.
    await page.getByRole('button', { name: 'Renew certificate shop-cert' }).click();
    const renew = page.getByRole('form', { name: 'Renew certificate shop-cert' });
    assert.equal(await renew.getByLabel('Name', { exact: true }).inputValue(), 'shop-cert');
    await renew.getByLabel('Certificate file').setInputFiles(cert2Path);
    await renew.getByLabel('Private key file').setInputFiles(key2Path);
    await renew.getByText('Key read from shop2.key').waitFor();
    await renew.getByRole('button', { name: 'Renew' }).click();
    await certRow.getByText(/valid for (399|400) days/).waitFor();
    assert.equal(await certRow.getAttribute('data-expiry'), 'ok');

    // A viewer: everything visible, nothing to create, edit or delete; the API agrees.
    assert.equal((await api('POST', '/users', { name: 'vic', password: 'vic-pass-1234' })).status, 201);
    assert.equal((await api('POST', '/teams/default/members', { user: 'vic', role: 'viewer' })).status, 201);
    viewerBrowser = await launchBrowser(viewerProfile);
    const vpage = viewerBrowser.pages()[0] ?? (await viewerBrowser.newPage());
    vpage.setDefaultTimeout(STEP_MS);
    const vproblems = watchProblems(vpage);
    await login(vpage, server.url, 'vic', 'vic-pass-1234');
    await vpage.getByRole('link', { name: 'Gateway', exact: true }).click();
    await vpage.getByTestId('http-rules').getByRole('link', { name: 'shop.example.com' }).waitFor();
    await vpage.getByTestId('tcp-rules').getByRole('link', { name: '15432' }).waitFor();
    assert.equal(await vpage.getByRole('button', { name: /Delete/ }).count(), 0, 'no delete buttons for a viewer');
    assert.equal(await vpage.getByRole('link', { name: /Add (HTTP|TCP) rule/ }).count(), 0, 'no create links for a viewer');
    await vpage.getByTestId('http-rules').getByRole('link', { name: 'shop.example.com' }).click();
    await vpage.getByTestId('http-rule-form').getByLabel('Domain', { exact: true }).waitFor();
    assert.ok(await vpage.getByTestId('http-rule-form').getByLabel('Domain', { exact: true }).isDisabled());
    assert.equal(await vpage.getByRole('button', { name: /Save|Delete/ }).count(), 0, 'no save or delete on the form');
    await vpage.goto(server.url + '/teams/default/gateway/certificates');
    await vpage.getByTestId('certificates').getByText('shop-cert').waitFor();
    assert.equal(await vpage.getByTestId('certificate-form').count(), 0, 'no upload form for a viewer');
    assert.equal(await vpage.getByRole('button', { name: /Delete|Renew/ }).count(), 0);
    await vpage.goto(server.url + '/teams/default/apps/shop/components/web/ports');
    await vpage.getByTestId('component-rules').waitFor();
    assert.equal(await vpage.getByRole('link', { name: /Add a domain/ }).count(), 0, 'no shortcut for a viewer');
    const vic = apiClient(server.url, await vpage.evaluate(() => localStorage.getItem('berth.token')));
    const denied = await vic('DELETE', `/teams/default/apps/shop/http-rules/${ruleName}`);
    assert.equal(denied.status, 403);
    assert.equal((await vic('DELETE', '/teams/default/certificates/shop-cert')).status, 403);
    assert.deepEqual([...vproblems], [], `no console errors for the viewer (failed responses: ${vproblems.http.join('; ')})`);

    // Delete the rules (confirmed), then the certificate (confirmed).
    await page.getByRole('link', { name: 'Rules', exact: true }).click();
    await page.getByRole('button', { name: 'Delete rule shop.example.com' }).click();
    await dialog.getByText('Delete the gateway rule for shop.example.com?').waitFor();
    await dialog.getByRole('button', { name: 'Delete' }).click();
    await page.getByText('No HTTP rules yet.').waitFor();
    await page.getByRole('button', { name: 'Delete rule 15432' }).click();
    await dialog.getByRole('button', { name: 'Delete' }).click();
    await page.getByText('No TCP rules yet.').waitFor();
    await page.getByRole('link', { name: 'Certificates', exact: true }).click();
    await page.getByRole('button', { name: 'Delete certificate shop-cert' }).click();
    await dialog.getByRole('button', { name: 'Delete' }).click();
    await page.getByText('No certificates yet.').waitFor();
    assert.equal((await api('GET', '/teams/default/http-rules')).body.items.length, 0);
    assert.equal((await api('GET', '/teams/default/tcp-rules')).body.items.length, 0);
    assert.equal((await api('GET', '/teams/default/certificates/shop-cert')).status, 404);
    // The component is back to its default addresses only.
    await eventually(async () => {
      const c = (await api('GET', comps + '/web')).body;
      return c.addresses.every((a) => a.includes('.localhost'));
    }, 'the rule leaving the addresses', 5000);

    assert.deepEqual([...problems], [], `no console errors (failed responses: ${problems.http.join('; ')})`);
  } finally {
    if (viewerBrowser) await viewerBrowser.close().catch(() => {});
    if (browser) await browser.close().catch(() => {});
    await stopServer(server?.proc);
    releaseMounts(dataDir);
    for (const d of [dataDir, profile, viewerProfile, pemDir]) rmSync(d, { recursive: true, force: true });
  }
});
