import { existsSync, mkdirSync, mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { chromium, type BrowserContext, type Page } from 'playwright-core';
import { ROOT } from './stack';

/** Debian's chromium, installed by scripts/browser.sh (playwright-core never downloads a browser). */
export const CHROMIUM = process.env.CHROMIUM_PATH ?? '/usr/bin/chromium';
/** Screenshots of the browser tests: CI keeps .test-results/ as artifacts. */
export const SCREENSHOTS = path.join(ROOT, '.test-results', 'screenshots');

/**
 * A headless Chromium with a fresh, empty profile. The flags turn off what it would fetch on its
 * own (updates, sync, field trials over QUIC): on a machine without internet those connections are
 * refused and can hold pages up.
 */
export async function launchBrowser(): Promise<{ context: BrowserContext; page: Page; screenshot: (name: string) => Promise<string>; close: () => Promise<void> }> {
  if (!existsSync(CHROMIUM)) throw new Error(`no browser at ${CHROMIUM}: scripts/browser.sh installs Debian's chromium (make test runs it)`);
  const profile = mkdtempSync(path.join(tmpdir(), 'och-chromium-'));
  const context = await chromium.launchPersistentContext(profile, {
    executablePath: CHROMIUM,
    headless: true,
    args: ['--headless', '--no-sandbox', '--disable-gpu', '--disable-quic', '--no-first-run', '--disable-background-networking', '--disable-component-update', '--disable-sync'],
    viewport: { width: 1400, height: 1000 },
  });
  context.setDefaultTimeout(30_000);
  const page = context.pages()[0] ?? await context.newPage();
  mkdirSync(SCREENSHOTS, { recursive: true });
  return {
    context,
    page,
    async screenshot(name) {
      const file = path.join(SCREENSHOTS, `${name}.png`);
      await page.screenshot({ path: file, fullPage: true });
      return file;
    },
    async close() {
      await context.close();
      rmSync(profile, { recursive: true, force: true });
    },
  };
}
