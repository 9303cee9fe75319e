import assert from 'node:assert/strict';
import { randomBytes } from 'node:crypto';
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, before, beforeEach, describe, it } from 'node:test';
import { Registry } from 'prom-client';
import type { ApiOptions } from '../../src/api/server.js';
import { resolveStartOptions } from '../../src/cli/start-command.js';
import { decodeIdToken, signatureValid, signingKeysOf } from '../../src/platform/oidc-id-token.js';
import {
  type OidcSettings,
  parseProvisioningRules,
  resolveOidcSettings,
} from '../../src/platform/oidc-settings.js';
import { createStorage, openDatabase, SecretBox } from '../../src/storage/index.js';
import { capturingLogger, type LogEntry } from '../helpers/capture.js';
import { freePort } from '../helpers/sockets.js';
import {
  BACKCHANNEL_LOGOUT_EVENT,
  FakeOidcProvider,
  newSigningKey,
  signJwt,
} from './oidc-fake-provider.js';
import { ADMIN_TOKEN, PASSWORD, type PlatformApi, startPlatformApi } from './platform-helpers.js';

/**
 * OIDC login end to end: Galet's API on a real port, a real (small) OpenID provider on another,
 * and a "browser" that follows each redirect by hand and carries the cookies itself.
 */

const CLIENT_ID = 'galet-console';
const CLIENT_SECRET = 'a client secret: 0123456789abcdef';

interface Setup {
  api: PlatformApi;
  provider: FakeOidcProvider;
  base: string;
  logs: LogEntry[];
  metrics: Registry;
  tenantId: string;
  close(): Promise<void>;
}

/** A provider, then Galet's API listening on 127.0.0.1 with OIDC login pointed at it. */
async function setUp(
  oidc: Partial<OidcSettings> = {},
  api: Partial<ApiOptions> = {},
): Promise<Setup> {
  let platform: PlatformApi | undefined;
  const provider = await FakeOidcProvider.start({
    clientId: CLIENT_ID,
    clientSecret: CLIENT_SECRET,
    now: () => (platform as PlatformApi).clock.now.getTime(),
  });
  const port = await freePort();
  const base = `http://127.0.0.1:${port}`;
  const logs: LogEntry[] = [];
  const metrics = new Registry();
  platform = await startPlatformApi({
    logger: capturingLogger(logs),
    metrics,
    oidc: {
      issuer: provider.issuer,
      clientId: CLIENT_ID,
      clientSecret: CLIENT_SECRET,
      redirectUrl: `${base}/api/v1/auth/oidc/callback`,
      displayName: 'Keycloak',
      ...oidc,
    },
    ...api,
  });
  await platform.app.listen({ host: '127.0.0.1', port });
  const tenantId = (
    await platform.request('POST', '/api/v1/tenants', { body: { name: 'Veauche' } })
  ).json.id as string;
  const created = platform;
  return {
    api: created,
    provider,
    base,
    logs,
    metrics,
    tenantId,
    async close() {
      await created.close();
      await provider.close();
    },
  };
}

async function addUser(setup: Setup, email: string, body: Record<string, unknown> = {}) {
  const answer = await setup.api.request('POST', '/api/v1/users', {
    body: { email, password: PASSWORD, tenantId: setup.tenantId, role: 'operator', ...body },
  });
  assert.equal(answer.status, 201, JSON.stringify(answer.json));
  return answer.json as { id: string };
}

/** The `name=value` of each Set-Cookie, and the whole header lines. */
function cookiesOf(response: Response): { values: Record<string, string>; lines: string[] } {
  const lines = response.headers.getSetCookie();
  const values: Record<string, string> = {};
  for (const line of lines) {
    const [pair] = line.split(';');
    const equals = (pair as string).indexOf('=');
    values[(pair as string).slice(0, equals)] = (pair as string).slice(equals + 1);
  }
  return { values, lines };
}

interface Started {
  authorizeUrl: string;
  flowCookie: string;
  response: Response;
}

/** The console's "Sign in with …" link, as a browser follows it. */
async function start(setup: Setup, accept = 'text/html'): Promise<Started> {
  const response = await fetch(`${setup.base}/api/v1/auth/oidc/start`, {
    redirect: 'manual',
    headers: { accept },
  });
  const authorizeUrl =
    response.status === 302
      ? (response.headers.get('location') as string)
      : ((await response.json()) as { authorizationUrl: string }).authorizationUrl;
  const flowCookie = cookiesOf(response).values['galet_oidc_flow'] as string;
  return { authorizeUrl, flowCookie, response };
}

/** The browser at the provider: the person is logged in at once, sent back with a code. */
async function authorize(authorizeUrl: string): Promise<string> {
  const response = await fetch(authorizeUrl, { redirect: 'manual' });
  assert.equal(response.status, 302, await response.text());
  return response.headers.get('location') as string;
}

async function callback(
  callbackUrl: string,
  flowCookie: string | undefined,
  accept = 'application/json',
): Promise<Response> {
  return fetch(callbackUrl, {
    redirect: 'manual',
    headers: {
      accept,
      ...(flowCookie === undefined ? {} : { cookie: `galet_oidc_flow=${flowCookie}` }),
    },
  });
}

/** The whole login; answers the callback's response. */
async function login(setup: Setup, accept = 'application/json'): Promise<Response> {
  const started = await start(setup);
  return callback(await authorize(started.authorizeUrl), started.flowCookie, accept);
}

/** A refused login: its status, reason, and no session cookie. */
async function assertRefused(response: Response, status: number, reason: string): Promise<void> {
  const body = (await response.json()) as {
    error: string;
    message: string;
    details: { reason: string };
  };
  assert.equal(response.status, status, JSON.stringify(body));
  assert.equal(body.error, 'OIDC_LOGIN_FAILED');
  assert.equal(body.details.reason, reason, body.message);
  assert.equal(typeof body.message, 'string');
  assert.equal(cookiesOf(response).values['galet_session'], undefined, 'no session');
}

async function metricValue(setup: Setup, name: string, reason?: string): Promise<number> {
  const text = await (
    await fetch(`${setup.base}/api/v1/metrics`, {
      headers: { authorization: `Bearer ${ADMIN_TOKEN}` },
    })
  ).text();
  const label = reason === undefined ? '' : `\\{reason="${reason}"\\}`;
  const match = new RegExp(`^${name}${label} (\\d+)$`, 'm').exec(text);
  return match === null ? 0 : Number(match[1]);
}

async function lastLoginAudit(setup: Setup) {
  const entries = (await setup.api.request('GET', '/api/v1/audit?action=auth.login&limit=1')).json
    .entries as {
    outcome: string;
    objectId: string | null;
    actor: { type: string; id?: string | null };
    details: Record<string, unknown>;
  }[];
  return entries[0];
}

describe('OIDC login', () => {
  let setup: Setup;
  let userId: string;

  before(async () => {
    setup = await setUp();
    userId = (await addUser(setup, 'agent@veauche.fr')).id;
  });

  after(async () => {
    await setup.close();
  });

  beforeEach(() => {
    setup.provider.person = { sub: 'user-1', email: 'agent@veauche.fr', email_verified: true };
    setup.provider.idTokenOmits = [];
  });

  it('logs a user in through the provider: code flow with PKCE, the same session as a password login', async () => {
    const info = await (await fetch(`${setup.base}/api/v1/auth/oidc`)).json();
    assert.deepEqual(info, {
      enabled: true,
      displayName: 'Keycloak',
      startUrl: '/api/v1/auth/oidc/start',
    });

    const started = await start(setup);
    assert.equal(started.response.status, 302);
    const flowLine = cookiesOf(started.response).lines.find((l) =>
      l.startsWith('galet_oidc_flow='),
    );
    assert.match(
      flowLine ?? '',
      /; Path=\/api\/v1\/auth\/oidc\/callback; HttpOnly; SameSite=Lax; Max-Age=600$/,
    );
    const authorizeUrl = new URL(started.authorizeUrl);
    assert.equal(
      authorizeUrl.origin + authorizeUrl.pathname,
      `${setup.provider.issuer}/protocol/openid-connect/auth`,
    );
    const query = authorizeUrl.searchParams;
    assert.equal(query.get('response_type'), 'code');
    assert.equal(query.get('client_id'), CLIENT_ID);
    assert.equal(query.get('redirect_uri'), `${setup.base}/api/v1/auth/oidc/callback`);
    assert.equal(query.get('scope'), 'openid email profile');
    assert.equal(query.get('code_challenge_method'), 'S256');
    assert.match(query.get('code_challenge') ?? '', /^[A-Za-z0-9_-]{43}$/);
    assert.match(query.get('state') ?? '', /^[A-Za-z0-9_-]{43}$/);
    assert.match(query.get('nonce') ?? '', /^[A-Za-z0-9_-]{43}$/);
    // The cookie is sealed: neither the state nor the nonce can be read from it.
    assert.ok(!started.flowCookie.includes(query.get('state') as string));
    assert.ok(
      !Buffer.from(started.flowCookie, 'base64url')
        .toString('latin1')
        .includes(query.get('nonce') as string),
    );

    const callbackUrl = await authorize(started.authorizeUrl);
    const response = await callback(callbackUrl, started.flowCookie, 'text/html');
    assert.equal(response.status, 302);
    assert.equal(response.headers.get('location'), '/console/');
    assert.equal(response.headers.get('cache-control'), 'no-store');
    const cookies = cookiesOf(response);
    assert.match(cookies.values['galet_session'] ?? '', /^galet_session_/);
    assert.ok(
      cookies.lines.some((l) =>
        /^galet_session=.*; Path=\/api\/v1; HttpOnly; SameSite=Strict; Max-Age=43200$/.test(l),
      ),
      cookies.lines.join('\n'),
    );
    assert.ok(
      cookies.lines.some((l) => /^galet_oidc_flow=; .*Max-Age=0/.test(l)),
      'flow cookie cleared',
    );
    assert.equal(cookies.lines.length, 2, cookies.lines.join('\n'));
    assert.deepEqual(setup.provider.seen.tokenAuth.at(-1), 'basic');

    const me = await fetch(`${setup.base}/api/v1/auth/me`, {
      headers: { cookie: `galet_session=${cookies.values['galet_session']}` },
    });
    assert.equal(me.status, 200);
    const body = (await me.json()) as {
      kind: string;
      user: { id: string; email: string; lastLoginAt: string };
    };
    assert.equal(body.kind, 'user');
    assert.equal(body.user.id, userId);
    assert.equal(body.user.lastLoginAt, setup.api.clock.now.toISOString());

    const audit = await lastLoginAudit(setup);
    assert.equal(audit?.outcome, 'success');
    assert.equal(audit?.objectId, userId);
    assert.deepEqual(audit?.actor.type, 'user');
    assert.deepEqual(audit?.details, {
      method: 'oidc',
      email: 'agent@veauche.fr',
      amr: ['pwd', 'otp'],
    });
    assert.equal(await metricValue(setup, 'galet_oidc_logins_total'), 1);
    assert.ok((await metricValue(setup, 'galet_oidc_logins_started_total')) >= 1);
  });

  it('answers JSON to a client that asks for it: the URL, then the session as POST /auth/login does', async () => {
    const started = await start(setup, 'application/json');
    assert.equal(started.response.status, 200);
    const response = await callback(await authorize(started.authorizeUrl), started.flowCookie);
    assert.equal(response.status, 200);
    const body = (await response.json()) as {
      token: string;
      expiresAt: string;
      user: { id: string };
    };
    assert.match(body.token, /^galet_session_/);
    assert.equal(body.user.id, userId);
    const me = await setup.api.request('GET', '/api/v1/auth/me', { token: body.token });
    assert.equal(me.json.user.email, 'agent@veauche.fr');
  });

  it('reads the discovery document and the keys once, not at every login', async () => {
    const before = { ...setup.provider.seen };
    for (let i = 0; i < 3; i += 1) assert.equal((await login(setup)).status, 200);
    assert.equal(setup.provider.seen.discovery, before.discovery);
    assert.equal(setup.provider.seen.jwks, before.jwks);
  });

  it('refuses an answer whose state is not the one of the browser’s login', async () => {
    const started = await start(setup);
    const callbackUrl = new URL(await authorize(started.authorizeUrl));
    callbackUrl.searchParams.set('state', 'A'.repeat(43));
    const failuresBefore = await metricValue(
      setup,
      'galet_oidc_login_failures_total',
      'state-mismatch',
    );
    await assertRefused(
      await callback(callbackUrl.href, started.flowCookie),
      400,
      'state-mismatch',
    );
    assert.equal(
      await metricValue(setup, 'galet_oidc_login_failures_total', 'state-mismatch'),
      failuresBefore + 1,
    );
    const audit = await lastLoginAudit(setup);
    assert.equal(audit?.outcome, 'failure');
    assert.equal(audit?.actor.type, 'anonymous');
    assert.deepEqual(audit?.details, { method: 'oidc', reason: 'state-mismatch' });
  });

  it('refuses a callback without the flow cookie, or with another browser’s', async () => {
    const started = await start(setup);
    const callbackUrl = await authorize(started.authorizeUrl);
    await assertRefused(await callback(callbackUrl, undefined), 400, 'flow-missing');
    const other = await start(setup);
    await assertRefused(await callback(callbackUrl, other.flowCookie), 400, 'state-mismatch');
    const tampered = `${started.flowCookie.slice(0, -4)}AAAA`;
    await assertRefused(await callback(callbackUrl, tampered), 400, 'flow-missing');
  });

  it('refuses a replayed callback, and a code used once already', async () => {
    const started = await start(setup);
    const callbackUrl = await authorize(started.authorizeUrl);
    assert.equal((await callback(callbackUrl, started.flowCookie)).status, 200);
    // The same answer again, with the same cookie.
    await assertRefused(await callback(callbackUrl, started.flowCookie), 400, 'state-reused');
    // The old code with a new login's state and cookie: the provider refuses it.
    const again = await start(setup);
    const stolen = new URL(callbackUrl);
    stolen.searchParams.set(
      'state',
      new URL(again.authorizeUrl).searchParams.get('state') as string,
    );
    await assertRefused(await callback(stolen.href, again.flowCookie), 401, 'token-refused');
  });

  it('refuses a login that took longer than the flow cookie lives', async () => {
    const started = await start(setup);
    const callbackUrl = await authorize(started.authorizeUrl);
    setup.api.clock.advance(10 * 60_000 + 1);
    await assertRefused(await callback(callbackUrl, started.flowCookie), 400, 'flow-expired');
  });

  it('refuses an ID token signed by another key, under a published kid or an unknown one', async () => {
    const intruder = newSigningKey('RS256', 'key-1');
    setup.provider.tamperNext((draft) => {
      draft.key = intruder;
    });
    await assertRefused(await login(setup), 401, 'bad-signature');
    setup.api.clock.advance(60_000); // past the JWKS refresh pause, so that a refresh is tried
    const jwksBefore = setup.provider.seen.jwks;
    setup.provider.tamperNext((draft) => {
      draft.key = newSigningKey('RS256', 'key-unknown');
    });
    await assertRefused(await login(setup), 401, 'unknown-key');
    assert.equal(setup.provider.seen.jwks, jwksBefore + 1, 'the keys were fetched again, once');
  });

  it('refuses tokens that are not meant for Galet: wrong audience, wrong issuer', async () => {
    setup.provider.tamperNext((draft) => {
      draft.claims['aud'] = 'another-client';
    });
    await assertRefused(await login(setup), 401, 'wrong-audience');
    setup.provider.tamperNext((draft) => {
      draft.claims['aud'] = [CLIENT_ID, 'another-client'];
      draft.claims['azp'] = 'another-client';
    });
    await assertRefused(await login(setup), 401, 'wrong-audience');
    setup.provider.tamperNext((draft) => {
      draft.claims['iss'] = 'https://evil.example.org/realms/galet';
    });
    await assertRefused(await login(setup), 401, 'wrong-issuer');
  });

  it('refuses an expired ID token, and one issued in the future, beyond the clock skew', async () => {
    const nowSeconds = Math.floor(setup.api.clock.now.getTime() / 1000);
    setup.provider.tamperNext((draft) => {
      draft.claims['iat'] = nowSeconds - 600;
      draft.claims['exp'] = nowSeconds - 61;
    });
    await assertRefused(await login(setup), 401, 'expired');
    // Within the skew (60 s): accepted.
    setup.provider.tamperNext((draft) => {
      draft.claims['exp'] = nowSeconds - 30;
    });
    assert.equal((await login(setup)).status, 200);
    setup.provider.tamperNext((draft) => {
      draft.claims['iat'] = nowSeconds + 3600;
    });
    await assertRefused(await login(setup), 401, 'not-yet-valid');
  });

  it('refuses an ID token whose nonce is not the login’s', async () => {
    setup.provider.tamperNext((draft) => {
      draft.claims['nonce'] = 'B'.repeat(43);
    });
    await assertRefused(await login(setup), 401, 'nonce-mismatch');
    setup.provider.tamperNext((draft) => {
      delete draft.claims['nonce'];
    });
    await assertRefused(await login(setup), 401, 'nonce-mismatch');
  });

  it('refuses unsigned and HMAC-signed tokens', async () => {
    setup.provider.tamperNext((draft) => {
      draft.header['alg'] = 'none';
    });
    await assertRefused(await login(setup), 401, 'unsupported-algorithm');
    setup.provider.tamperNext((draft) => {
      draft.header['alg'] = 'HS256';
    });
    await assertRefused(await login(setup), 401, 'unsupported-algorithm');
  });

  it('refuses an address no Galet user has, and says so in the audit log', async () => {
    setup.provider.person = { sub: 'user-9', email: 'stranger@example.org', email_verified: true };
    const response = await login(setup);
    await assertRefused(response, 403, 'unknown-user');
    const audit = await lastLoginAudit(setup);
    assert.equal(audit?.outcome, 'failure');
    assert.deepEqual(audit?.details, {
      method: 'oidc',
      reason: 'unknown-user',
      email: 'stranger@example.org',
    });
    assert.equal(
      (await setup.api.request('GET', '/api/v1/users?search=stranger')).json.users.length,
      0,
      'no user was created',
    );
  });

  it('refuses an address the provider has not verified', async () => {
    setup.provider.person = { sub: 'user-1', email: 'agent@veauche.fr', email_verified: false };
    await assertRefused(await login(setup), 403, 'email-unverified');
    setup.provider.person = { sub: 'user-1', email: 'agent@veauche.fr' };
    await assertRefused(await login(setup), 403, 'email-unverified');
  });

  it('matches the address in any case, and refuses a disabled user', async () => {
    setup.provider.person = { sub: 'user-2', email: 'Chef@Veauche.FR', email_verified: true };
    const chief = await addUser(setup, 'chef@veauche.fr');
    assert.equal((await login(setup)).status, 200);
    await setup.api.request('PATCH', `/api/v1/users/${chief.id}`, { body: { disabled: true } });
    await assertRefused(await login(setup), 403, 'user-disabled');
  });

  it('does not ask for Galet’s TOTP code: the provider authenticates the person', async () => {
    setup.provider.person = { sub: 'user-3', email: 'totp@veauche.fr', email_verified: true };
    const user = await addUser(setup, 'totp@veauche.fr');
    assert.ok(await setup.api.storage.users.enableTotp(user.id, randomBytes(20), 0));
    const password = await setup.api.request('POST', '/api/v1/auth/login', {
      token: null,
      body: { email: 'totp@veauche.fr', password: PASSWORD },
    });
    assert.equal(password.json.error, 'TOTP_REQUIRED', 'a password login still needs the code');
    assert.equal((await login(setup)).status, 200);
  });

  it('reads the e-mail address from the userinfo endpoint when the ID token has none', async () => {
    setup.provider.idTokenOmits = ['email', 'email_verified'];
    const before = setup.provider.seen.userinfo;
    const response = await login(setup);
    assert.equal(response.status, 200, await response.clone().text());
    assert.equal(((await response.json()) as { user: { id: string } }).user.id, userId);
    assert.equal(setup.provider.seen.userinfo, before + 1);
  });

  it('picks up a key rotation at the provider (a new kid), fetching the keys again', async () => {
    // An unknown kid makes Galet fetch the keys again, but at most every 10 s.
    setup.api.clock.advance(60_000);
    const jwksBefore = setup.provider.seen.jwks;
    for (const expected of [jwksBefore + 1, jwksBefore + 1]) {
      setup.provider.tamperNext((draft) => {
        draft.key = newSigningKey('ES256', 'forged');
      });
      await assertRefused(await login(setup), 401, 'unknown-key');
      assert.equal(setup.provider.seen.jwks, expected, 'one refetch, then none within 10 s');
    }

    setup.api.clock.advance(11_000);
    setup.provider.rotateKey(newSigningKey('ES256', 'key-2'));
    const response = await login(setup);
    assert.equal(response.status, 200, await response.clone().text());
    assert.equal(setup.provider.seen.jwks, jwksBefore + 2);
    assert.equal((await login(setup)).status, 200, 'the new key stays cached');
    assert.equal(setup.provider.seen.jwks, jwksBefore + 2);
  });

  it('reports an error the provider sends back (the person cancelled)', async () => {
    setup.provider.denyNext('access_denied');
    await assertRefused(await login(setup), 401, 'provider-error');
  });

  it('refuses an answer naming another issuer (RFC 9207)', async () => {
    const started = await start(setup);
    const callbackUrl = new URL(await authorize(started.authorizeUrl));
    callbackUrl.searchParams.set('iss', 'https://evil.example.org');
    await assertRefused(await callback(callbackUrl.href, started.flowCookie), 401, 'wrong-issuer');
  });

  it('shows a browser a page that says what went wrong, escaped', async () => {
    setup.provider.denyNext('<script>alert(1)</script>');
    const started = await start(setup);
    const response = await callback(
      await authorize(started.authorizeUrl),
      started.flowCookie,
      'text/html,application/xhtml+xml,application/xml;q=0.9,*/*;q=0.8',
    );
    assert.equal(response.status, 401);
    assert.match(response.headers.get('content-type') ?? '', /^text\/html/);
    assert.match(response.headers.get('content-security-policy') ?? '', /default-src 'none'/);
    const page = await response.text();
    assert.match(page, /Sign-in failed/);
    assert.match(page, /provider-error/);
    assert.ok(!page.includes('<script>'), page);
    assert.match(page, /href="\/console\/#\/login"/);
  });

  it('refuses a malformed answer as a failed login, not a crash', async () => {
    const started = await start(setup);
    const callbackUrl = new URL(await authorize(started.authorizeUrl));
    callbackUrl.searchParams.set('code', 'x'.repeat(5000));
    await assertRefused(await callback(callbackUrl.href, started.flowCookie), 400, 'bad-request');
    const noCode = new URL(callbackUrl);
    noCode.searchParams.delete('code');
    const again = await start(setup);
    noCode.searchParams.set(
      'state',
      new URL(again.authorizeUrl).searchParams.get('state') as string,
    );
    await assertRefused(await callback(noCode.href, again.flowCookie), 400, 'bad-request');
  });

  it('never logs a code, a token, a state or the client secret', async () => {
    const started = await start(setup);
    const callbackUrl = new URL(await authorize(started.authorizeUrl));
    const code = callbackUrl.searchParams.get('code') as string;
    const state = callbackUrl.searchParams.get('state') as string;
    const response = await callback(callbackUrl.href, started.flowCookie);
    const { token } = (await response.json()) as { token: string };
    await callback(callbackUrl.href, started.flowCookie); // a refusal, logged
    const written = JSON.stringify(setup.logs);
    assert.ok(
      setup.logs.some((line) => line.level === 'warn' && /state-reused/.test(JSON.stringify(line))),
    );
    for (const secret of [code, state, token, started.flowCookie, CLIENT_SECRET]) {
      assert.ok(!written.includes(secret), 'a secret reached the log');
    }
  });
});

describe('OIDC login: provider down, configuration, limits', () => {
  it('marks the session cookie Secure when the redirect URL is https, even over a plain-http hop', async () => {
    // Galet behind a TLS proxy: the public URL is https, the request reaches it over http.
    const setup = await setUp({
      redirectUrl: 'https://galet.example.org/api/v1/auth/oidc/callback',
    });
    try {
      await addUser(setup, 'agent@veauche.fr');
      const started = await start(setup);
      const back = new URL(await authorize(started.authorizeUrl));
      assert.equal(back.origin, 'https://galet.example.org');
      const response = await callback(
        `${setup.base}${back.pathname}${back.search}`,
        started.flowCookie,
      );
      assert.equal(response.status, 200, await response.clone().text());
      const session = cookiesOf(response).lines.find((line) => line.startsWith('galet_session='));
      assert.match(session ?? '', /; Secure/);
    } finally {
      await setup.close();
    }
  });

  it('answers 502 with a clear reason when the provider cannot be reached', async () => {
    const setup = await setUp();
    try {
      await setup.provider.close();
      const json = await fetch(`${setup.base}/api/v1/auth/oidc/start`, {
        headers: { accept: 'application/json' },
      });
      const body = (await json.json()) as {
        error: string;
        message: string;
        details: { reason: string };
      };
      assert.equal(json.status, 502);
      assert.equal(body.details.reason, 'provider-unreachable');
      assert.match(body.message, /could not be reached/);
      const page = await fetch(`${setup.base}/api/v1/auth/oidc/start`, {
        redirect: 'manual',
        headers: { accept: 'text/html' },
      });
      assert.equal(page.status, 502);
      assert.match(await page.text(), /provider-unreachable/);
      assert.equal(
        await metricValue(setup, 'galet_oidc_login_failures_total', 'provider-unreachable'),
        2,
      );
    } finally {
      await setup.close();
    }
  });

  it('answers 502 when the provider goes down between the start and the callback', async () => {
    const setup = await setUp();
    try {
      await addUser(setup, 'agent@veauche.fr');
      const started = await start(setup);
      const callbackUrl = await authorize(started.authorizeUrl);
      await setup.provider.close();
      await assertRefused(
        await callback(callbackUrl, started.flowCookie),
        502,
        'provider-unreachable',
      );
    } finally {
      await setup.close();
    }
  });

  it('authenticates with client_secret_post when configured so', async () => {
    const setup = await setUp({ tokenEndpointAuth: 'client_secret_post' });
    try {
      await addUser(setup, 'agent@veauche.fr');
      assert.equal((await login(setup)).status, 200);
      assert.deepEqual(setup.provider.seen.tokenAuth, ['post']);
    } finally {
      await setup.close();
    }
  });

  it('takes any address when verification is not required, from the configured claim', async () => {
    const setup = await setUp({ requireVerifiedEmail: false, emailClaim: 'upn' });
    try {
      await addUser(setup, 'agent@veauche.fr');
      setup.provider.person = { sub: 'user-1', upn: 'agent@veauche.fr', email: 'other@x.org' };
      assert.equal((await login(setup)).status, 200);
    } finally {
      await setup.close();
    }
  });

  it('creates a user by the provisioning rules, with the role of their group; no rule, no user', async () => {
    // The rules name a tenant: make it first, in a database the API then uses.
    const database = await openDatabase({ url: ':memory:' });
    const storage = createStorage(database, SecretBox.fromKey(randomBytes(32)));
    const veauche = await storage.tenants.create({ name: 'Veauche' });
    const noc = await storage.tenants.create({ name: 'NOC' });
    const setup = await setUp(
      {
        provisioning: parseProvisioningRules(
          `groups=agents:${veauche.id}:viewer; groups=/noc/admins:${noc.id}:admin; department=42:${veauche.id}:operator`,
        ),
      },
      { storage },
    );
    try {
      setup.provider.person = {
        sub: 'u-7',
        email: 'New.Agent@veauche.fr',
        email_verified: true,
        groups: ['agents', '/noc/admins'],
      };
      // Keycloak puts groups in the userinfo answer only, unless a mapper adds them to the token.
      setup.provider.idTokenOmits = ['groups'];
      const response = await login(setup);
      assert.equal(response.status, 200, await response.clone().text());
      const { user } = (await response.json()) as {
        user: { email: string; memberships: { tenantId: string; role: string }[] };
      };
      assert.equal(user.email, 'new.agent@veauche.fr');
      assert.deepEqual(
        user.memberships.map((m) => [m.tenantId, m.role]).sort(),
        [
          [veauche.id, 'viewer'],
          [noc.id, 'admin'],
        ].sort(),
      );
      const created = (await setup.api.request('GET', '/api/v1/audit?action=user.create')).json
        .entries as { actor: { type: string }; tenantId: string; details: object }[];
      assert.equal(created.length, 2);
      assert.ok(created.every((entry) => entry.actor.type === 'system'));
      assert.equal(await metricValue(setup, 'galet_oidc_users_provisioned_total'), 1);
      // The next login finds the user: no second creation.
      assert.equal((await login(setup)).status, 200);
      assert.equal(await metricValue(setup, 'galet_oidc_users_provisioned_total'), 1);

      setup.provider.person = {
        sub: 'u-8',
        email: 'visitor@veauche.fr',
        email_verified: true,
        groups: ['visitors'],
      };
      await assertRefused(await login(setup), 403, 'unknown-user');
      assert.equal(await storage.users.getByEmail('visitor@veauche.fr'), undefined);
    } finally {
      await setup.close();
      await database.close();
    }
  });

  it('refuses to provision into a tenant that does not exist, and creates nothing', async () => {
    const setup = await setUp({
      provisioning: [
        { claim: 'groups', value: 'agents', tenantId: 'no-such-tenant', role: 'viewer' },
      ],
    });
    try {
      setup.provider.person = {
        sub: 'u-9',
        email: 'x@veauche.fr',
        email_verified: true,
        groups: ['agents'],
      };
      await assertRefused(await login(setup), 403, 'provisioning-failed');
      assert.equal(await setup.api.storage.users.getByEmail('x@veauche.fr'), undefined);
    } finally {
      await setup.close();
    }
  });

  it('refuses a flood of failed callbacks from one IP with 429', async () => {
    const setup = await setUp({}, { loginLimits: { maxFailuresPerIp: 2 } });
    try {
      const started = await start(setup);
      const callbackUrl = await authorize(started.authorizeUrl);
      await assertRefused(await callback(callbackUrl, undefined), 400, 'flow-missing');
      await assertRefused(await callback(callbackUrl, undefined), 400, 'flow-missing');
      const response = await callback(callbackUrl, started.flowCookie);
      assert.equal(response.status, 429);
      assert.ok(Number(response.headers.get('retry-after')) > 0);
      assert.equal(
        ((await response.json()) as { details: { reason: string } }).details.reason,
        'too-many-failures',
      );
    } finally {
      await setup.close();
    }
  });

  it('is off without settings: the console hides the link, the routes answer 404', async () => {
    const api = await startPlatformApi();
    try {
      assert.deepEqual((await api.request('GET', '/api/v1/auth/oidc', { token: null })).json, {
        enabled: false,
      });
      const start = await api.app.inject({
        method: 'GET',
        url: '/api/v1/auth/oidc/start',
        headers: { accept: 'application/json' },
      });
      assert.equal(start.statusCode, 404);
      assert.equal(start.json().error, 'OIDC_NOT_CONFIGURED');
      const back = await api.app.inject({
        method: 'GET',
        url: '/api/v1/auth/oidc/callback?code=x&state=y',
        headers: { accept: 'application/json' },
      });
      assert.equal(back.statusCode, 404);
    } finally {
      await api.close();
    }
  });
});

/** The provider's POST to Galet's back-channel logout URL. */
async function backchannel(
  setup: Setup,
  body: string,
  contentType = 'application/x-www-form-urlencoded',
): Promise<Response> {
  return fetch(`${setup.base}/api/v1/auth/oidc/backchannel-logout`, {
    method: 'POST',
    headers: { 'content-type': contentType },
    body,
  });
}

function logoutForm(token: string): string {
  return new URLSearchParams({ logout_token: token }).toString();
}

/** A refused logout (§2.8): 400, no-store, OAuth's error form with Galet's reason. */
async function assertLogoutRefused(response: Response, reason: string): Promise<void> {
  const text = await response.text();
  assert.equal(response.status, 400, text);
  assert.equal(response.headers.get('cache-control'), 'no-store');
  const body = JSON.parse(text) as {
    error: string;
    error_description: string;
    details: { reason: string };
  };
  assert.equal(body.error, 'invalid_request');
  assert.equal(typeof body.error_description, 'string');
  assert.equal(body.details.reason, reason, body.error_description);
}

/** An OIDC login's session token (the JSON answer of the callback). */
async function oidcSession(setup: Setup): Promise<string> {
  const response = await login(setup);
  assert.equal(response.status, 200, await response.clone().text());
  return ((await response.json()) as { token: string }).token;
}

/** Whether a session token still opens the API. */
async function works(setup: Setup, token: string): Promise<boolean> {
  const status = (await setup.api.request('GET', '/api/v1/auth/me', { token })).status;
  assert.ok(status === 200 || status === 401, String(status));
  return status === 200;
}

async function logoutAudits(setup: Setup) {
  return (await setup.api.request('GET', '/api/v1/audit?action=auth.logout&limit=1000')).json
    .entries as {
    outcome: string;
    objectId: string | null;
    tenantId: string | null;
    actor: { type: string; id?: string | null };
    details: Record<string, unknown>;
  }[];
}

describe('OIDC back-channel logout', () => {
  let setup: Setup;
  let userId: string;

  before(async () => {
    setup = await setUp();
    userId = (await addUser(setup, 'agent@veauche.fr')).id;
  });

  after(async () => {
    await setup.close();
  });

  beforeEach(() => {
    setup.provider.person = { sub: 'user-1', email: 'agent@veauche.fr', email_verified: true };
    setup.provider.sendSid = true;
  });

  it('ends the console sessions opened from the provider session it names, and only those', async () => {
    const first = await oidcSession(setup);
    const firstSid = setup.provider.sessions.at(-1);
    const second = await oidcSession(setup);
    const password = (
      await setup.api.request('POST', '/api/v1/auth/login', {
        token: null,
        body: { email: 'agent@veauche.fr', password: PASSWORD },
      })
    ).json.token as string;
    const response = await backchannel(
      setup,
      logoutForm(setup.provider.logoutToken({ sid: firstSid })),
    );
    assert.equal(response.status, 200, await response.clone().text());
    assert.equal(await response.text(), '');
    assert.equal(response.headers.get('cache-control'), 'no-store');
    assert.equal(await works(setup, first), false, 'the session of that provider session ended');
    assert.equal(await works(setup, second), true, 'another provider session goes on');
    assert.equal(await works(setup, password), true, 'a password login goes on');

    const [entry] = await logoutAudits(setup);
    assert.equal(entry?.outcome, 'success');
    assert.equal(entry?.objectId, userId);
    assert.deepEqual(entry?.actor, { type: 'user', id: userId, tenantId: setup.tenantId });
    assert.equal(entry?.tenantId, setup.tenantId);
    assert.equal(entry?.details['method'], 'oidc-backchannel');
    assert.equal(entry?.details['by'], 'sid+sub');
    assert.equal(entry?.details['subject'], 'user-1');
    assert.equal(entry?.details['sessionsEnded'], 1);
    assert.ok(!JSON.stringify(entry).includes(firstSid as string), 'the sid is not recorded');
    assert.equal(await metricValue(setup, 'galet_oidc_backchannel_logouts_total'), 1);
    assert.equal(await metricValue(setup, 'galet_oidc_backchannel_sessions_ended_total'), 1);

    // The logout by sub alone: every OIDC session of the person, never the password one.
    const third = await oidcSession(setup);
    const bySub = await backchannel(setup, logoutForm(setup.provider.logoutToken({ sid: null })));
    assert.equal(bySub.status, 200);
    assert.equal(await works(setup, second), false);
    assert.equal(await works(setup, third), false);
    assert.equal(await works(setup, password), true);
    assert.equal((await logoutAudits(setup))[0]?.details['sessionsEnded'], 2);
    assert.equal(await metricValue(setup, 'galet_oidc_backchannel_sessions_ended_total'), 3);
  });

  it('ends the sessions of another person only by their own sub or sid', async () => {
    const mine = await oidcSession(setup);
    await addUser(setup, 'chef@veauche.fr');
    setup.provider.person = { sub: 'user-2', email: 'chef@veauche.fr', email_verified: true };
    const theirs = await oidcSession(setup);
    const theirSid = setup.provider.sessions.at(-1);
    // Their sid with my sub: nothing of theirs ends (nor mine).
    setup.provider.person = { sub: 'user-1', email: 'agent@veauche.fr', email_verified: true };
    const crossed = await backchannel(
      setup,
      logoutForm(setup.provider.logoutToken({ sid: theirSid })),
    );
    assert.equal(crossed.status, 200);
    assert.equal(await works(setup, theirs), true);
    assert.equal(await works(setup, mine), true);
    const [entry] = await logoutAudits(setup);
    assert.equal(entry?.objectId, null, 'recorded though it ended nothing');
    assert.equal(entry?.details['sessionsEnded'], 0);
    // A login whose ID token had no sid ends with a token naming its sub (with any sid).
    setup.provider.sendSid = false;
    const withoutSid = await oidcSession(setup);
    const ended = await backchannel(
      setup,
      logoutForm(setup.provider.logoutToken({ sid: 'a-session-galet-never-saw' })),
    );
    assert.equal(ended.status, 200);
    assert.equal(await works(setup, withoutSid), false);
    assert.equal(await works(setup, mine), true, 'it came from another provider session');
    assert.equal(await works(setup, theirs), true);
  });

  it('refuses a replayed logout token: a session opened since goes on', async () => {
    const token = setup.provider.logoutToken({ sid: null });
    assert.equal((await backchannel(setup, logoutForm(token))).status, 200);
    const since = await oidcSession(setup);
    await assertLogoutRefused(await backchannel(setup, logoutForm(token)), 'replayed');
    assert.equal(await works(setup, since), true);
    const [entry] = await logoutAudits(setup);
    assert.equal(entry?.outcome, 'failure');
    assert.deepEqual(entry?.actor, { type: 'anonymous', id: null, tenantId: null });
    assert.deepEqual(entry?.details, { method: 'oidc-backchannel', reason: 'replayed' });
    assert.equal(
      await metricValue(setup, 'galet_oidc_backchannel_logout_failures_total', 'replayed'),
      1,
    );
  });

  it('refuses tokens that are not the provider’s logout tokens for Galet, and ends nothing', async () => {
    const session = await oidcSession(setup);
    const nowSeconds = Math.floor(setup.api.clock.now.getTime() / 1000);
    const provider = setup.provider;
    const cases: [string, string, string][] = [
      [
        'signed by another key under the published kid',
        provider.logoutToken({ key: newSigningKey('RS256', 'key-1') }),
        'bad-signature',
      ],
      [
        'signed by a key the provider does not publish',
        provider.logoutToken({ key: newSigningKey('ES256', 'key-elsewhere') }),
        'unknown-key',
      ],
      ['for another client', provider.logoutToken({ claims: { aud: 'other' } }), 'wrong-audience'],
      [
        'from another issuer',
        provider.logoutToken({ claims: { iss: 'https://evil.example.org' } }),
        'wrong-issuer',
      ],
      [
        'without the events claim',
        provider.logoutToken({ claims: { events: undefined } }),
        'not-a-logout-token',
      ],
      [
        'with events as a list (an early draft)',
        provider.logoutToken({ claims: { events: [BACKCHANNEL_LOGOUT_EVENT] } }),
        'not-a-logout-token',
      ],
      [
        'with another event',
        provider.logoutToken({ claims: { events: { 'urn:example:other': {} } } }),
        'not-a-logout-token',
      ],
      [
        'typed as an access token',
        provider.logoutToken({ header: { typ: 'at+jwt' } }),
        'not-a-logout-token',
      ],
      [
        'with a nonce',
        provider.logoutToken({ claims: { nonce: 'n-0S6_WzA2Mj' } }),
        'nonce-present',
      ],
      ['naming nobody', provider.logoutToken({ sub: null, sid: null }), 'no-subject'],
      ['without jti', provider.logoutToken({ claims: { jti: undefined } }), 'malformed-token'],
      [
        'issued ten minutes ago',
        provider.logoutToken({ claims: { iat: nowSeconds - 600, exp: undefined } }),
        'too-old',
      ],
      [
        'expired',
        provider.logoutToken({ claims: { iat: nowSeconds - 200, exp: nowSeconds - 100 } }),
        'expired',
      ],
      [
        'issued in an hour',
        provider.logoutToken({ claims: { iat: nowSeconds + 3600 } }),
        'not-yet-valid',
      ],
      ['unsigned', provider.logoutToken({ header: { alg: 'none' } }), 'unsupported-algorithm'],
      ['not a JWS', 'eyJhbGciOi.nope', 'malformed-token'],
    ];
    for (const [what, token, reason] of cases) {
      const response = await backchannel(setup, logoutForm(token));
      await assertLogoutRefused(response, reason);
      assert.equal(
        (await logoutAudits(setup))[0]?.details['reason'],
        reason,
        `${what}: audited as refused`,
      );
    }
    assert.equal(await works(setup, session), true, 'no refused token ended the session');
    assert.equal(
      await metricValue(
        setup,
        'galet_oidc_backchannel_logout_failures_total',
        'not-a-logout-token',
      ),
      4,
    );
    // An ID token of this provider is no logout token either (no events, and a nonce).
    const idToken = signJwt(
      {
        iss: provider.issuer,
        aud: CLIENT_ID,
        sub: 'user-1',
        iat: nowSeconds,
        exp: nowSeconds + 300,
        nonce: 'n-0S6_WzA2Mj',
      },
      provider.signingKey,
    );
    await assertLogoutRefused(await backchannel(setup, logoutForm(idToken)), 'not-a-logout-token');
    // A token without exp (the earlier drafts had none) but fresh is accepted.
    const response = await backchannel(
      setup,
      logoutForm(provider.logoutToken({ claims: { exp: undefined } })),
    );
    assert.equal(response.status, 200, await response.clone().text());
    assert.equal(await works(setup, session), false);
  });

  it('answers 400 to a request that is not a form with one logout_token', async () => {
    const token = setup.provider.logoutToken();
    const cases: [string, Promise<Response>][] = [
      ['JSON', backchannel(setup, JSON.stringify({ logout_token: token }), 'application/json')],
      ['plain text', backchannel(setup, token, 'text/plain')],
      ['no logout_token', backchannel(setup, 'token=x')],
      ['an empty logout_token', backchannel(setup, 'logout_token=')],
      ['two logout_tokens', backchannel(setup, `${logoutForm(token)}&${logoutForm(token)}`)],
      ['a body over 64 KiB', backchannel(setup, `logout_token=${'a'.repeat(70_000)}`)],
    ];
    for (const [what, pending] of cases) {
      const response = await pending;
      const text = await response.clone().text();
      assert.equal(response.status, 400, `${what}: ${text}`);
      await assertLogoutRefused(response, 'bad-request');
    }
  });

  it('never logs the logout token, and gives the URL to register at start', async () => {
    const token = setup.provider.logoutToken({ claims: { aud: 'other' } });
    await backchannel(setup, logoutForm(token));
    const written = JSON.stringify(setup.logs);
    assert.ok(!written.includes(token), 'the token reached the log');
    assert.ok(
      setup.logs.some(
        (line) => line.level === 'warn' && /back-channel logout refused/.test(JSON.stringify(line)),
      ),
    );
    assert.ok(
      setup.logs.some((line) =>
        JSON.stringify(line).includes(
          `"backchannelLogoutUrl":"${setup.base}/api/v1/auth/oidc/backchannel-logout"`,
        ),
      ),
      'logged at start',
    );
    const document = (await setup.api.request('GET', '/api/v1/openapi.json', { token: null })).json;
    const operation = document.paths['/api/v1/auth/oidc/backchannel-logout'].post;
    assert.deepEqual(operation.security, [], 'public');
    assert.deepEqual(Object.keys(operation.requestBody.content), [
      'application/x-www-form-urlencoded',
    ]);
  });
});

describe('OIDC back-channel logout: configuration and limits', () => {
  it('answers 400 not-configured when OIDC is off', async () => {
    const api = await startPlatformApi();
    try {
      const answer = await api.app.inject({
        method: 'POST',
        url: '/api/v1/auth/oidc/backchannel-logout',
        headers: { 'content-type': 'application/x-www-form-urlencoded' },
        payload: 'logout_token=x.y.z',
      });
      assert.equal(answer.statusCode, 400);
      assert.equal(answer.headers['cache-control'], 'no-store');
      assert.equal(answer.json().details.reason, 'not-configured');
    } finally {
      await api.close();
    }
  });

  it('stops auditing a flood of refused tokens from one IP, and still refuses them', async () => {
    const setup = await setUp({}, { loginLimits: { maxFailuresPerIp: 2 } });
    try {
      for (let i = 0; i < 4; i += 1) {
        await assertLogoutRefused(await backchannel(setup, logoutForm('a.b.c')), 'malformed-token');
      }
      const refused = (await logoutAudits(setup)).filter((entry) => entry.outcome === 'failure');
      assert.equal(refused.length, 2, 'the first two only');
      assert.equal(
        await metricValue(setup, 'galet_oidc_backchannel_logout_failures_total', 'malformed-token'),
        4,
      );
      // A valid token from there still works: the limit only silences the audit of refusals.
      await addUser(setup, 'agent@veauche.fr');
      const session = await oidcSession(setup);
      const response = await backchannel(setup, logoutForm(setup.provider.logoutToken()));
      assert.equal(response.status, 200);
      assert.equal(await works(setup, session), false);
    } finally {
      await setup.close();
    }
  });
});

describe('OIDC settings and tokens', () => {
  const base: OidcSettings = {
    issuer: 'https://sso.example.org/realms/galet',
    clientId: CLIENT_ID,
    clientSecret: CLIENT_SECRET,
    redirectUrl: 'https://lora.example.org/api/v1/auth/oidc/callback',
  };

  it('reads the settings from GALET_OIDC_* variables, the secret from a file or a variable', () => {
    const directory = mkdtempSync(join(tmpdir(), 'galet-oidc-'));
    try {
      const secretFile = join(directory, 'secret');
      writeFileSync(secretFile, 'secret-from-file\n', { mode: 0o600 });
      const options = resolveStartOptions(
        { oidcScopes: 'openid email groups', httpPort: '8443' },
        {
          GALET_OIDC_ISSUER: base.issuer,
          GALET_OIDC_CLIENT_ID: CLIENT_ID,
          GALET_OIDC_CLIENT_SECRET_FILE: secretFile,
          GALET_OIDC_CLIENT_SECRET: 'secret-from-variable',
          GALET_OIDC_REQUIRE_VERIFIED_EMAIL: 'false',
          GALET_OIDC_PROVISIONING: 'groups=agents:t-1:viewer',
        },
      );
      assert.deepEqual(options.oidc, {
        issuer: base.issuer,
        clientId: CLIENT_ID,
        clientSecret: 'secret-from-file',
        redirectUrl: 'http://localhost:8443/api/v1/auth/oidc/callback',
        scopes: ['openid', 'email', 'groups'],
        requireVerifiedEmail: false,
        provisioning: [{ claim: 'groups', value: 'agents', tenantId: 't-1', role: 'viewer' }],
      });
      const fromVariable = resolveStartOptions(
        {},
        {
          GALET_OIDC_ISSUER: base.issuer,
          GALET_OIDC_CLIENT_ID: CLIENT_ID,
          GALET_OIDC_CLIENT_SECRET: 'secret-from-variable',
        },
      );
      assert.equal(fromVariable.oidc?.clientSecret, 'secret-from-variable');
      assert.equal(resolveStartOptions({}, {}).oidc, undefined);
    } finally {
      rmSync(directory, { recursive: true, force: true });
    }
  });

  it('stops the start with the setting at fault', () => {
    const env = { GALET_OIDC_ISSUER: base.issuer, GALET_OIDC_CLIENT_ID: CLIENT_ID };
    assert.throws(
      () => resolveStartOptions({}, env),
      /OIDC login: the OIDC client secret must be set/,
    );
    assert.throws(
      () => resolveStartOptions({ oidcClientId: CLIENT_ID }, {}),
      /--oidc-client-id need --oidc-issuer/,
    );
    assert.throws(
      () =>
        resolveStartOptions(
          { oidcIssuer: 'http://sso.example.org/realms/galet' },
          { ...env, GALET_OIDC_CLIENT_SECRET: 's' },
        ),
      /must be an https:\/\/ URL/,
    );
    assert.throws(
      () =>
        resolveStartOptions(
          { oidcProvisioning: 'groups=agents:t-1:operator-admin' },
          { ...env, GALET_OIDC_CLIENT_SECRET: 's' },
        ),
      /role "operator-admin"/,
    );
    assert.throws(() => resolveOidcSettings({ ...base, scopes: ['email'] }), /must include openid/);
    assert.throws(
      () => resolveOidcSettings({ ...base, tokenEndpointAuth: 'client_secret_jwt' as never }),
      /client_secret_basic, client_secret_post, private_key_jwt, got client_secret_jwt/,
    );
  });

  it('parses provisioning rules whose values hold colons and commas', () => {
    assert.deepEqual(
      parseProvisioningRules(
        ' memberOf=cn=agents,ou=groups,dc=loire:t-1:operator ; urn=urn:x:y:t-2:owner;',
      ),
      [
        {
          claim: 'memberOf',
          value: 'cn=agents,ou=groups,dc=loire',
          tenantId: 't-1',
          role: 'operator',
        },
        { claim: 'urn', value: 'urn:x:y', tenantId: 't-2', role: 'owner' },
      ],
    );
    assert.throws(
      () => parseProvisioningRules('groups=agents:viewer'),
      /claim=value:tenantId:role/,
    );
  });

  it('checks ES256 and RS256 signatures with the JWKS keys, and refuses a changed payload', () => {
    for (const alg of ['ES256', 'RS256'] as const) {
      const key = newSigningKey(alg, `k-${alg}`);
      const keys = signingKeysOf({ keys: [key.publicJwk, { kty: 'oct', k: 'AAAA' }] });
      assert.equal(keys.length, 1);
      const token = signJwt({ sub: 'x' }, key);
      assert.ok(signatureValid(decodeIdToken(token), keys[0]!));
      const [header, , signature] = token.split('.');
      const changed = `${header}.${Buffer.from(JSON.stringify({ sub: 'y' })).toString('base64url')}.${signature}`;
      assert.ok(!signatureValid(decodeIdToken(changed), keys[0]!));
    }
  });
});
