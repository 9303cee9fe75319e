/**
 * Every kind of secret Galet seals under the master key, stored through the repositories, and
 * read back through them: what the master key rotation tests compare before and after.
 */
import assert from 'node:assert/strict';
import { createCipheriv, createHash, randomBytes } from 'node:crypto';
import {
  createStorage,
  type GaletDatabase,
  rootKeyAssociatedData,
  type SecretBox,
  type Storage,
} from '../../src/storage/index.js';
import { deviceSessionInput } from '../helpers/device-session.js';

function key(): Uint8Array {
  return new Uint8Array(randomBytes(16));
}

function eui(): string {
  return randomBytes(8).toString('hex');
}

/** What `storeEverySecret` stored, to compare with what `readEverySecret` reads back. */
export interface StoredSecrets {
  devices: { devEui: string; appKey: Uint8Array; nwkKey?: Uint8Array }[];
  sessions: { devEui: string; keys: unknown }[];
  users: { id: string; email: string; totp?: Uint8Array; pending?: Uint8Array }[];
  linkTokens: { tokenHash: string; kek: Uint8Array }[];
  webhooks: { id: string; secret: string; headers: Record<string, string> }[];
}

/**
 * Stores `count` of each kind of secret: root keys (1.0 and 1.1 devices), session keys (with
 * the AppSKey in clear and as an operator-blind envelope), TOTP secrets (enabled and pending),
 * link token KEKs, webhook secrets and headers.
 */
export async function storeEverySecret(storage: Storage, count = 3): Promise<StoredSecrets> {
  const stored: StoredSecrets = {
    devices: [],
    sessions: [],
    users: [],
    linkTokens: [],
    webhooks: [],
  };
  const application = await storage.applications.create({ name: 'Rotation' });
  for (let index = 0; index < count; index++) {
    const is11 = index % 2 === 1;
    const device = {
      devEui: eui(),
      appKey: key(),
      ...(is11 ? { nwkKey: key() } : {}),
    };
    await storage.devices.create({
      ...device,
      joinEui: '70b3d57ed0000000',
      name: `meter ${index}`,
      applicationId: application.id,
      macVersion: is11 ? '1.1.0' : '1.0.4',
      deviceClass: 'A',
      activation: 'otaa',
    });
    stored.devices.push(device);
    const keys = is11
      ? {
          lorawan: '1.1' as const,
          fNwkSIntKey: key(),
          sNwkSIntKey: key(),
          nwkSEncKey: key(),
          appSKeyEnvelope: {
            kekLabel: 'galet-app:0011223344556677',
            aesKey: new Uint8Array(randomBytes(24)),
          },
        }
      : { lorawan: '1.0' as const, nwkSKey: key(), appSKey: key() };
    // Its macVersion follows the keys: 1.1.0 or 1.0.4.
    await storage.deviceSessions.upsert(
      deviceSessionInput({ devEui: device.devEui, devAddr: 0x2601_0000 + index, keys }),
    );
    stored.sessions.push({ devEui: device.devEui, keys });

    const email = `user${index}-${randomBytes(3).toString('hex')}@example.org`;
    const user = await storage.users.create({
      email,
      passwordHash: '$argon2id$v=19$m=1,t=1,p=1$x$y',
    });
    const entry: StoredSecrets['users'][number] = { id: user.id, email };
    const totp = new Uint8Array(randomBytes(20));
    assert.ok(await storage.users.enableTotp(user.id, totp, 1));
    entry.totp = totp;
    if (index % 2 === 0) {
      entry.pending = new Uint8Array(randomBytes(20));
      assert.ok(await storage.users.setPendingTotp(user.id, entry.pending));
    }
    stored.users.push(entry);

    const token = randomBytes(24).toString('hex');
    const tokenHash = createHash('sha256').update(token).digest('hex');
    const kek = key();
    await storage.linkTokens.create({
      id: randomBytes(8).toString('hex'),
      applicationId: application.id,
      name: `link ${index}`,
      tokenHash,
      kek,
    });
    stored.linkTokens.push({ tokenHash, kek });

    const headers: Record<string, string> =
      index % 2 === 0 ? { 'x-api-key': randomBytes(8).toString('hex') } : {};
    const secret = randomBytes(16).toString('hex');
    const webhook = await storage.webhooks.create({
      applicationId: application.id,
      url: `https://hooks.example.org/${index}`,
      secret,
      headers,
    });
    stored.webhooks.push({ id: webhook.id, secret, headers });
  }
  return stored;
}

/** Reads every secret of `stored` back through the repositories of `storage`, and compares. */
export async function assertEverySecretReads(
  storage: Storage,
  stored: StoredSecrets,
): Promise<void> {
  for (const device of stored.devices) {
    const keys = await storage.devices.getRootKeys(device.devEui);
    assert.deepEqual(keys?.appKey, device.appKey);
    assert.deepEqual(keys?.nwkKey, device.nwkKey);
  }
  for (const session of stored.sessions) {
    assert.deepEqual((await storage.deviceSessions.get(session.devEui))?.keys, session.keys);
  }
  for (const user of stored.users) {
    const credentials = await storage.users.getCredentials(user.email);
    assert.deepEqual(credentials?.totp?.secret, user.totp);
    assert.deepEqual(await storage.users.getPendingTotp(user.id), user.pending);
  }
  for (const token of stored.linkTokens) {
    assert.deepEqual((await storage.linkTokens.authenticate(token.tokenHash))?.kek, token.kek);
  }
  for (const webhook of stored.webhooks) {
    assert.deepEqual(await storage.webhooks.credentials(webhook.id), {
      secret: webhook.secret,
      headers: webhook.headers,
    });
  }
}

/** Every read of a sealed secret fails with SECRET_OPEN_FAILED under `box`. */
export async function assertNoSecretReads(
  database: GaletDatabase,
  box: SecretBox,
  stored: StoredSecrets,
): Promise<void> {
  const storage = createStorage(database, box);
  const refused = (error: unknown) =>
    (error as { code?: unknown }).code === 'SECRET_OPEN_FAILED' &&
    (error as Error).message.includes(`master key in use is ${box.keyId}`);
  for (const device of stored.devices) {
    await assert.rejects(storage.devices.getRootKeys(device.devEui), refused);
  }
  for (const session of stored.sessions) {
    await assert.rejects(storage.deviceSessions.get(session.devEui), refused);
  }
  for (const user of stored.users) {
    await assert.rejects(storage.users.getCredentials(user.email), refused);
  }
  for (const token of stored.linkTokens) {
    await assert.rejects(storage.linkTokens.authenticate(token.tokenHash), refused);
  }
  for (const webhook of stored.webhooks) {
    await assert.rejects(storage.webhooks.credentials(webhook.id), refused);
  }
}

/**
 * A value sealed in the first format (`0x01 | nonce | ciphertext | tag`, no key id), as Galet
 * wrote before key ids: built here with node:crypto so the test does not depend on the writer.
 */
export function sealFirstFormat(
  masterKey: Uint8Array,
  plaintext: Uint8Array,
  associatedData: string,
): Buffer {
  const nonce = randomBytes(12);
  const cipher = createCipheriv('aes-256-gcm', masterKey, nonce, { authTagLength: 16 });
  cipher.setAAD(Buffer.from(associatedData, 'utf8'));
  const ciphertext = Buffer.concat([cipher.update(plaintext), cipher.final()]);
  return Buffer.concat([Buffer.from([0x01]), nonce, ciphertext, cipher.getAuthTag()]);
}

/** Rewrites the AppKeys of `stored` in the first format, as an older Galet left them. */
export async function sealAppKeysInFirstFormat(
  database: GaletDatabase,
  masterKey: Uint8Array,
  stored: StoredSecrets,
): Promise<void> {
  for (const device of stored.devices) {
    await database.db
      .updateTable('devices')
      .set({
        app_key_enc: sealFirstFormat(
          masterKey,
          device.appKey,
          rootKeyAssociatedData(device.devEui, 'app_key'),
        ),
      })
      .where('dev_eui', '=', device.devEui)
      .execute();
  }
}
