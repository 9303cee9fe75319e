import assert from 'node:assert/strict';
import { randomBytes } from 'node:crypto';
import { mkdtemp, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, describe, it } from 'node:test';
import {
  APPLICATION_KEK_FILE,
  APPLICATION_KEK_PENDING_FILE,
  isStorageError,
  loadOrCreateMasterKey,
  MASTER_KEY_PENDING_FILE,
  readKeptApplicationKek,
  SecretBox,
  sealApplicationKek,
} from '../../src/storage/index.js';
import { sealFirstFormat } from './master-key-fixtures.js';

const ad = 'device:0102030405060708:app_key';

describe('SecretBox key ids', () => {
  const masterKey = new Uint8Array(randomBytes(32));
  const box = SecretBox.fromKey(masterKey);
  const other = SecretBox.fromKey(randomBytes(32));
  const secret = new Uint8Array(randomBytes(16));

  it('seals as 0x02 | key id | nonce | ciphertext | tag, the key id naming the master key', () => {
    const sealed = box.seal(secret, ad);
    assert.equal(sealed.length, 1 + 4 + 12 + 16 + 16);
    assert.equal(sealed[0], 2);
    assert.match(box.keyId, /^[0-9a-f]{8}$/);
    assert.equal(Buffer.from(sealed.subarray(1, 5)).toString('hex'), box.keyId);
    assert.equal(SecretBox.keyIdOf(sealed), box.keyId);
    assert.equal(SecretBox.fromKey(masterKey).keyId, box.keyId, 'the id depends on the key only');
    assert.notEqual(other.keyId, box.keyId);
    assert.deepEqual(box.open(sealed, ad), secret);
  });

  it('names both master keys when a value was sealed under another one', () => {
    const sealed = other.seal(secret, ad);
    assert.throws(
      () => box.open(sealed, ad),
      (error: unknown) =>
        isStorageError(error, 'SECRET_OPEN_FAILED') &&
        error.message.includes(`sealed under master key ${other.keyId}`) &&
        error.message.includes(`master key in use is ${box.keyId}`) &&
        error.details?.['sealedKeyId'] === other.keyId,
    );
  });

  it('authenticates the key id: rewriting it does not make a value open under another key', () => {
    const sealed = other.seal(secret, ad);
    const relabelled = Buffer.from(sealed);
    Buffer.from(box.keyId, 'hex').copy(relabelled, 1);
    assert.throws(
      () => box.open(relabelled, ad),
      (error: unknown) =>
        isStorageError(error, 'SECRET_OPEN_FAILED') && /does not authenticate/.test(error.message),
    );
    // Nor under its own key: the id is part of the authenticated data.
    assert.throws(() => other.open(relabelled, ad), /sealed under master key/);
  });

  it('still opens values of the first format, which name no key', () => {
    const sealed = sealFirstFormat(masterKey, secret, ad);
    assert.equal(SecretBox.keyIdOf(sealed), null);
    assert.deepEqual(box.open(sealed, ad), secret);
    assert.throws(
      () => other.open(sealed, ad),
      (error: unknown) =>
        isStorageError(error, 'SECRET_OPEN_FAILED') &&
        /sealed under another master key/.test(error.message),
    );
    assert.throws(
      () => box.open(sealed, 'device:0102030405060709:app_key'),
      /does not authenticate/,
    );
    assert.equal(SecretBox.keyIdOf(new Uint8Array([2, 1, 2])), undefined);
    assert.equal(SecretBox.keyIdOf(new Uint8Array(40).fill(7)), undefined);
  });
});

describe('files of a master key rotation', () => {
  const dirs: string[] = [];
  after(async () => {
    for (const dir of dirs) await rm(dir, { recursive: true, force: true });
  });
  async function dataDir(): Promise<string> {
    const dir = await mkdtemp(join(tmpdir(), 'galet-rotation-files-'));
    dirs.push(dir);
    return dir;
  }

  it('refuses to start while a rotation is unfinished, from the file or the environment', async () => {
    for (const pending of [MASTER_KEY_PENDING_FILE, APPLICATION_KEK_PENDING_FILE]) {
      const dir = await dataDir();
      await loadOrCreateMasterKey({ dataDir: dir, env: {} });
      await writeFile(join(dir, pending), 'x');
      for (const env of [{}, { GALET_MASTER_KEY: randomBytes(32).toString('hex') }]) {
        await assert.rejects(
          loadOrCreateMasterKey({ dataDir: dir, env }),
          (error: unknown) =>
            isStorageError(error, 'INVALID_MASTER_KEY') &&
            error.message.includes(pending) &&
            error.message.includes('galet keys rotate-master'),
        );
      }
    }
  });

  it('keeps the application KEK sealed under the master key', async () => {
    const dir = await dataDir();
    const box = SecretBox.fromKey(randomBytes(32));
    assert.equal(await readKeptApplicationKek(dir, box), undefined);
    const kek = new Uint8Array(randomBytes(16));
    await writeFile(join(dir, APPLICATION_KEK_FILE), sealApplicationKek(box, kek));
    assert.deepEqual(await readKeptApplicationKek(dir, box), kek);
    await assert.rejects(
      readKeptApplicationKek(dir, SecretBox.fromKey(randomBytes(32))),
      (error: unknown) => isStorageError(error, 'SECRET_OPEN_FAILED'),
    );
    await writeFile(join(dir, APPLICATION_KEK_PENDING_FILE), 'x');
    await assert.rejects(readKeptApplicationKek(dir, box), /unfinished/);
  });
});
