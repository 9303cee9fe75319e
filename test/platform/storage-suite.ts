/**
 * The platform's storage behaviour (tenants, users, memberships, API keys, console sessions,
 * audit log) that every engine must have. `storage-sqlite.test.ts` and
 * `storage-postgres.test.ts` run it against a fresh database per test.
 */
import assert from 'node:assert/strict';
import { createHash, randomBytes } from 'node:crypto';
import { describe, it, type TestContext } from 'node:test';
import {
  createStorage,
  type GaletDatabase,
  isStorageError,
  MIGRATION_TABLE,
  SecretBox,
  type Storage,
  type StorageErrorCode,
} from '../../src/storage/index.js';
import type { StorageTestTarget } from '../storage/storage-suite.js';

const secrets = SecretBox.fromKey(randomBytes(32));
/** The storage layer only checks that a hash is an argon2 PHC string; hashing is platform's. */
const HASH =
  '$argon2id$v=19$m=19456,t=2,p=1$c2FsdHNhbHRzYWx0$aGFzaGhhc2hoYXNoaGFzaGhhc2hoYXNoaGFzaGhhc2g';

/** A clock the test moves. */
function movableClock(iso = '2026-03-01T08:00:00.000Z') {
  const clock = {
    now: new Date(iso),
    advance(ms: number) {
      clock.now = new Date(clock.now.getTime() + ms);
    },
  };
  return clock;
}

interface Setup {
  database: GaletDatabase;
  storage: Storage;
  clock: ReturnType<typeof movableClock>;
}

async function setup(target: StorageTestTarget, t: TestContext): Promise<Setup> {
  const place = await target.fresh();
  let database: GaletDatabase;
  try {
    database = await place.open();
  } catch (error) {
    await place.dispose();
    throw error;
  }
  t.after(async () => {
    await database.close();
    await place.dispose();
  });
  const clock = movableClock();
  return { database, storage: createStorage(database, secrets, { now: () => clock.now }), clock };
}

async function rejectsWith(promise: Promise<unknown>, code: StorageErrorCode): Promise<void> {
  await assert.rejects(promise, (error: unknown) => {
    assert.ok(isStorageError(error), `expected a StorageError ${code}, got ${String(error)}`);
    assert.equal(error.code, code, error.message);
    return true;
  });
}

function keyId(): string {
  return randomBytes(8).toString('hex');
}

function sha256(text: string): Uint8Array {
  return new Uint8Array(createHash('sha256').update(text).digest());
}

function sessionHash(): string {
  return randomBytes(32).toString('hex');
}

export function platformStorageSuite(target: StorageTestTarget): void {
  describe('platform migration', () => {
    it('creates the platform tables on a new database and records 0004_platform', async (t) => {
      const place = await target.pristine();
      const database = await place.open();
      t.after(async () => {
        await database.close();
        await place.dispose();
      });
      const applied = (await database.db
        .selectFrom(MIGRATION_TABLE as never)
        .select('name' as never)
        .execute()) as { name: string }[];
      assert.ok(applied.some((row) => row.name === '0004_platform'));
      for (const table of [
        'tenants',
        'users',
        'memberships',
        'api_keys',
        'console_sessions',
        'audit_log',
      ] as const) {
        assert.deepEqual(await database.db.selectFrom(table).selectAll().execute(), [], table);
      }
    });
  });

  describe('tenants', () => {
    it('creates a tenant with default kind, quotas and settings, gets and lists it', async (t) => {
      const { storage } = await setup(target, t);
      const tenant = await storage.tenants.create({ name: 'Saint-Galmier' });
      assert.deepEqual(tenant, {
        id: tenant.id,
        name: 'Saint-Galmier',
        kind: 'commune',
        quotas: { maxDevices: null, maxGateways: null },
        settings: {
          timeZone: 'UTC',
          location: null,
          retention: { eventsDays: null, auditDays: null },
        },
        createdAt: '2026-03-01T08:00:00.000Z',
        updatedAt: '2026-03-01T08:00:00.000Z',
      });
      assert.deepEqual(await storage.tenants.get(tenant.id), tenant);
      assert.equal(await storage.tenants.get('nope'), undefined);
      const water = await storage.tenants.create({
        name: 'Eau du Forez',
        kind: 'provider',
        quotas: { maxDevices: 5000, maxGateways: 0 },
        settings: {
          timeZone: 'Europe/Paris',
          location: { latitude: 45.6, longitude: 4.3 },
          retention: { eventsDays: 365 },
        },
      });
      assert.deepEqual(water.quotas, { maxDevices: 5000, maxGateways: 0 });
      assert.deepEqual(water.settings, {
        timeZone: 'Europe/Paris',
        location: { latitude: 45.6, longitude: 4.3 },
        retention: { eventsDays: 365, auditDays: null },
      });
      assert.deepEqual((await storage.tenants.list()).map((x) => x.name).sort(), [
        'Eau du Forez',
        'Saint-Galmier',
      ]);
      assert.deepEqual(
        (await storage.tenants.list({ ids: [water.id] })).map((x) => x.id),
        [water.id],
      );
      assert.deepEqual(await storage.tenants.list({ ids: [] }), []);
      assert.equal((await storage.tenants.list({ limit: 1 })).length, 1);
    });

    it('refuses a bad name, kind, quota, time zone or location', async (t) => {
      const { storage } = await setup(target, t);
      await rejectsWith(storage.tenants.create({ name: ' ' }), 'INVALID_INPUT');
      await rejectsWith(
        storage.tenants.create({ name: 'x', kind: 'village' as never }),
        'INVALID_INPUT',
      );
      await rejectsWith(
        storage.tenants.create({ name: 'x', quotas: { maxDevices: -1 } }),
        'INVALID_INPUT',
      );
      await rejectsWith(
        storage.tenants.create({ name: 'x', settings: { timeZone: 'Mars/Olympus' } }),
        'INVALID_INPUT',
      );
      await rejectsWith(
        storage.tenants.create({
          name: 'x',
          settings: { location: { latitude: 91, longitude: 0 } },
        }),
        'INVALID_INPUT',
      );
      await rejectsWith(
        storage.tenants.create({ name: 'x', settings: { retention: { auditDays: 0 } } }),
        'INVALID_INPUT',
      );
      assert.deepEqual(await storage.tenants.list(), []);
    });

    it('updates only the given fields, merging settings, and null clears', async (t) => {
      const { storage, clock } = await setup(target, t);
      const tenant = await storage.tenants.create({
        name: 'Chazelles',
        quotas: { maxDevices: 100, maxGateways: 5 },
        settings: { timeZone: 'Europe/Paris', location: { latitude: 45.6, longitude: 4.4 } },
      });
      clock.advance(1000);
      const updated = await storage.tenants.update(tenant.id, {
        name: 'Chazelles-sur-Lyon',
        quotas: { maxDevices: null },
        settings: { location: null, retention: { auditDays: 730 } },
      });
      assert.deepEqual(updated, {
        ...tenant,
        name: 'Chazelles-sur-Lyon',
        quotas: { maxDevices: null, maxGateways: 5 },
        settings: {
          timeZone: 'Europe/Paris',
          location: null,
          retention: { eventsDays: null, auditDays: 730 },
        },
        updatedAt: '2026-03-01T08:00:01.000Z',
      });
      assert.deepEqual(await storage.tenants.get(tenant.id), updated);
      assert.equal(await storage.tenants.update('nope', { name: 'x' }), undefined);
      await rejectsWith(
        storage.tenants.update(tenant.id, { settings: { timeZone: 'nowhere' } }),
        'INVALID_INPUT',
      );
    });

    it('keeps both of two concurrent updates to different fields', async (t) => {
      const { storage } = await setup(target, t);
      const tenant = await storage.tenants.create({ name: 'Veauche' });
      await Promise.all([
        storage.tenants.update(tenant.id, { settings: { timeZone: 'Europe/Paris' } }),
        storage.tenants.update(tenant.id, { quotas: { maxGateways: 3 } }),
      ]);
      const got = await storage.tenants.get(tenant.id);
      assert.equal(got?.settings.timeZone, 'Europe/Paris');
      assert.equal(got?.quotas.maxGateways, 3);
    });

    it('deletes a tenant with its memberships and API keys, and keeps its audit entries', async (t) => {
      const { storage } = await setup(target, t);
      const tenant = await storage.tenants.create({ name: 'Bellegarde' });
      const user = await storage.users.create({ email: 'maire@bellegarde.fr', passwordHash: HASH });
      await storage.memberships.set({ userId: user.id, tenantId: tenant.id, role: 'owner' });
      const id = keyId();
      await storage.apiKeys.create({
        id,
        name: 'k',
        tenantId: tenant.id,
        role: 'admin',
        readOnly: false,
        secretHash: sha256('x'),
      });
      await storage.auditLog.append({
        actor: { type: 'admin-token' },
        action: 'tenant.create',
        objectType: 'tenant',
        objectId: tenant.id,
        tenantId: tenant.id,
        outcome: 'success',
      });
      assert.equal(await storage.tenants.delete(tenant.id), true);
      assert.equal(await storage.tenants.delete(tenant.id), false);
      assert.deepEqual(await storage.memberships.listForUser(user.id), []);
      assert.equal(await storage.apiKeys.get(id), undefined);
      assert.ok(await storage.users.get(user.id), 'the user stays');
      assert.equal((await storage.auditLog.list({ tenantIds: [tenant.id] })).length, 1);
    });
  });

  describe('users', () => {
    it('normalises the e-mail address and refuses a duplicate in another case', async (t) => {
      const { storage } = await setup(target, t);
      const user = await storage.users.create({
        email: '  Agent@Saint-Galmier.FR ',
        passwordHash: HASH,
      });
      assert.deepEqual(user, {
        id: user.id,
        email: 'agent@saint-galmier.fr',
        operatorAdmin: false,
        disabled: false,
        totpEnabled: false,
        lastLoginAt: null,
        createdAt: '2026-03-01T08:00:00.000Z',
        updatedAt: '2026-03-01T08:00:00.000Z',
      });
      await rejectsWith(
        storage.users.create({ email: 'AGENT@saint-galmier.fr', passwordHash: HASH }),
        'ALREADY_EXISTS',
      );
      assert.deepEqual(await storage.users.getByEmail('agent@SAINT-galmier.fr'), user);
      assert.deepEqual(await storage.users.get(user.id), user);
      assert.equal(await storage.users.getByEmail('nobody@example.org'), undefined);
      assert.equal(await storage.users.getByEmail('not an address'), undefined);
    });

    it('refuses a bad address or something that is not an argon2 hash', async (t) => {
      const { storage } = await setup(target, t);
      await rejectsWith(
        storage.users.create({ email: 'no-at-sign', passwordHash: HASH }),
        'INVALID_INPUT',
      );
      await rejectsWith(
        storage.users.create({ email: `${'a'.repeat(250)}@x.fr`, passwordHash: HASH }),
        'INVALID_INPUT',
      );
      await rejectsWith(
        storage.users.create({ email: 'a@x.fr', passwordHash: 'plain password' }),
        'INVALID_INPUT',
      );
    });

    it('gives the credentials of a login, updates flags and records the last login', async (t) => {
      const { storage, clock } = await setup(target, t);
      const user = await storage.users.create({ email: 'a@x.fr', passwordHash: HASH });
      assert.deepEqual(await storage.users.getCredentials('A@X.FR'), {
        user,
        passwordHash: HASH,
        totp: null,
      });
      assert.equal(await storage.users.getCredentials('b@x.fr'), undefined);
      clock.advance(5000);
      const newHash = `${HASH}x`;
      const updated = await storage.users.update(user.id, {
        passwordHash: newHash,
        disabled: true,
        operatorAdmin: true,
      });
      assert.equal(updated?.disabled, true);
      assert.equal(updated?.operatorAdmin, true);
      assert.equal(updated?.updatedAt, '2026-03-01T08:00:05.000Z');
      assert.equal((await storage.users.getCredentials('a@x.fr'))?.passwordHash, newHash);
      assert.equal(await storage.users.update('nope', { disabled: true }), undefined);
      await storage.users.recordLogin(user.id, '2026-03-01T09:00:00Z');
      assert.equal((await storage.users.get(user.id))?.lastLoginAt, '2026-03-01T09:00:00.000Z');
    });

    it('lists users, or the members of some tenants', async (t) => {
      const { storage } = await setup(target, t);
      const a = await storage.tenants.create({ name: 'A' });
      const b = await storage.tenants.create({ name: 'B' });
      const ua = await storage.users.create({ email: 'a@x.fr', passwordHash: HASH });
      const ub = await storage.users.create({ email: 'b@x.fr', passwordHash: HASH });
      const both = await storage.users.create({ email: 'ab@x.fr', passwordHash: HASH });
      await storage.memberships.set({ userId: ua.id, tenantId: a.id, role: 'viewer' });
      await storage.memberships.set({ userId: ub.id, tenantId: b.id, role: 'viewer' });
      await storage.memberships.set({ userId: both.id, tenantId: a.id, role: 'admin' });
      await storage.memberships.set({ userId: both.id, tenantId: b.id, role: 'owner' });
      const emails = async (tenantIds?: string[]) =>
        (await storage.users.list(tenantIds === undefined ? {} : { tenantIds }))
          .map((u) => u.email)
          .sort();
      assert.deepEqual(await emails(), ['a@x.fr', 'ab@x.fr', 'b@x.fr']);
      assert.deepEqual(await emails([a.id]), ['a@x.fr', 'ab@x.fr']);
      assert.deepEqual(await emails([a.id, b.id]), ['a@x.fr', 'ab@x.fr', 'b@x.fr']);
      assert.deepEqual(await emails([]), []);
    });

    it('seals the TOTP secret, enrols it after confirmation and disables it', async (t) => {
      const { storage, database } = await setup(target, t);
      const user = await storage.users.create({ email: 'a@x.fr', passwordHash: HASH });
      const secret = new Uint8Array(randomBytes(20));
      assert.equal(await storage.users.getPendingTotp(user.id), undefined);
      assert.equal(await storage.users.setPendingTotp(user.id, secret), true);
      assert.deepEqual(await storage.users.getPendingTotp(user.id), secret);
      assert.equal(
        (await storage.users.getCredentials('a@x.fr'))?.totp,
        null,
        'not before confirmation',
      );
      assert.equal(await storage.users.enableTotp(user.id, secret, 1000), true);
      assert.equal(await storage.users.getPendingTotp(user.id), undefined);
      assert.deepEqual((await storage.users.getCredentials('a@x.fr'))?.totp, {
        secret,
        lastStep: 1000,
      });
      assert.equal((await storage.users.get(user.id))?.totpEnabled, true);
      const row = await database.db
        .selectFrom('users')
        .select('totp_secret_enc')
        .where('id', '=', user.id)
        .executeTakeFirstOrThrow();
      assert.ok(row.totp_secret_enc !== null);
      assert.ok(
        !Buffer.from(row.totp_secret_enc).includes(Buffer.from(secret)),
        'sealed, not clear',
      );
      assert.equal(await storage.users.disableTotp(user.id), true);
      assert.equal((await storage.users.getCredentials('a@x.fr'))?.totp, null);
      assert.equal(await storage.users.setPendingTotp('nope', secret), false);
    });

    it('accepts each TOTP step once, upwards only, one winner among racing logins', async (t) => {
      const { storage } = await setup(target, t);
      const user = await storage.users.create({ email: 'a@x.fr', passwordHash: HASH });
      const secret = new Uint8Array(randomBytes(20));
      assert.equal(await storage.users.useTotpStep(user.id, 5), false, 'no TOTP enrolled');
      await storage.users.enableTotp(user.id, secret, 10);
      assert.equal(await storage.users.useTotpStep(user.id, 10), false);
      assert.equal(await storage.users.useTotpStep(user.id, 9), false);
      assert.equal(await storage.users.useTotpStep(user.id, 11), true);
      const race = await Promise.all([
        storage.users.useTotpStep(user.id, 12),
        storage.users.useTotpStep(user.id, 12),
        storage.users.useTotpStep(user.id, 12),
      ]);
      assert.deepEqual(
        race.filter((won) => won),
        [true],
      );
      assert.equal((await storage.users.getCredentials('a@x.fr'))?.totp?.lastStep, 12);
    });

    it('deletes a user with their memberships and sessions', async (t) => {
      const { storage } = await setup(target, t);
      const tenant = await storage.tenants.create({ name: 'A' });
      const user = await storage.users.create({ email: 'a@x.fr', passwordHash: HASH });
      await storage.memberships.set({ userId: user.id, tenantId: tenant.id, role: 'viewer' });
      const idHash = sessionHash();
      await storage.consoleSessions.create({
        idHash,
        userId: user.id,
        expiresAt: '2026-03-02T08:00:00Z',
      });
      assert.equal(await storage.users.delete(user.id), true);
      assert.equal(await storage.users.delete(user.id), false);
      assert.equal(await storage.memberships.get(user.id, tenant.id), undefined);
      assert.equal(await storage.consoleSessions.getActive(idHash), undefined);
    });
  });

  describe('memberships', () => {
    it('gives one role per user and tenant, replacing it, and lists them', async (t) => {
      const { storage } = await setup(target, t);
      const a = await storage.tenants.create({ name: 'A' });
      const b = await storage.tenants.create({ name: 'B' });
      const user = await storage.users.create({ email: 'a@x.fr', passwordHash: HASH });
      const other = await storage.users.create({ email: 'b@x.fr', passwordHash: HASH });
      const first = await storage.memberships.set({
        userId: user.id,
        tenantId: a.id,
        role: 'viewer',
      });
      assert.deepEqual(first, {
        userId: user.id,
        tenantId: a.id,
        role: 'viewer',
        applicationId: null,
        createdAt: '2026-03-01T08:00:00.000Z',
      });
      const replaced = await storage.memberships.set({
        userId: user.id,
        tenantId: a.id,
        role: 'admin',
      });
      assert.equal(replaced.role, 'admin');
      await storage.memberships.set({ userId: user.id, tenantId: b.id, role: 'operator' });
      await storage.memberships.set({ userId: other.id, tenantId: b.id, role: 'owner' });
      assert.deepEqual(
        (await storage.memberships.listForUser(user.id)).map((m) => [m.tenantId, m.role]).sort(),
        [
          [a.id, 'admin'],
          [b.id, 'operator'],
        ].sort(),
      );
      assert.equal((await storage.memberships.listForUsers([user.id, other.id])).length, 3);
      assert.deepEqual(await storage.memberships.listForUsers([]), []);
      assert.equal(await storage.memberships.remove(user.id, a.id), true);
      assert.equal(await storage.memberships.remove(user.id, a.id), false);
      assert.equal(await storage.memberships.get(user.id, a.id), undefined);
    });

    it('ties the integration role to an application, and the others to none', async (t) => {
      const { storage } = await setup(target, t);
      const tenant = await storage.tenants.create({ name: 'A' });
      const user = await storage.users.create({ email: 'a@x.fr', passwordHash: HASH });
      const application = await storage.applications.create({ name: 'meters' });
      const membership = await storage.memberships.set({
        userId: user.id,
        tenantId: tenant.id,
        role: 'integration',
        applicationId: application.id,
      });
      assert.equal(membership.applicationId, application.id);
      await rejectsWith(
        storage.memberships.set({ userId: user.id, tenantId: tenant.id, role: 'integration' }),
        'INVALID_INPUT',
      );
      await rejectsWith(
        storage.memberships.set({
          userId: user.id,
          tenantId: tenant.id,
          role: 'viewer',
          applicationId: application.id,
        }),
        'INVALID_INPUT',
      );
      await rejectsWith(
        storage.memberships.set({ userId: user.id, tenantId: tenant.id, role: 'king' as never }),
        'INVALID_INPUT',
      );
      await rejectsWith(
        storage.memberships.set({ userId: user.id, tenantId: 'nope', role: 'viewer' }),
        'MISSING_REFERENCE',
      );
      await rejectsWith(
        storage.memberships.set({ userId: 'nope', tenantId: tenant.id, role: 'viewer' }),
        'MISSING_REFERENCE',
      );
      await rejectsWith(
        storage.memberships.set({
          userId: user.id,
          tenantId: tenant.id,
          role: 'integration',
          applicationId: 'nope',
        }),
        'MISSING_REFERENCE',
      );
      await storage.applications.delete(application.id);
      assert.equal(
        await storage.memberships.get(user.id, tenant.id),
        undefined,
        'an integration membership goes with its application',
      );
    });
  });

  describe('API keys', () => {
    it('stores a key by id with its token hash, never returning the hash in the key', async (t) => {
      const { storage } = await setup(target, t);
      const tenant = await storage.tenants.create({ name: 'A' });
      const id = keyId();
      const secretHash = sha256('galet_key_token');
      const key = await storage.apiKeys.create({
        id,
        name: 'SCADA',
        tenantId: tenant.id,
        role: 'operator',
        readOnly: false,
        secretHash,
        createdBy: 'admin-token',
        expiresAt: '2026-06-01T00:00:00+02:00',
      });
      assert.deepEqual(key, {
        id,
        name: 'SCADA',
        tenantId: tenant.id,
        applicationId: null,
        role: 'operator',
        readOnly: false,
        createdBy: 'admin-token',
        expiresAt: '2026-05-31T22:00:00.000Z',
        revokedAt: null,
        lastUsedAt: null,
        createdAt: '2026-03-01T08:00:00.000Z',
      });
      assert.deepEqual(await storage.apiKeys.get(id), key);
      assert.deepEqual(await storage.apiKeys.getForVerification(id), { key, secretHash });
      assert.equal(await storage.apiKeys.getForVerification(keyId()), undefined);
      await rejectsWith(
        storage.apiKeys.create({
          id,
          name: 'again',
          tenantId: tenant.id,
          role: 'viewer',
          readOnly: true,
          secretHash,
        }),
        'ALREADY_EXISTS',
      );
    });

    it('checks the scope: tenant roles need a tenant, integration an application, operator-admin neither', async (t) => {
      const { storage } = await setup(target, t);
      const tenant = await storage.tenants.create({ name: 'A' });
      const application = await storage.applications.create({ name: 'meters' });
      const base = { name: 'k', readOnly: false, secretHash: sha256('t') };
      await rejectsWith(
        storage.apiKeys.create({ ...base, id: keyId(), role: 'admin' }),
        'INVALID_INPUT',
      );
      await rejectsWith(
        storage.apiKeys.create({
          ...base,
          id: keyId(),
          role: 'admin',
          tenantId: tenant.id,
          applicationId: application.id,
        }),
        'INVALID_INPUT',
      );
      await rejectsWith(
        storage.apiKeys.create({ ...base, id: keyId(), role: 'integration', tenantId: tenant.id }),
        'INVALID_INPUT',
      );
      await rejectsWith(
        storage.apiKeys.create({
          ...base,
          id: keyId(),
          role: 'operator-admin',
          tenantId: tenant.id,
        }),
        'INVALID_INPUT',
      );
      await rejectsWith(
        storage.apiKeys.create({ ...base, id: 'NOT-HEX', role: 'operator-admin' }),
        'INVALID_INPUT',
      );
      await rejectsWith(
        storage.apiKeys.create({
          ...base,
          id: keyId(),
          role: 'operator-admin',
          secretHash: new Uint8Array(5),
        }),
        'INVALID_INPUT',
      );
      await rejectsWith(
        storage.apiKeys.create({ ...base, id: keyId(), role: 'viewer', tenantId: 'nope' }),
        'MISSING_REFERENCE',
      );
      const integration = await storage.apiKeys.create({
        ...base,
        id: keyId(),
        role: 'integration',
        applicationId: application.id,
      });
      const global = await storage.apiKeys.create({ ...base, id: keyId(), role: 'operator-admin' });
      assert.equal(integration.applicationId, application.id);
      assert.equal(global.tenantId, null);
      await storage.applications.delete(application.id);
      assert.equal(
        await storage.apiKeys.get(integration.id),
        undefined,
        'goes with its application',
      );
    });

    it('lists keys by tenant, revokes once and keeps the first revocation time', async (t) => {
      const { storage, clock } = await setup(target, t);
      const a = await storage.tenants.create({ name: 'A' });
      const b = await storage.tenants.create({ name: 'B' });
      const base = { name: 'k', readOnly: false, secretHash: sha256('t'), role: 'admin' as const };
      const ka = await storage.apiKeys.create({ ...base, id: keyId(), tenantId: a.id });
      const kb = await storage.apiKeys.create({ ...base, id: keyId(), tenantId: b.id });
      const global = await storage.apiKeys.create({ ...base, id: keyId(), role: 'operator-admin' });
      const ids = async (options?: Parameters<Storage['apiKeys']['list']>[0]) =>
        (await storage.apiKeys.list(options)).map((k) => k.id).sort();
      assert.deepEqual(await ids(), [ka.id, kb.id, global.id].sort());
      assert.deepEqual(await ids({ tenantIds: [a.id] }), [ka.id]);
      assert.deepEqual(await ids({ tenantIds: [] }), []);
      clock.advance(60_000);
      const revoked = await storage.apiKeys.revoke(ka.id);
      assert.equal(revoked?.revokedAt, '2026-03-01T08:01:00.000Z');
      clock.advance(60_000);
      assert.equal((await storage.apiKeys.revoke(ka.id))?.revokedAt, '2026-03-01T08:01:00.000Z');
      assert.equal(await storage.apiKeys.revoke(keyId()), undefined);
      assert.deepEqual(await ids({ tenantIds: [a.id, b.id], includeRevoked: false }), [kb.id]);
      assert.deepEqual(await ids({ tenantIds: [a.id, b.id] }), [ka.id, kb.id].sort());
    });

    it('records the last use at most once per interval', async (t) => {
      const { storage } = await setup(target, t);
      const key = await storage.apiKeys.create({
        id: keyId(),
        name: 'k',
        role: 'operator-admin',
        readOnly: true,
        secretHash: sha256('t'),
      });
      assert.equal(await storage.apiKeys.touchLastUsed(key.id, '2026-03-01T08:00:00Z'), true);
      assert.equal(await storage.apiKeys.touchLastUsed(key.id, '2026-03-01T08:00:59.999Z'), false);
      assert.equal((await storage.apiKeys.get(key.id))?.lastUsedAt, '2026-03-01T08:00:00.000Z');
      assert.equal(await storage.apiKeys.touchLastUsed(key.id, '2026-03-01T08:01:00Z'), true);
      assert.equal((await storage.apiKeys.get(key.id))?.lastUsedAt, '2026-03-01T08:01:00.000Z');
      assert.equal(
        await storage.apiKeys.touchLastUsed(key.id, '2026-03-01T08:01:01Z', 0),
        true,
        'an interval of 0 always writes',
      );
    });
  });

  describe('console sessions', () => {
    it('finds a session until it expires, touches it at most once per interval, and ends it', async (t) => {
      const { storage, clock } = await setup(target, t);
      const user = await storage.users.create({ email: 'a@x.fr', passwordHash: HASH });
      const idHash = sessionHash();
      const session = await storage.consoleSessions.create({
        idHash,
        userId: user.id,
        expiresAt: '2026-03-01T20:00:00Z',
      });
      assert.deepEqual(session, {
        idHash,
        userId: user.id,
        createdAt: '2026-03-01T08:00:00.000Z',
        expiresAt: '2026-03-01T20:00:00.000Z',
        lastSeenAt: '2026-03-01T08:00:00.000Z',
      });
      assert.deepEqual(await storage.consoleSessions.getActive(idHash), session);
      assert.equal(await storage.consoleSessions.getActive('not a hash'), undefined);
      assert.equal(await storage.consoleSessions.touch(idHash, '2026-03-01T08:00:30Z'), false);
      assert.equal(await storage.consoleSessions.touch(idHash, '2026-03-01T08:01:00Z'), true);
      assert.equal(
        (await storage.consoleSessions.getActive(idHash))?.lastSeenAt,
        '2026-03-01T08:01:00.000Z',
      );
      clock.advance(12 * 3_600_000);
      assert.equal(await storage.consoleSessions.getActive(idHash), undefined, 'expired');
      assert.ok(await storage.consoleSessions.getActive(idHash, '2026-03-01T19:59:59Z'));
      assert.equal(await storage.consoleSessions.purgeExpired(), 1);
      assert.equal(await storage.consoleSessions.delete(idHash), false);
    });

    it('ends one session at logout, or all of a user, and refuses an unknown user', async (t) => {
      const { storage } = await setup(target, t);
      const user = await storage.users.create({ email: 'a@x.fr', passwordHash: HASH });
      const expiresAt = '2026-03-02T00:00:00Z';
      const [one, two, three] = [sessionHash(), sessionHash(), sessionHash()];
      for (const idHash of [one!, two!, three!]) {
        await storage.consoleSessions.create({ idHash, userId: user.id, expiresAt });
      }
      assert.equal(await storage.consoleSessions.delete(one!), true);
      assert.equal(await storage.consoleSessions.getActive(one!), undefined);
      assert.equal(await storage.consoleSessions.deleteForUser(user.id), 2);
      assert.equal(await storage.consoleSessions.getActive(two!), undefined);
      await rejectsWith(
        storage.consoleSessions.create({ idHash: sessionHash(), userId: 'nope', expiresAt }),
        'MISSING_REFERENCE',
      );
      await rejectsWith(
        storage.consoleSessions.create({ idHash: 'short', userId: user.id, expiresAt }),
        'INVALID_INPUT',
      );
    });
  });

  describe('OIDC back-channel logout', () => {
    const ISSUER = 'https://sso.example.org/realms/loire';
    /** Sessions of two users: Ana's from provider sessions s1 and s2, and one without sid. */
    async function oidcSessions(storage: Storage) {
      const ana = await storage.users.create({ email: 'ana@x.fr', passwordHash: HASH });
      const bob = await storage.users.create({ email: 'bob@x.fr', passwordHash: HASH });
      const expiresAt = '2026-03-01T20:00:00Z';
      const open = async (
        userId: string,
        oidc?: Parameters<typeof storage.consoleSessions.create>[0]['oidc'],
      ) => {
        const idHash = sessionHash();
        await storage.consoleSessions.create({ idHash, userId, expiresAt, oidc });
        return idHash;
      };
      const sessions = {
        anaS1: await open(ana.id, { issuer: ISSUER, subject: 'sub-ana', sessionId: 's1' }),
        anaS1Again: await open(ana.id, { issuer: ISSUER, subject: 'sub-ana', sessionId: 's1' }),
        anaS2: await open(ana.id, { issuer: ISSUER, subject: 'sub-ana', sessionId: 's2' }),
        anaNoSid: await open(ana.id, { issuer: ISSUER, subject: 'sub-ana' }),
        anaPassword: await open(ana.id),
        anaElsewhere: await open(ana.id, {
          issuer: 'https://other.example.org',
          subject: 'sub-ana',
          sessionId: 's1',
        }),
        bob: await open(bob.id, { issuer: ISSUER, subject: 'sub-bob', sessionId: 's3' }),
      };
      const alive = async () => {
        const names: string[] = [];
        for (const [name, idHash] of Object.entries(sessions)) {
          if ((await storage.consoleSessions.getActive(idHash)) !== undefined) names.push(name);
        }
        return names.sort();
      };
      return { ana, bob, sessions, alive };
    }
    const logout = (fields: { subject?: string; sessionId?: string }) => ({
      issuer: ISSUER,
      jti: randomBytes(8).toString('hex'),
      rememberUntil: '2026-03-01T08:06:00Z',
      ...fields,
    });

    it('ends the sessions of a provider session (sid), once per token', async (t) => {
      const { storage } = await setup(target, t);
      const { ana, alive } = await oidcSessions(storage);
      const token = logout({ sessionId: 's1' });
      assert.deepEqual(await storage.consoleSessions.endOidcSessions(token), {
        replayed: false,
        ended: [{ userId: ana.id, sessions: 2 }],
      });
      assert.deepEqual(await alive(), ['anaElsewhere', 'anaNoSid', 'anaPassword', 'anaS2', 'bob']);
      assert.deepEqual(await storage.consoleSessions.endOidcSessions(token), { replayed: true });
      // The same jti from another issuer is another token.
      assert.deepEqual(
        await storage.consoleSessions.endOidcSessions({
          ...token,
          issuer: 'https://other.example.org',
        }),
        { replayed: false, ended: [{ userId: ana.id, sessions: 1 }] },
      );
    });

    it('ends every OIDC session of a subject, never a password session', async (t) => {
      const { storage } = await setup(target, t);
      const { ana, alive } = await oidcSessions(storage);
      assert.deepEqual(
        await storage.consoleSessions.endOidcSessions(logout({ subject: 'sub-ana' })),
        {
          replayed: false,
          ended: [{ userId: ana.id, sessions: 4 }],
        },
      );
      assert.deepEqual(await alive(), ['anaElsewhere', 'anaPassword', 'bob']);
      assert.deepEqual(
        await storage.consoleSessions.endOidcSessions(logout({ subject: 'sub-nobody' })),
        { replayed: false, ended: [] },
      );
    });

    it('with sid and sub, ends that session of that person and theirs without a sid', async (t) => {
      const { storage } = await setup(target, t);
      const { ana, alive } = await oidcSessions(storage);
      assert.deepEqual(
        await storage.consoleSessions.endOidcSessions(
          logout({ subject: 'sub-ana', sessionId: 's2' }),
        ),
        { replayed: false, ended: [{ userId: ana.id, sessions: 2 }] },
      );
      assert.deepEqual(await alive(), [
        'anaElsewhere',
        'anaPassword',
        'anaS1',
        'anaS1Again',
        'bob',
      ]);
      // Bob's sid with Ana's sub ends nothing of Bob's.
      assert.deepEqual(
        await storage.consoleSessions.endOidcSessions(
          logout({ subject: 'sub-ana', sessionId: 's3' }),
        ),
        { replayed: false, ended: [] },
      );
      assert.ok((await alive()).includes('bob'));
    });

    it('forgets the tokens past their time, and refuses bad input', async (t) => {
      const { storage, clock } = await setup(target, t);
      const { ana } = await oidcSessions(storage);
      const token = logout({ subject: 'sub-ana' });
      assert.equal((await storage.consoleSessions.endOidcSessions(token)).replayed, false);
      clock.advance(5 * 60_000);
      assert.equal((await storage.consoleSessions.endOidcSessions(token)).replayed, true);
      clock.advance(60_000); // 08:06: the token would be refused as too old by now
      assert.equal(await storage.consoleSessions.purgeExpired(), 0);
      assert.deepEqual(await storage.consoleSessions.endOidcSessions(token), {
        replayed: false,
        ended: [],
      });
      await rejectsWith(
        storage.consoleSessions.endOidcSessions({ ...logout({}) }),
        'INVALID_INPUT',
      );
      await rejectsWith(
        storage.consoleSessions.endOidcSessions({ ...logout({ subject: '' }) }),
        'INVALID_INPUT',
      );
      await rejectsWith(
        storage.consoleSessions.endOidcSessions({ ...logout({ subject: 'x' }), jti: '' }),
        'INVALID_INPUT',
      );
      await rejectsWith(
        storage.consoleSessions.create({
          idHash: sessionHash(),
          userId: ana.id,
          expiresAt: '2026-03-02T00:00:00Z',
          oidc: { issuer: ISSUER, subject: 'x'.repeat(3000) },
        }),
        'INVALID_INPUT',
      );
    });
  });

  describe('audit log', () => {
    it('shows an entry to its tenant and to its related tenant', async (t) => {
      const { storage } = await setup(target, t);
      const read = await storage.auditLog.append({
        actor: { type: 'api-key', id: 'k-commune', tenantId: 'commune' },
        action: 'shared-measurements.read',
        objectType: 'measurement-share',
        objectId: 'share-1',
        tenantId: 'provider',
        relatedTenantId: 'commune',
        outcome: 'success',
      });
      assert.equal(read.relatedTenantId, 'commune');
      const own = await storage.auditLog.append({
        actor: { type: 'system' },
        action: 'device.create',
        objectType: 'device',
        tenantId: 'commune',
        outcome: 'success',
      });
      assert.equal(own.relatedTenantId, null);
      const ids = async (tenantIds: string[]) =>
        (await storage.auditLog.list({ tenantIds })).map((entry) => entry.id);
      assert.deepEqual(await ids(['provider']), [read.id]);
      assert.deepEqual(await ids(['commune']), [own.id, read.id]);
      assert.deepEqual(await ids(['provider', 'commune']), [own.id, read.id]);
      assert.deepEqual(await ids(['elsewhere']), []);
      // The purge by age is the entry's own tenant's: the provider's retention.
      assert.equal(await storage.auditLog.purgeBefore('commune', '2027-01-01T00:00:00Z', 10), 1);
      assert.deepEqual(await ids(['commune']), [read.id]);
      assert.equal(await storage.auditLog.purgeBefore('provider', '2027-01-01T00:00:00Z', 10), 1);
      assert.deepEqual(await ids(['commune']), []);
    });

    it('appends entries and lists them newest first, filtered and paged by id', async (t) => {
      const { storage, clock } = await setup(target, t);
      const entry = (overrides: Partial<Parameters<Storage['auditLog']['append']>[0]>) => ({
        actor: { type: 'user' as const, id: 'u1', tenantId: 't1' },
        action: 'device.create',
        objectType: 'device',
        objectId: '70b3d57ed0000001',
        tenantId: 't1',
        sourceIp: '192.0.2.1',
        outcome: 'success' as const,
        details: { name: 'meter' },
        ...overrides,
      });
      const first = await storage.auditLog.append(entry({}));
      assert.deepEqual(first, {
        id: first.id,
        time: '2026-03-01T08:00:00.000Z',
        actor: { type: 'user', id: 'u1', tenantId: 't1' },
        action: 'device.create',
        objectType: 'device',
        objectId: '70b3d57ed0000001',
        tenantId: 't1',
        relatedTenantId: null,
        sourceIp: '192.0.2.1',
        outcome: 'success',
        details: { name: 'meter' },
      });
      clock.advance(60_000);
      const second = await storage.auditLog.append(
        entry({ actor: { type: 'api-key', id: 'k1' }, action: 'device.delete', tenantId: 't2' }),
      );
      clock.advance(60_000);
      const third = await storage.auditLog.append(
        entry({
          actor: { type: 'admin-token' },
          action: 'tenant.create',
          objectType: 'tenant',
          tenantId: null,
          outcome: 'failure',
          details: {},
        }),
      );
      assert.ok(first.id < second.id && second.id < third.id);
      const ids = async (query?: Parameters<Storage['auditLog']['list']>[0]) =>
        (await storage.auditLog.list(query)).map((e) => e.id);
      assert.deepEqual(await ids(), [third.id, second.id, first.id]);
      assert.deepEqual(await ids({ tenantIds: ['t1'] }), [first.id]);
      assert.deepEqual(await ids({ tenantIds: ['t1', 't2'] }), [second.id, first.id]);
      assert.deepEqual(await ids({ tenantIds: [] }), []);
      assert.deepEqual(await ids({ actorId: 'k1' }), [second.id]);
      assert.deepEqual(await ids({ action: 'device.create' }), [first.id]);
      assert.deepEqual(await ids({ from: '2026-03-01T08:01:00Z' }), [third.id, second.id]);
      assert.deepEqual(await ids({ to: '2026-03-01T08:01:00Z' }), [first.id]);
      assert.deepEqual(await ids({ limit: 1 }), [third.id]);
      assert.deepEqual(await ids({ limit: 1, beforeId: third.id }), [second.id]);
      assert.deepEqual(await ids({ beforeId: first.id }), []);
      const [stored] = await storage.auditLog.list({ actorId: 'k1' });
      assert.deepEqual(stored?.actor, { type: 'api-key', id: 'k1', tenantId: null });
    });

    it('refuses malformed entries and bad queries', async (t) => {
      const { storage } = await setup(target, t);
      const base = {
        actor: { type: 'system' as const },
        action: 'tenant.create',
        objectType: 'tenant',
        outcome: 'success' as const,
      };
      await rejectsWith(
        storage.auditLog.append({ ...base, action: 'Create Tenant' }),
        'INVALID_INPUT',
      );
      await rejectsWith(storage.auditLog.append({ ...base, action: 'tenant' }), 'INVALID_INPUT');
      await rejectsWith(storage.auditLog.append({ ...base, objectType: '' }), 'INVALID_INPUT');
      await rejectsWith(
        storage.auditLog.append({ ...base, outcome: 'maybe' as never }),
        'INVALID_INPUT',
      );
      await rejectsWith(
        storage.auditLog.append({ ...base, actor: { type: 'robot' as never } }),
        'INVALID_INPUT',
      );
      await rejectsWith(
        storage.auditLog.append({ ...base, details: { blob: 'x'.repeat(20_000) } }),
        'INVALID_INPUT',
      );
      await rejectsWith(storage.auditLog.list({ limit: 0 }), 'INVALID_INPUT');
      await rejectsWith(storage.auditLog.list({ from: 'yesterday' }), 'INVALID_INPUT');
      assert.deepEqual(await storage.auditLog.list(), []);
    });

    it('is append-only: no way to change an entry, and the only delete is the purge by age', async (t) => {
      const { storage } = await setup(target, t);
      const methods = Object.getOwnPropertyNames(Object.getPrototypeOf(storage.auditLog)).filter(
        (name) => name !== 'constructor',
      );
      // purgeBefore(tenantId, cutoff, limit): a tenant's entries past its retention (audit-retention.test.ts).
      assert.deepEqual(methods.sort(), ['append', 'list', 'purgeBefore']);
    });
  });
}
