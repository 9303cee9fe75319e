import assert from 'node:assert/strict';
import { after, before, describe, it } from 'node:test';
import { fromBase32, totp } from '../../src/platform/totp.js';
import { removeDir, startTestGalet } from '../helpers/galet.js';
import { PASSWORD, type PlatformApi, startPlatformApi } from './platform-helpers.js';

describe('platform API: API keys', () => {
  let api: PlatformApi;
  let tenantId: string;

  before(async () => {
    api = await startPlatformApi();
    tenantId = (await api.request('POST', '/api/v1/tenants', { body: { name: 'Montbrison' } })).json
      .id;
  });

  after(async () => {
    await api.close();
  });

  async function newKey(body: Record<string, unknown> = {}) {
    const answer = await api.request('POST', '/api/v1/api-keys', {
      body: { name: 'scada', tenantId, role: 'admin', ...body },
    });
    assert.equal(answer.status, 201, JSON.stringify(answer.json));
    return answer.json as { id: string; token: string; expiresAt: string | null };
  }

  it('shows the token once: never in a list or a read', async () => {
    const key = await newKey();
    assert.match(key.token, /^galet_key_[0-9a-f]{16}_/);
    const got = await api.request('GET', `/api/v1/api-keys/${key.id}`);
    assert.equal(got.json.id, key.id);
    assert.equal(got.json.token, undefined);
    const list = await api.request('GET', '/api/v1/api-keys');
    assert.ok(!JSON.stringify(list.json).includes(key.token));
    assert.ok(!JSON.stringify(got.json).includes('secretHash'));
    const me = await api.request('GET', '/api/v1/auth/me', { token: key.token });
    assert.equal(me.json.kind, 'api-key');
    assert.equal(me.json.apiKey.id, key.id);
  });

  it('refuses a tampered or unknown token with the usual 401', async () => {
    const key = await newKey();
    const tampered = `${key.token.slice(0, -2)}${key.token.endsWith('AA') ? 'BB' : 'AA'}`;
    for (const token of [tampered, `galet_key_0000000000000000_${'a'.repeat(43)}`, 'garbage']) {
      const answer = await api.request('GET', `/api/v1/tenants/${tenantId}`, { token });
      assert.equal(answer.status, 401);
      assert.deepEqual(answer.json, {
        error: 'UNAUTHORIZED',
        message: 'missing or invalid bearer token',
      });
    }
  });

  it('works until it expires, then answers 401', async () => {
    const expiresAt = new Date(api.clock.now.getTime() + 3_600_000).toISOString();
    const key = await newKey({ expiresAt });
    assert.equal(key.expiresAt, expiresAt);
    const url = `/api/v1/tenants/${tenantId}`;
    assert.equal((await api.request('GET', url, { token: key.token })).status, 200);
    api.clock.advance(3_599_999);
    assert.equal((await api.request('GET', url, { token: key.token })).status, 200);
    api.clock.advance(1);
    const expired = await api.request('GET', url, { token: key.token });
    assert.equal(expired.status, 401);
    assert.deepEqual(expired.json, {
      error: 'UNAUTHORIZED',
      message: `API key ${key.id} has expired`,
    });
  });

  it('refuses an expiry in the past or that is not a time', async () => {
    for (const expiresAt of ['2020-01-01T00:00:00Z', api.clock.now.toISOString(), 'tomorrow']) {
      const answer = await api.request('POST', '/api/v1/api-keys', {
        body: { name: 'x', tenantId, role: 'viewer', expiresAt },
      });
      assert.equal(answer.status, 400, expiresAt);
      assert.equal(answer.json.error, 'BAD_REQUEST');
    }
  });

  it('is revoked by DELETE: 401 from then on, still listed with its revocation time', async () => {
    const key = await newKey();
    const url = `/api/v1/tenants/${tenantId}`;
    assert.equal((await api.request('GET', url, { token: key.token })).status, 200);
    assert.equal((await api.request('DELETE', `/api/v1/api-keys/${key.id}`)).status, 204);
    const refused = await api.request('GET', url, { token: key.token });
    assert.equal(refused.status, 401);
    assert.deepEqual(refused.json, {
      error: 'UNAUTHORIZED',
      message: `API key ${key.id} has been revoked`,
    });
    const listed = await api.request('GET', `/api/v1/api-keys/${key.id}`);
    assert.equal(listed.json.revokedAt, api.clock.now.toISOString());
    assert.equal((await api.request('DELETE', `/api/v1/api-keys/${key.id}`)).status, 204);
    const active = await api.request('GET', `/api/v1/api-keys?includeRevoked=false`);
    assert.ok(active.json.apiKeys.every((k: { id: string }) => k.id !== key.id));
    assert.equal((await api.request('DELETE', '/api/v1/api-keys/0123456789abcdef')).status, 404);
  });

  it('lets a key revoke itself', async () => {
    const key = await newKey();
    assert.equal(
      (await api.request('DELETE', `/api/v1/api-keys/${key.id}`, { token: key.token })).status,
      204,
    );
    assert.equal((await api.request('GET', '/api/v1/tenants', { token: key.token })).status, 401);
  });

  it('records its last use at most once a minute', async () => {
    const key = await newKey();
    const lastUsed = async () =>
      (await api.request('GET', `/api/v1/api-keys/${key.id}`)).json.lastUsedAt;
    assert.equal(await lastUsed(), null);
    const start = api.clock.now.toISOString();
    await api.request('GET', '/api/v1/tenants', { token: key.token });
    assert.equal(await lastUsed(), start);
    api.clock.advance(30_000);
    await api.request('GET', '/api/v1/tenants', { token: key.token });
    assert.equal(await lastUsed(), start, 'not again within the minute');
    api.clock.advance(30_000);
    await api.request('GET', '/api/v1/tenants', { token: key.token });
    assert.equal(await lastUsed(), api.clock.now.toISOString());
  });

  it('makes viewer keys read-only, and read-only keys refuse writes', async () => {
    const viewer = await newKey({ role: 'viewer' });
    const got = await api.request('GET', `/api/v1/api-keys/${viewer.id}`);
    assert.equal(got.json.readOnly, true);
    const readOnlyOwner = await newKey({ role: 'owner', readOnly: true });
    const write = await api.request('PATCH', `/api/v1/tenants/${tenantId}`, {
      token: readOnlyOwner.token,
      body: { name: 'x' },
    });
    assert.equal(write.status, 403);
    assert.equal(
      (await api.request('GET', `/api/v1/tenants/${tenantId}`, { token: readOnlyOwner.token }))
        .status,
      200,
    );
  });

  it('refuses application keys from tenant principals until applications have tenants', async () => {
    const application = await api.request('POST', '/api/v1/applications', { body: { name: 'm' } });
    const owner = await newKey({ role: 'owner' });
    const answer = await api.request('POST', '/api/v1/api-keys', {
      token: owner.token,
      body: { name: 'i', tenantId, applicationId: application.json.id, role: 'integration' },
    });
    assert.equal(answer.status, 403);
    const unknownApp = await api.request('POST', '/api/v1/api-keys', {
      body: { name: 'i', applicationId: 'nope', role: 'integration' },
    });
    assert.equal(unknownApp.status, 404);
  });
});

describe('platform API: console login and sessions', () => {
  let api: PlatformApi;
  let tenantId: string;
  let userId: string;
  const email = 'secretaire@saint-galmier.fr';

  before(async () => {
    api = await startPlatformApi({ loginLimits: { maxFailures: 3, windowMs: 60_000 } });
    tenantId = (await api.request('POST', '/api/v1/tenants', { body: { name: 'Saint-Galmier' } }))
      .json.id;
    const user = await api.request('POST', '/api/v1/users', {
      body: { email, password: PASSWORD, tenantId, role: 'admin' },
    });
    assert.equal(user.status, 201, JSON.stringify(user.json));
    userId = user.json.id;
  });

  after(async () => {
    await api.close();
  });

  function login(body: Record<string, unknown>) {
    return api.request('POST', '/api/v1/auth/login', { token: null, body });
  }

  async function lastLoginEntry() {
    const answer = await api.request('GET', '/api/v1/audit?action=auth.login&limit=1');
    return answer.json.entries[0];
  }

  it('logs in with a password: a session token and an HttpOnly cookie, audited', async () => {
    const answer = await login({ email: 'Secretaire@Saint-Galmier.fr', password: PASSWORD });
    assert.equal(answer.status, 200, JSON.stringify(answer.json));
    assert.match(answer.json.token, /^galet_session_/);
    assert.equal(
      answer.json.expiresAt,
      new Date(api.clock.now.getTime() + 12 * 3_600_000).toISOString(),
    );
    assert.equal(answer.json.user.id, userId);
    const cookie = String(answer.headers['set-cookie']);
    assert.match(cookie, /^galet_session=galet_session_[A-Za-z0-9_-]{43}; /);
    assert.match(cookie, /HttpOnly/);
    assert.match(cookie, /SameSite=Strict/);
    assert.match(cookie, /Path=\/api\/v1/);
    const entry = await lastLoginEntry();
    assert.equal(entry.outcome, 'success');
    assert.deepEqual(entry.actor, { type: 'user', id: userId, tenantId });
    assert.equal(entry.tenantId, tenantId);
    assert.ok(!JSON.stringify(entry).includes(PASSWORD));

    const byCookie = await api.request('GET', '/api/v1/auth/me', {
      token: null,
      cookie: `galet_session=${answer.json.token}`,
    });
    assert.equal(byCookie.status, 200);
    assert.equal(byCookie.json.user.email, email);
    assert.deepEqual(byCookie.json.user.memberships, [
      { tenantId, role: 'admin', applicationId: null },
    ]);
    const byBearer = await api.request('GET', `/api/v1/users?tenantId=${tenantId}`, {
      token: answer.json.token,
    });
    assert.equal(byBearer.status, 200, 'an admin session manages the tenant’s users');
    // Devices are tenant-scoped: an admin session lists its tenant's (none yet).
    const devices = await api.request('GET', '/api/v1/devices', { token: answer.json.token });
    assert.equal(devices.status, 200);
    assert.deepEqual(devices.json, { devices: [], nextCursor: null });
  });

  it('answers an unknown address and a wrong password alike, and audits both', async () => {
    const wrong = await login({ email, password: 'not the password at all' });
    assert.equal(wrong.status, 401);
    assert.deepEqual(wrong.json, { error: 'UNAUTHORIZED', message: 'invalid email or password' });
    const wrongEntry = await lastLoginEntry();
    assert.equal(wrongEntry.outcome, 'failure');
    assert.deepEqual(wrongEntry.actor, { type: 'anonymous', id: null, tenantId: null });
    assert.equal(wrongEntry.objectId, userId);
    assert.equal(wrongEntry.details.reason, 'wrong-password');
    assert.ok(!JSON.stringify(wrongEntry).includes('not the password at all'));

    const unknown = await login({ email: 'nobody@x.fr', password: PASSWORD });
    assert.deepEqual(unknown.json, wrong.json);
    assert.equal(unknown.status, 401);
    const unknownEntry = await lastLoginEntry();
    assert.equal(unknownEntry.details.reason, 'unknown-email');
    assert.equal(unknownEntry.details.email, 'nobody@x.fr');
    // A good login resets the count for this address.
    assert.equal((await login({ email, password: PASSWORD })).status, 200);
  });

  it('limits failed logins per address and IP: 429 with Retry-After, even with the right password', async () => {
    const target = 'limited@x.fr';
    await api.request('POST', '/api/v1/users', {
      body: { email: target, password: PASSWORD, tenantId, role: 'viewer' },
    });
    for (let i = 0; i < 3; i += 1) {
      assert.equal((await login({ email: target, password: 'wrong wrong wrong' })).status, 401);
    }
    assert.equal((await lastLoginEntry()).details.lockedOut, true);
    const limited = await login({ email: target, password: PASSWORD });
    assert.equal(limited.status, 429);
    assert.equal(limited.json.error, 'TOO_MANY_REQUESTS');
    assert.equal(limited.headers['retry-after'], '60');
    api.clock.advance(59_999);
    assert.equal((await login({ email: target, password: PASSWORD })).status, 429);
    api.clock.advance(1);
    assert.equal((await login({ email: target, password: PASSWORD })).status, 200);
  });

  it('ends a session at logout, clearing the cookie, and audits it', async () => {
    const session = (await login({ email, password: PASSWORD })).json.token;
    const logout = await api.request('POST', '/api/v1/auth/logout', { token: session });
    assert.equal(logout.status, 204);
    assert.match(String(logout.headers['set-cookie']), /^galet_session=; .*Max-Age=0/);
    const after = await api.request('GET', '/api/v1/auth/me', { token: session });
    assert.equal(after.status, 401);
    assert.equal(after.json.error, 'UNAUTHORIZED');
    const entries = await api.request('GET', '/api/v1/audit?action=auth.logout&limit=1');
    assert.equal(entries.json.entries[0].actor.id, userId);
  });

  it('ends sessions when they expire, when the password changes or the user is disabled', async () => {
    const first = (await login({ email, password: PASSWORD })).json.token;
    api.clock.advance(12 * 3_600_000);
    assert.equal((await api.request('GET', '/api/v1/auth/me', { token: first })).status, 401);

    const second = (await login({ email, password: PASSWORD })).json.token;
    const newPassword = 'another long enough password';
    const refused = await api.request('PATCH', `/api/v1/users/${userId}`, {
      token: second,
      body: { password: newPassword, currentPassword: 'not it at all' },
    });
    assert.equal(refused.status, 403);
    const changed = await api.request('PATCH', `/api/v1/users/${userId}`, {
      token: second,
      body: { password: newPassword, currentPassword: PASSWORD },
    });
    assert.equal(changed.status, 200, JSON.stringify(changed.json));
    assert.equal((await api.request('GET', '/api/v1/auth/me', { token: second })).status, 401);
    assert.equal((await login({ email, password: PASSWORD })).status, 401);
    const third = (await login({ email, password: newPassword })).json.token;
    assert.ok(third);

    const disabled = await api.request('PATCH', `/api/v1/users/${userId}`, {
      body: { disabled: true, password: PASSWORD },
    });
    assert.equal(disabled.status, 200);
    assert.equal((await api.request('GET', '/api/v1/auth/me', { token: third })).status, 401);
    const refusedLogin = await login({ email, password: PASSWORD });
    assert.equal(refusedLogin.status, 401);
    assert.equal((await lastLoginEntry()).details.reason, 'disabled');
    await api.request('PATCH', `/api/v1/users/${userId}`, { body: { disabled: false } });
  });

  it('enrols a TOTP second factor, then needs a fresh code at each login', async () => {
    const session = (await login({ email, password: PASSWORD })).json.token;
    const setup = await api.request('POST', '/api/v1/auth/totp/setup', { token: session });
    assert.equal(setup.status, 200, JSON.stringify(setup.json));
    assert.match(setup.json.otpauthUri, /^otpauth:\/\/totp\/Galet:/);
    const secret = fromBase32(setup.json.secret)!;
    const codeNow = () => totp(secret, api.clock.now.getTime());
    // Not yet: the enrolment waits for a code.
    assert.equal((await login({ email, password: PASSWORD })).status, 200);
    const wrongCode = codeNow() === '000000' ? '111111' : '000000';
    const refused = await api.request('POST', '/api/v1/auth/totp/enable', {
      token: session,
      body: { code: wrongCode },
    });
    assert.equal(refused.status, 400);
    const enabled = await api.request('POST', '/api/v1/auth/totp/enable', {
      token: session,
      body: { code: codeNow() },
    });
    assert.equal(enabled.status, 204);
    assert.equal((await api.request('GET', `/api/v1/users/${userId}`)).json.totpEnabled, true);

    const withoutCode = await login({ email, password: PASSWORD });
    assert.equal(withoutCode.status, 401);
    assert.equal(withoutCode.json.error, 'TOTP_REQUIRED');
    // The enrolment code's step is used: the same code does not open a session.
    const replayed = await login({ email, password: PASSWORD, totp: codeNow() });
    assert.equal(replayed.status, 401);
    assert.equal((await lastLoginEntry()).details.reason, 'totp-replayed');
    api.clock.advance(30_000);
    const code = codeNow();
    const ok = await login({ email, password: PASSWORD, totp: code });
    assert.equal(ok.status, 200, JSON.stringify(ok.json));
    const again = await login({ email, password: PASSWORD, totp: code });
    assert.equal(again.status, 401, 'a code opens one session');
    api.clock.advance(30_000);
    // An admin resets the factor of a user who lost their phone.
    const reset = await api.request('PATCH', `/api/v1/users/${userId}`, {
      body: { resetTotp: true },
    });
    assert.equal(reset.status, 200);
    assert.equal(reset.json.totpEnabled, false);
    assert.equal((await login({ email, password: PASSWORD })).status, 200);
  });

  it('refuses TOTP enrolment to principals that are not a logged-in user', async () => {
    const answer = await api.request('POST', '/api/v1/auth/totp/setup');
    assert.equal(answer.status, 400);
  });

  it('keeps the login route public and validates its body', async () => {
    const missing = await login({ email });
    assert.equal(missing.status, 400);
    assert.equal(missing.json.error, 'BAD_REQUEST');
    const extra = await login({ email, password: PASSWORD, remember: true });
    assert.equal(extra.status, 400);
  });
});

describe('platform API through a running Galet', () => {
  it('keeps the admin token working and takes API keys and sessions over HTTP', async () => {
    const galet = await startTestGalet();
    try {
      const tenant = await galet.request('POST', '/api/v1/tenants', { name: 'Chazelles' });
      assert.equal(tenant.status, 201);
      const user = await galet.request('POST', '/api/v1/users', {
        email: 'agent@chazelles.fr',
        password: PASSWORD,
        tenantId: tenant.json.id,
        role: 'viewer',
      });
      assert.equal(user.status, 201);
      const login = await fetch(`${galet.baseUrl}/api/v1/auth/login`, {
        method: 'POST',
        headers: { 'content-type': 'application/json' },
        body: JSON.stringify({ email: 'agent@chazelles.fr', password: PASSWORD }),
      });
      assert.equal(login.status, 200);
      const cookie = login.headers.get('set-cookie')!.split(';')[0]!;
      const me = await fetch(`${galet.baseUrl}/api/v1/tenants/${tenant.json.id}`, {
        headers: { cookie },
      });
      assert.equal(me.status, 200);
      const key = await galet.request('POST', '/api/v1/api-keys', {
        name: 'noc',
        role: 'operator-admin',
      });
      const gateways = await fetch(`${galet.baseUrl}/api/v1/gateways`, {
        headers: { authorization: `Bearer ${key.json.token}` },
      });
      assert.equal(gateways.status, 200);
      assert.equal((await galet.request('GET', '/api/v1/applications')).status, 200);
    } finally {
      await galet.stop();
      await removeDir(galet.dataDir);
    }
  });
});
