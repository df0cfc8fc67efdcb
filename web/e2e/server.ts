// Starts a real `panorama` binary on a temporary data dir and a free port,
// seeds it over the public API, and tears it down. The binary comes from
// PANORAMA_BIN; nothing is built here.
//
// Two modes:
// - seeded (default): `panorama serve` plus the synthetic province of seed.ts;
// - demo (PANORAMA_E2E_DEMO=1): `panorama demo`, reading the URL and the
//   admin password it prints (for when the demo verb exists).

import { spawn, spawnSync, type ChildProcess } from 'node:child_process';
import { mkdtempSync, rmSync, existsSync } from 'node:fs';
import { createServer } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { seed, type SeedOptions, type Seeded } from './seed';

export interface Server {
  url: string;
  username: string;
  password: string;
  dataDir: string;
  /** A source token that may write observations (seeded mode). */
  sourceToken: string;
  /** What was seeded (seeded mode). */
  seeded: Seeded | null;
  mode: 'seeded' | 'demo';
  /** Server output so far, for failure messages. */
  log(): string;
  stop(): Promise<void>;
  /** Stops the server process, keeping its data (seeded mode). */
  kill(): Promise<void>;
  /** Starts it again on the same port and data dir (seeded mode). */
  restart(): Promise<void>;
  /** JSON request with a session or source token. */
  api<T = unknown>(method: string, path: string, body?: unknown, token?: string): Promise<T>;
  /** Session token of the admin, for API calls outside the browser. */
  session: string;
}

export function binary(): string {
  const bin = process.env.PANORAMA_BIN;
  if (!bin) throw new Error('set PANORAMA_BIN to a built panorama binary (cargo build -p panorama → target/debug/panorama)');
  if (!existsSync(bin)) throw new Error(`PANORAMA_BIN=${bin} does not exist`);
  return bin;
}

export async function freePort(): Promise<number> {
  return new Promise((resolve, reject) => {
    const s = createServer();
    s.once('error', reject);
    s.listen(0, '127.0.0.1', () => {
      const a = s.address();
      const port = typeof a === 'object' && a ? a.port : 0;
      s.close(() => resolve(port));
    });
  });
}

/** The environment for the server: ours without PANORAMA_* (the server reads
 *  those as configuration and refuses unknown keys such as PANORAMA_BIN). */
export function serverEnv(extra: Record<string, string> = {}): NodeJS.ProcessEnv {
  const env: NodeJS.ProcessEnv = {};
  for (const [k, v] of Object.entries(process.env)) if (!k.startsWith('PANORAMA_')) env[k] = v;
  return { ...env, ...extra };
}

function run(bin: string, args: string[], env: Record<string, string> = {}): string {
  const r = spawnSync(bin, args, { env: serverEnv(env), encoding: 'utf8', timeout: 60_000 });
  if (r.status !== 0) throw new Error(`${bin} ${args.join(' ')} failed (${r.status}): ${r.stderr}`);
  return r.stdout.trim();
}

async function waitHealthy(url: string, child: ChildProcess, log: () => string, timeoutMs = 60_000): Promise<void> {
  const until = Date.now() + timeoutMs;
  while (Date.now() < until) {
    if (child.exitCode !== null) throw new Error(`panorama exited (${child.exitCode}):\n${log()}`);
    try {
      const r = await fetch(`${url}/api/v1/health`);
      if (r.status === 200 || r.status === 503) return;
    } catch {
      // Not listening yet.
    }
    await new Promise((r) => setTimeout(r, 100));
  }
  throw new Error(`panorama did not answer on ${url} within ${timeoutMs} ms:\n${log()}`);
}

export async function apiCall<T>(url: string, method: string, path: string, body?: unknown, token?: string): Promise<T> {
  const headers: Record<string, string> = { Accept: 'application/json' };
  if (body !== undefined) headers['Content-Type'] = 'application/json';
  if (token) headers.Authorization = `Bearer ${token}`;
  const r = await fetch(url + path, { method, headers, body: body === undefined ? undefined : JSON.stringify(body) });
  const text = await r.text();
  if (!r.ok) throw new Error(`${method} ${path} → ${r.status}: ${text.slice(0, 2000)}`);
  return (text ? JSON.parse(text) : undefined) as T;
}

export async function startServer(opts: SeedOptions & { demo?: boolean } = {}): Promise<Server> {
  const bin = binary();
  const dataDir = mkdtempSync(join(tmpdir(), 'panorama-e2e-'));
  const port = await freePort();
  const demo = opts.demo ?? process.env.PANORAMA_E2E_DEMO === '1';
  let out = '';
  const log = () => out.slice(-20_000);
  let username = 'admin';
  let password = 'e2e-admin-password';
  let sourceToken = '';
  let child!: ChildProcess;
  let url = `http://127.0.0.1:${port}`;

  if (demo) {
    // One day of history keeps the start quick; PANORAMA_E2E_DEMO_ARGS overrides.
    const extra = (process.env.PANORAMA_E2E_DEMO_ARGS ?? '--backfill-days 1').split(' ').filter(Boolean);
    child = spawn(bin, ['demo', '--data-dir', dataDir, '--listen', `127.0.0.1:${port}`, ...extra], { stdio: ['ignore', 'pipe', 'pipe'], env: serverEnv() });
    child.stdout?.on('data', (d) => (out += d));
    child.stderr?.on('data', (d) => (out += d));
    const until = Date.now() + 300_000;
    while (Date.now() < until && !/(password|mật khẩu)\W+(\S+)/i.test(out) && !process.env.PANORAMA_E2E_PASSWORD) {
      if (child.exitCode !== null) throw new Error(`panorama demo exited:\n${log()}`);
      await new Promise((r) => setTimeout(r, 200));
    }
    const pw = /(?:password|mật khẩu)\W+(\S+)/i.exec(out);
    const u = /(http:\/\/[^\s]+)/.exec(out);
    password = process.env.PANORAMA_E2E_PASSWORD ?? pw?.[1] ?? '';
    if (!password) throw new Error(`panorama demo printed no password (set PANORAMA_E2E_PASSWORD):\n${log()}`);
    if (u) url = u[1].replace(/\/$/, '');
  }
  const spawnServe = () => {
    const c = spawn(bin, ['serve', '--data-dir', dataDir, '--listen', `127.0.0.1:${port}`], {
      stdio: ['ignore', 'pipe', 'pipe'],
      env: serverEnv({ RUST_LOG: process.env.RUST_LOG ?? 'warn' }),
    });
    c.stdout?.on('data', (d) => (out += d));
    c.stderr?.on('data', (d) => (out += d));
    return c;
  };
  const killChild = async () => {
    if (child.exitCode !== null || child.signalCode !== null) return;
    child.kill('SIGTERM');
    await new Promise<void>((resolve) => {
      const t = setTimeout(() => {
        child.kill('SIGKILL');
        resolve();
      }, 10_000);
      child.once('exit', () => {
        clearTimeout(t);
        resolve();
      });
    });
  };
  if (!demo) {
    run(bin, ['user', 'add', '--username', username, '--role', 'admin', '--display-name', 'Quản trị viên', '--data-dir', dataDir], {
      PANORAMA_PASSWORD: password,
    });
    sourceToken = run(bin, ['source', 'add', '--id', 'e2e', '--name', 'Kiểm thử E2E', '--expected-interval-secs', '3600', '--data-dir', dataDir]);
    child = spawnServe();
  }
  await waitHealthy(url, child, log);
  const login = await apiCall<{ token: string }>(url, 'POST', '/api/v1/auth/login', { username, password });
  const session = login.token;
  if (demo) {
    // Tests post readings of their own: give them a source of their own.
    const created = await apiCall<{ token: string }>(url, 'POST', '/api/v1/sources', { id: `e2e-${port}`, name: 'Kiểm thử E2E', expected_interval_secs: 3600 }, session);
    sourceToken = created.token;
  }
  const seeded = demo ? null : await seed(url, session, sourceToken, opts);

  return {
    url,
    username,
    password,
    dataDir,
    sourceToken,
    seeded,
    mode: demo ? 'demo' : 'seeded',
    session,
    log,
    api: (method, path, body, token) => apiCall(url, method, path, body, token ?? session),
    async stop() {
      await killChild();
      rmSync(dataDir, { recursive: true, force: true });
    },
    kill: killChild,
    async restart() {
      await killChild();
      child = spawnServe();
      await waitHealthy(url, child, log);
    },
  };
}
