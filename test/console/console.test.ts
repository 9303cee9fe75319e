/**
 * The web console in a real browser (Debian's Chromium through playwright-core) against a real
 * Galet: an all-in-one Galet with a simulated gateway, a device it decrypts, and a second
 * application linked to a provider's Galet (in this process), whose device the operator
 * cannot decrypt. A user with TOTP logs in through the page, finds both devices, sees the
 * badge on the provider's device only, watches a live uplink arrive and logs out.
 */
import assert from 'node:assert/strict';
import { mkdtemp } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { describe, it } from 'node:test';
import type { Browser, Page } from 'playwright-core';
import { fromBase32, totp } from '../../src/platform/totp.js';
import type { RunningProvider } from '../../src/server/start-provider.js';
import { apiRequest } from '../helpers/api.js';
import { chromiumOrSkip, launchChromium } from '../helpers/chromium.js';
import { removeDir } from '../helpers/galet.js';
import { startLinkedProvider } from '../helpers/linked-provider.js';
import { ScenarioNetwork, waitFor } from '../scenarios/helpers.js';

const GW = 'aa555a0000000c01';
const DECRYPTED_DEVICE = '00000000000c0001';
const BLIND_DEVICE = '00000000000c0002';
/** A name that would run script if the console ever put data into markup. */
const HOSTILE_NAME = '<img src=x onerror="window.__injected=1"> cellar meter';
const EMAIL = 'agent@saint-galmier.example';
const PASSWORD = 'correct horse battery staple';

/** What the test reads of the page's global object (this project's TypeScript has no DOM types). */
interface PageGlobals {
  document: { cookie: string };
  stillTheSamePage?: boolean;
}

describe('web console in a browser', () => {
  it('logs in with TOTP, badges only the device the operator cannot decrypt, streams a live uplink, logs out', {
    timeout: 60_000,
  }, async (t) => {
    if (!chromiumOrSkip(t)) return;
    const net = await ScenarioNetwork.start([{ gatewayId: GW }]);
    const providerDir = await mkdtemp(join(tmpdir(), 'galet-console-provider-'));
    let provider: RunningProvider | undefined;
    let browser: Browser | undefined;
    try {
      // A device this Galet holds the keys of, with a name full of markup.
      const decrypted = await net.addOtaaDevice(DECRYPTED_DEVICE, '1.0.4');
      const renamed = await net.galet.request('PATCH', `/api/v1/devices/${DECRYPTED_DEVICE}`, {
        name: HOSTILE_NAME,
      });
      assert.equal(renamed.status, 200, JSON.stringify(renamed.json));
      await net.join(decrypted);
      const first = await net.uplink(decrypted, { fPort: 2, payload: Buffer.from('t=20.5') });

      // A second application, linked to a provider that registers its device without keys.
      const linked = await startLinkedProvider(net, {
        dataDir: providerDir,
        applicationName: 'Eau du Forez',
        device: { devEui: BLIND_DEVICE, name: 'town hall water meter' },
      });
      provider = linked.provider;
      const blind = await net.addOtaaDevice(BLIND_DEVICE, '1.0.4', { register: false });
      await net.join(blind);
      await net.uplink(blind, { fPort: 3, payload: Buffer.from('index=004217') });
      // What the console shows must be what the API says.
      for (const [devEui, expected] of [
        [DECRYPTED_DEVICE, true],
        [BLIND_DEVICE, false],
      ] as const) {
        const device = await net.galet.request('GET', `/api/v1/devices/${devEui}`);
        assert.equal(device.json.operatorCanDecrypt, expected, devEui);
      }
      // A gateway's last-seen time moves with its status reports.
      net.gateway(GW).sendStat();
      await waitFor('the gateway is seen', async () => {
        const gateway = await net.galet.request('GET', `/api/v1/gateways/${GW}`);
        return gateway.json.lastSeenAt !== null;
      });

      // An operator-admin user with a TOTP second factor (enrolled through the API).
      const user = await net.galet.request('POST', '/api/v1/users', {
        email: EMAIL,
        password: PASSWORD,
        operatorAdmin: true,
      });
      assert.equal(user.status, 201, JSON.stringify(user.json));
      const secret = await enrolTotp(net.galet.baseUrl);

      browser = await launchChromium();
      const context = await browser.newContext();
      const page = await context.newPage();
      page.setDefaultTimeout(5000);
      const watch = watchPage(page, net.galet.baseUrl);

      // `/` leads to the console, served with its security headers.
      const response = await page.goto(`${net.galet.baseUrl}/`);
      assert.equal(page.url(), `${net.galet.baseUrl}/console/`);
      const headers = response!.headers();
      assert.match(headers['content-security-policy']!, /default-src 'self'/);
      assert.match(headers['content-security-policy']!, /frame-ancestors 'none'/);
      assert.equal(headers['x-frame-options'], 'DENY');
      assert.equal(headers['referrer-policy'], 'no-referrer');

      // Login: a wrong password says so; the right one asks for the TOTP code.
      await page.fill('#email', EMAIL);
      await page.fill('#password', 'not the password at all');
      await page.click('form.login button[type=submit]');
      await expectText(page, '#login-error', /invalid email or password/i);
      assert.equal(await page.isVisible('#totp'), false);
      await page.fill('#password', PASSWORD);
      await page.click('form.login button[type=submit]');
      await expectText(page, '#login-error', /needs a TOTP code/);
      await page.locator('#totp').waitFor({ state: 'visible' });
      await page.fill('#totp', totp(secret, Date.now()));
      await page.click('form.login button[type=submit]');
      await expectText(page, '#who', EMAIL);
      // The session is in an HttpOnly, SameSite=Strict cookie: no script of the page reads it.
      assert.equal(
        await page.evaluate(() => (globalThis as unknown as PageGlobals).document.cookie),
        '',
      );
      const [cookie] = await context.cookies();
      assert.equal(cookie?.name, 'galet_session');
      assert.equal(cookie?.httpOnly, true);
      assert.equal(cookie?.sameSite, 'Strict');

      // Applications, then the decrypted device's application: no badge, its name as text.
      await page.locator(`tr[data-application-id="${linked.applicationId}"]`).waitFor();
      await page.click(`tr[data-application-id="${net.applicationId}"] a`);
      const decryptedRow = page.locator(`tr[data-dev-eui="${DECRYPTED_DEVICE}"]:not([aria-busy])`);
      await decryptedRow.waitFor();
      assert.equal(await decryptedRow.locator('a').textContent(), HOSTILE_NAME);
      assert.equal(await page.locator('main img').count(), 0, 'the name made no element');
      assert.equal(
        (await decryptedRow.locator('[data-field=fCntUp]').textContent())?.trim(),
        String(first.event.fCnt),
      );
      assert.equal(await decryptedRow.locator('.badge.blind').count(), 0);
      assert.match((await decryptedRow.locator('time').textContent()) ?? '', /ago|just now/);

      // The linked application: its device carries the badge, on the list and on its page.
      await page.click('header nav a[href="#/applications"]');
      await page.click(`tr[data-application-id="${linked.applicationId}"] a`);
      const blindRow = page.locator(`tr[data-dev-eui="${BLIND_DEVICE}"]:not([aria-busy])`);
      await blindRow.waitFor();
      assert.equal(
        (await blindRow.locator('.badge.blind').textContent())?.trim(),
        'operator cannot decrypt',
      );
      assert.ok(await blindRow.locator('.badge.blind').isVisible());
      await blindRow.locator('a').click();
      await page.locator('h1 .badge.blind').waitFor();
      await expectText(page, 'tr[data-event=up] td.payload', /^encrypted, 12 bytes$/);

      // The decrypted device's page: its latest events, then a live one without reload.
      await page.click('header nav a[href="#/applications"]');
      await page.click(`tr[data-application-id="${net.applicationId}"] a`);
      await page.click(`tr[data-dev-eui="${DECRYPTED_DEVICE}"] a`);
      await expectText(page, 'h1', HOSTILE_NAME);
      assert.equal(await page.locator('h1 .badge.blind').count(), 0);
      await expectText(
        page,
        `tr[data-event=up] td.payload`,
        `0x${Buffer.from('t=20.5').toString('hex')}`,
      );
      await page.locator('.stream[data-state=live]').waitFor();
      await page.evaluate(() => {
        (globalThis as unknown as PageGlobals).stillTheSamePage = true;
      });
      const payload = Buffer.from('t=21.0');
      const live = await net.uplink(decrypted, { fPort: 2, payload });
      const liveRow = page.locator(`tr.live[data-event-id="${live.event.id}"]`);
      await liveRow.waitFor();
      assert.equal(
        (await liveRow.locator('td.payload').textContent())?.trim(),
        `0x${payload.toString('hex')}`,
      );
      await expectText(page, 'dd[data-field=fCntUp]', String(live.event.fCnt));
      assert.equal(
        await page.evaluate(() => (globalThis as unknown as PageGlobals).stillTheSamePage),
        true,
        'the event came without a reload',
      );

      // Gateways, with when each was last heard from.
      await page.click('header nav a[href="#/gateways"]');
      const gatewayRow = page.locator(`tr[data-gateway-id="${GW}"]`);
      await gatewayRow.waitFor();
      assert.match((await gatewayRow.locator('time').textContent()) ?? '', /ago|just now/);

      // Logout ends the session on the server, not only on the page.
      await page.click('#logout');
      await expectText(page, 'form.login .notice', 'You are logged out.');
      assert.equal(await page.isVisible('#top'), false);
      const status = await page.evaluate(async () => (await fetch('/api/v1/auth/me')).status);
      assert.equal(status, 401);
      assert.deepEqual(await context.cookies(), []);

      assert.equal(await page.evaluate(() => '__injected' in globalThis), false);
      watch.assertClean();
    } finally {
      await browser?.close();
      await provider?.close();
      await net.close();
      await removeDir(providerDir);
    }
  });
});

/** Logs the user in through the API and enrols a TOTP secret; returns the secret. */
async function enrolTotp(baseUrl: string): Promise<Uint8Array> {
  const login = await fetch(`${baseUrl}/api/v1/auth/login`, {
    method: 'POST',
    headers: { 'content-type': 'application/json' },
    body: JSON.stringify({ email: EMAIL, password: PASSWORD }),
  });
  assert.equal(login.status, 200);
  const { token } = (await login.json()) as { token: string };
  const setup = await apiRequest(baseUrl, token, 'POST', '/api/v1/auth/totp/setup');
  assert.equal(setup.status, 200, JSON.stringify(setup.json));
  const secret = fromBase32(setup.json.secret)!;
  // The previous step's code (accepted, one step of drift): the login's code stays unused.
  const enabled = await apiRequest(baseUrl, token, 'POST', '/api/v1/auth/totp/enable', {
    code: totp(secret, Date.now() - 30_000),
  });
  assert.equal(enabled.status, 204, JSON.stringify(enabled.json));
  return secret;
}

/** Waits until an element of `selector` has that text (whole, trimmed), or a text `expected` matches. */
async function expectText(page: Page, selector: string, expected: string | RegExp): Promise<void> {
  const pattern =
    typeof expected === 'string'
      ? new RegExp(`^\\s*${expected.replace(/[\\^$.*+?()[\]{}|]/g, '\\$&')}\\s*$`)
      : expected;
  try {
    await page.locator(selector, { hasText: pattern }).first().waitFor();
  } catch (error) {
    const found = await page.locator(selector).allTextContents();
    throw new Error(`${selector}: expected ${String(expected)}, found ${JSON.stringify(found)}`, {
      cause: error,
    });
  }
}

/**
 * Records what must not happen on the page: a script error, a CSP violation, a request to
 * another origin.
 */
function watchPage(page: Page, origin: string) {
  const problems: string[] = [];
  page.on('pageerror', (error) => problems.push(`page error: ${error.message}`));
  page.on('console', (message) => {
    if (/Content Security Policy|Refused to/i.test(message.text())) {
      problems.push(`CSP: ${message.text()}`);
    }
  });
  page.on('request', (request) => {
    if (!request.url().startsWith(`${origin}/`)) problems.push(`request to ${request.url()}`);
  });
  return {
    assertClean: () => assert.deepEqual(problems, []),
  };
}
