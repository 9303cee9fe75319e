/** Debian's Chromium, headless, for the console's browser tests (through playwright-core). */
import { existsSync } from 'node:fs';
import type { TestContext } from 'node:test';
import { type Browser, chromium } from 'playwright-core';
import { skipOrFail } from './services.js';

const CHROMIUM = '/usr/bin/chromium';

/** True when Chromium is installed; otherwise skips the test (fails it when services are required). */
export function chromiumOrSkip(t: TestContext): boolean {
  if (existsSync(CHROMIUM)) return true;
  skipOrFail(
    t,
    `${CHROMIUM} is missing: install Debian's Chromium (apt-get install chromium) to run the console's browser tests`,
  );
  return false;
}

export function launchChromium(): Promise<Browser> {
  return chromium.launch({
    executablePath: CHROMIUM,
    args: ['--headless', '--no-sandbox', '--disable-gpu', '--disable-background-networking'],
  });
}
