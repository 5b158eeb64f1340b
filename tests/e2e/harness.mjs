// Shared pieces of the console's end-to-end tests: a real `berth server` on loopback with a
// temporary data directory, headless Debian Chromium through playwright-core (no browser
// download), and the clean-up of every instance process the server's runtime started.
import { spawn, spawnSync } from 'node:child_process';
import { existsSync, readFileSync, readdirSync, readlinkSync, realpathSync, rmSync } from 'node:fs';
import { createRequire } from 'node:module';
import { createServer } from 'node:net';
import { dirname, join, resolve, sep } from 'node:path';
import { fileURLToPath } from 'node:url';

export const REPO = resolve(dirname(fileURLToPath(import.meta.url)), '..', '..');
export const WEB_ROOT = join(REPO, 'web', 'dist');
// Run by hand it refreshes the README's screenshots; ctest points it at the build directory so
// `make test` leaves tracked files alone.
export const SHOTS = process.env.BERTH_SCREENSHOTS_DIR || join(REPO, 'docs', 'screenshots');
export const PASSWORD = 'admin-pass-123';
export const CHROMIUM = process.env.BERTH_CHROMIUM || '/usr/bin/chromium';

const require = createRequire(join(REPO, 'web', 'package.json'));
const { chromium } = require('playwright-core');

export function berthBin() {
  if (process.env.BERTH_BIN) return process.env.BERTH_BIN;
  for (const d of ['asan', 'console', 'release']) {
    const p = join(REPO, 'build', d, 'berth');
    if (existsSync(p)) return p;
  }
  throw new Error('set BERTH_BIN to the berth binary');
}

// A free loopback port: the server's --http (its gateway port) must be a real number for
// components' addresses to name it, though these servers run no gateway (--gateway off).
async function freePort() {
  return new Promise((resolve, reject) => {
    const s = createServer();
    s.on('error', reject);
    s.listen(0, '127.0.0.1', () => {
      const { port } = s.address();
      s.close(() => resolve(port));
    });
  });
}

export async function startServer(dataDir) {
  const proc = spawn(
    berthBin(),
    ['server', '--data', dataDir, '--api', '127.0.0.1:0', '--http', `127.0.0.1:${await freePort()}`, '--https', '127.0.0.1:0', '--gateway', 'off',
      '--web-root', WEB_ROOT, '--log-level', 'warn'],
    { env: { ...process.env, BERTH_ADMIN_PASSWORD: PASSWORD }, stdio: ['ignore', 'pipe', 'pipe'] },
  );
  let output = '';
  proc.stdout.on('data', (d) => (output += d));
  proc.stderr.on('data', (d) => (output += d));
  const deadline = Date.now() + 30000;
  while (Date.now() < deadline) {
    if (proc.exitCode !== null) throw new Error(`berth server exited ${proc.exitCode}:\n${output}`);
    try {
      const info = JSON.parse(readFileSync(join(dataDir, 'server.json'), 'utf8'));
      if (info.pid === proc.pid) return { proc, url: info.api, output: () => output };
    } catch {
      /* not written yet */
    }
    await new Promise((r) => setTimeout(r, 100));
  }
  proc.kill('SIGKILL');
  throw new Error(`berth server did not become ready in 30 s:\n${output}`);
}

export async function stopServer(proc) {
  if (!proc || proc.exitCode !== null || proc.signalCode !== null) return;
  const exited = new Promise((r) => proc.once('exit', r));
  process.kill(proc.pid, 'SIGTERM');
  const t = setTimeout(() => { try { process.kill(proc.pid, 'SIGKILL'); } catch { /* gone */ } }, 10000);
  await exited;
  clearTimeout(t);
}

// Releases what a sandboxing server mounted for `dataDir` (as tests/integration/harness.py
// release_team_networks and release_mounts): the team networks bound under /run/berth/<FNV-1a
// of the data dir>/netns and the teams' disks mounted inside it, so the directory can go.
export function releaseMounts(dataDir) {
  let real;
  try { real = realpathSync(dataDir); } catch { return; }
  let h = 0xcbf29ce484222325n;
  for (const b of Buffer.from(real)) h = ((h ^ BigInt(b)) * 0x100000001b3n) & 0xffffffffffffffffn;
  const nets = `/run/berth/${h.toString(16).padStart(16, '0')}`;
  const points = [];
  for (const line of readFileSync('/proc/self/mountinfo', 'utf8').split('\n')) {
    const p = (line.split(' ')[4] || '').replace(/\\040/g, ' ');
    if (p.startsWith(real + sep) || p.startsWith(nets + sep)) points.push(p);
  }
  points.sort((a, b) => b.length - a.length);
  for (const p of points) spawnSync('umount', ['-l', p]);
  rmSync(nets, { recursive: true, force: true });
}

// Kills every instance process a server under `root` started (instances outlive the server by
// design). Like tests/integration/harness.py reap_runtime: shims are recognised by their
// command line (`berth shim --dir <under root>`), apps by their working directory (under
// root); both by PID read from /proc, never by name. Returns the PIDs it killed.
export function reapRuntime(root) {
  const real = realpathSync(root);
  const under = (p) => {
    const x = p.replace(/ \(deleted\)$/, '');
    return x === real || x.startsWith(real + sep);
  };
  const victims = [];
  for (const entry of readdirSync('/proc')) {
    if (!/^\d+$/.test(entry) || Number(entry) === process.pid) continue;
    let args;
    let cwd;
    try {
      args = readFileSync(`/proc/${entry}/cmdline`, 'utf8').split('\0').filter(Boolean);
      cwd = readlinkSync(`/proc/${entry}/cwd`);
    } catch {
      continue;
    }
    let isShim = false;
    if (args.length >= 4 && args[1] === 'shim' && args[2] === '--dir') {
      try { isShim = under(realpathSync(args[3])); } catch { isShim = under(args[3]); }
    }
    if (isShim || under(cwd)) victims.push(Number(entry));
  }
  for (const pid of victims) {
    try { process.kill(pid, 'SIGKILL'); } catch { /* already gone */ }
  }
  return victims;
}

export async function launchBrowser(profile) {
  // A fresh profile directory (playwright passes it as --user-data-dir).
  return chromium.launchPersistentContext(profile, {
    executablePath: CHROMIUM,
    headless: true,
    args: ['--headless', '--no-sandbox', '--disable-gpu', '--disable-quic', '--no-first-run',
      '--disable-background-networking', '--disable-component-update', '--disable-sync'],
    viewport: { width: 1280, height: 800 },
    locale: 'en-US',
  });
}

// Records console errors and uncaught page errors; `problems.http` lists the failed responses
// (method, status, URL), which Chromium's console messages do not name.
export function watchProblems(page) {
  const problems = [];
  problems.http = [];
  page.on('console', (m) => { if (m.type() === 'error') problems.push(`console: ${m.text()}`); });
  page.on('pageerror', (e) => problems.push(`page error: ${e.message}`));
  page.on('response', (r) => {
    if (r.status() >= 400) problems.http.push(`${r.request().method()} ${r.status()} ${r.url()}`);
  });
  return problems;
}

export function apiClient(url, token) {
  return async (method, path, body) => {
    const r = await fetch(url + '/api/v1' + path, {
      method,
      headers: { Authorization: `Bearer ${token}`, 'Content-Type': 'application/json' },
      body: body === undefined ? undefined : JSON.stringify(body),
    });
    const text = await r.text();
    let json = null;
    try { json = text ? JSON.parse(text) : null; } catch { /* not JSON */ }
    return { status: r.status, body: json, text };
  };
}

export async function login(page, url, user, password) {
  await page.goto(url + '/login');
  await page.getByLabel('User name').fill(user);
  await page.getByLabel('Password').fill(password);
  await page.getByRole('button', { name: 'Sign in' }).click();
  await page.waitForURL('**/teams/*/apps');
}

// Polls `fn` until it returns a truthy value or `ms` pass.
export async function eventually(fn, what, ms = 60000) {
  const deadline = Date.now() + ms;
  let last;
  while (Date.now() < deadline) {
    try {
      last = await fn();
      if (last) return last;
    } catch (e) {
      last = e;
    }
    await new Promise((r) => setTimeout(r, 250));
  }
  throw new Error(`timed out waiting for ${what} (last: ${last instanceof Error ? last.message : JSON.stringify(last)})`);
}
