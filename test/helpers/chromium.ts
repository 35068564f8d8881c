import fs from 'node:fs';
import type { Browser } from 'playwright-core';

/** Debian's Chromium; `npx playwright install` cannot download a browser here. */
export const CHROMIUM = '/usr/bin/chromium';

/**
 * The `skip` option of a browser test: skipped with a reason on a developer machine without
 * Chromium, never in CI (CI=true), where a missing browser must fail the test instead.
 */
export const chromiumSkip: false | string =
  fs.existsSync(CHROMIUM) || process.env.CI ? false : `${CHROMIUM} is not installed (apt-get install -y chromium); browser test skipped`;

/** Headless Chromium with the flags this closed network needs (no background connections). */
export async function launchChromium(): Promise<Browser> {
  const { chromium } = await import('playwright-core');
  return chromium.launch({
    executablePath: CHROMIUM,
    args: ['--headless', '--no-sandbox', '--disable-gpu', '--disable-background-networking', '--disable-component-update', '--disable-sync', '--no-first-run'],
  });
}

/**
 * A labeler's page at `base`, signed in with `token` by keyboard and waiting for `ready`: page
 * errors collected, and `press` counting every key it sends (the keystrokes-per-label figures).
 */
export async function labelerPage(browser: Browser, base: string, token: string, ready: string) {
  const page = await browser.newPage({ viewport: { width: 1400, height: 900 } });
  const errors: string[] = [];
  page.on('pageerror', (e) => errors.push(String(e)));
  await page.goto(base + '/');
  await page.keyboard.type(token);
  await page.keyboard.press('Enter');
  await page.waitForSelector(ready);
  const keys = { count: 0 };
  const press = async (k: string) => {
    keys.count++;
    await page.keyboard.press(k);
  };
  return { page, errors, press, keys };
}
