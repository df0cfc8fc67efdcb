// Debian's Chromium driven by playwright-core (no browser download).

import { chromium, type Browser, type BrowserContext, type Page } from 'playwright-core';
import { mkdirSync, mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { dirname, join, resolve } from 'node:path';
import { fileURLToPath } from 'node:url';

export const CHROMIUM = process.env.CHROMIUM_PATH ?? '/usr/bin/chromium';

export const ARGS = [
  '--headless',
  '--no-sandbox',
  '--disable-gpu',
  '--disable-quic',
  '--no-first-run',
  '--disable-background-networking',
  '--disable-component-update',
  '--disable-sync',
  // WebGL without a GPU, through SwiftShader.
  '--enable-unsafe-swiftshader',
  '--use-angle=swiftshader',
];

/** Where screenshots go: <repo>/build/screenshots (build/ is gitignored). */
export const SHOTS = resolve(dirname(fileURLToPath(import.meta.url)), '..', '..', 'build', 'screenshots');

export interface Session {
  browser: BrowserContext;
  close(): Promise<void>;
}

export async function launch(opts: { width?: number; height?: number; args?: string[] } = {}): Promise<Session> {
  const profile = mkdtempSync(join(tmpdir(), 'panorama-chromium-'));
  const ctx = await chromium.launchPersistentContext(profile, {
    executablePath: CHROMIUM,
    headless: true,
    args: [...ARGS, ...(opts.args ?? [])],
    viewport: { width: opts.width ?? 1600, height: opts.height ?? 1000 },
    locale: 'vi-VN',
    timezoneId: 'Asia/Ho_Chi_Minh',
  });
  return {
    browser: ctx,
    async close() {
      await ctx.close();
      rmSync(profile, { recursive: true, force: true });
    },
  };
}

/** Collects console errors and page errors of a page. */
export function watchErrors(page: Page): string[] {
  const errors: string[] = [];
  page.on('console', (m) => {
    if (m.type() === 'error') errors.push(`console: ${m.text()}`);
  });
  page.on('pageerror', (e) => errors.push(`pageerror: ${e.message}\n${e.stack ?? ''}`));
  return errors;
}

export async function shot(page: Page, name: string): Promise<string> {
  mkdirSync(SHOTS, { recursive: true });
  const path = join(SHOTS, `${name}.png`);
  await page.screenshot({ path });
  return path;
}

export async function signIn(page: Page, url: string, username: string, password: string): Promise<void> {
  await page.goto(`${url}/login`);
  // Already signed in (cookies are per host, not per port): the app leaves /login.
  const form = page.locator('input[name=username]');
  await Promise.race([form.waitFor({ timeout: 15_000 }), page.waitForURL((u) => !u.pathname.startsWith('/login'), { timeout: 15_000 })]);
  if (!new URL(page.url()).pathname.startsWith('/login')) return;
  await page.fill('input[name=username]', username);
  await page.fill('input[name=password]', password);
  await page.click('button[type=submit]');
  await page.waitForURL((u) => !u.pathname.startsWith('/login'));
}

export type { Browser, Page };
