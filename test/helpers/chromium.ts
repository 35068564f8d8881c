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
