// The console's "Sign in with …" link, end to end in Debian's Chromium: the browser goes to an
// OpenID Connect provider (written for the tests, on 127.0.0.1), comes back to Galet's callback
// and lands in the console logged in, as the user whose verified e-mail the provider vouched for.
import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import type { Browser } from 'playwright-core';
import { FakeOidcProvider } from '../api/oidc-fake-provider.js';
import { chromiumOrSkip, launchChromium } from '../helpers/chromium.js';
import { removeDir, startTestGalet, type TestGalet } from '../helpers/galet.js';
import { freePort } from '../helpers/sockets.js';

const EMAIL = 'agent@veauche.example';

describe('web console with OIDC login', () => {
  it('signs in through the identity provider and lands in the console as that user', {
    timeout: 60_000,
  }, async (t) => {
    if (!chromiumOrSkip(t)) return;
    const provider = await FakeOidcProvider.start({
      clientId: 'galet-console',
      clientSecret: 'a client secret for the console test',
      now: () => Date.now(),
    });
    provider.person = { sub: 'agent-7', email: EMAIL, email_verified: true };
    let galet: TestGalet | undefined;
    let browser: Browser | undefined;
    try {
      const port = await freePort();
      galet = await startTestGalet({
        httpPort: port,
        oidc: {
          issuer: provider.issuer,
          clientId: provider.clientId,
          clientSecret: provider.clientSecret,
          redirectUrl: `http://127.0.0.1:${port}/api/v1/auth/oidc/callback`,
          displayName: 'Veauche SSO',
        },
      });
      const tenant = await galet.request('POST', '/api/v1/tenants', { name: 'Veauche' });
      const user = await galet.request('POST', '/api/v1/users', {
        email: EMAIL,
        password: 'a password nobody types here',
        tenantId: tenant.json.id,
        role: 'viewer',
      });
      assert.equal(user.status, 201, JSON.stringify(user.json));

      browser = await launchChromium();
      const context = await browser.newContext();
      const page = await context.newPage();
      page.setDefaultTimeout(5000);
      await page.goto(`${galet.baseUrl}/console/`);
      const link = page.locator('#oidc-login a');
      await link.waitFor({ state: 'visible' });
      assert.equal(await link.textContent(), 'Sign in with Veauche SSO');
      await link.click();
      // Provider, callback, then the console: logged in as the provider's person.
      await page.waitForURL(`${galet.baseUrl}/console/**`);
      await page.locator('#who').waitFor();
      assert.equal((await page.locator('#who').textContent())?.includes(EMAIL), true);
      assert.equal(provider.seen.authorize.length, 1);
      // The same session cookie as a password login (path /api/v1).
      const cookie = (await context.cookies()).find((c) => c.name === 'galet_session');
      assert.equal(cookie?.httpOnly, true);
      assert.equal(cookie?.path, '/api/v1');
      // The login is audited as an OIDC one.
      const audit = await galet.request('GET', '/api/v1/audit?limit=20');
      const login = (
        audit.json.entries as { action: string; details?: { method?: string } }[]
      ).find((entry) => entry.action === 'auth.login');
      assert.equal(login?.details?.method, 'oidc');
    } finally {
      await browser?.close();
      if (galet !== undefined) {
        await galet.stop();
        await removeDir(galet.dataDir);
      }
      await provider.close();
    }
  });
});
