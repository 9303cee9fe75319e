import assert from 'node:assert/strict';
import { randomBytes } from 'node:crypto';
import { chmod, mkdtemp, readFile, rm, stat, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, before, describe, it } from 'node:test';
import { inspect } from 'node:util';
import { isStorageError, loadOrCreateMasterKey, SecretBox } from '../../src/storage/index.js';

function failsToOpen(box: SecretBox, sealed: Uint8Array, associatedData: string): void {
  assert.throws(
    () => box.open(sealed, associatedData),
    (error: unknown) => isStorageError(error, 'SECRET_OPEN_FAILED'),
  );
}

describe('SecretBox', () => {
  const box = SecretBox.fromKey(randomBytes(32));
  const secret = new Uint8Array(randomBytes(16));
  const ad = 'device:0102030405060708:app_key';

  it('seals as version | 4-byte key id | 12-byte nonce | ciphertext | tag and opens it again', () => {
    const sealed = box.seal(secret, ad);
    assert.equal(sealed.length, 1 + 4 + 12 + 16 + 16);
    assert.equal(sealed[0], 2);
    assert.deepEqual(box.open(sealed, ad), secret);
    assert.deepEqual(box.open(box.seal(new Uint8Array(0), ad), ad), new Uint8Array(0));
  });

  it('uses a fresh nonce each time', () => {
    const a = box.seal(secret, ad);
    const b = box.seal(secret, ad);
    assert.notDeepEqual(a.subarray(5, 17), b.subarray(5, 17));
    assert.notDeepEqual(a, b);
  });

  it('refuses a change to any byte, a truncation, other associated data or another key', () => {
    const sealed = box.seal(secret, ad);
    for (let index = 0; index < sealed.length; index++) {
      const tampered = sealed.slice();
      tampered[index] = tampered[index]! ^ 0x80;
      failsToOpen(box, tampered, ad);
    }
    failsToOpen(box, sealed.subarray(0, sealed.length - 1), ad);
    failsToOpen(box, sealed.subarray(0, 20), ad);
    failsToOpen(box, sealed, 'device:0102030405060709:app_key');
    failsToOpen(SecretBox.fromKey(randomBytes(32)), sealed, ad);
  });

  it('accepts only a 32-byte key and never shows it', () => {
    for (const length of [0, 16, 31, 33]) {
      assert.throws(
        () => SecretBox.fromKey(new Uint8Array(length)),
        (error: unknown) => isStorageError(error, 'INVALID_MASTER_KEY'),
      );
    }
    const key = Buffer.alloc(32, 0xab);
    const shown = SecretBox.fromKey(key);
    key.fill(0); // the box keeps its own copy
    assert.deepEqual(shown.open(shown.seal(secret, ad), ad), secret);
    assert.equal(inspect(shown), 'SecretBox {}');
    assert.equal(JSON.stringify({ shown }), '{"shown":"SecretBox {}"}');
    assert.deepEqual(Object.keys(shown), []);
  });
});

describe('loadOrCreateMasterKey', () => {
  let root: string;
  before(async () => {
    root = await mkdtemp(join(tmpdir(), 'galet-master-key-'));
  });
  after(async () => {
    await rm(root, { recursive: true, force: true });
  });

  it('takes GALET_MASTER_KEY when it is set', async () => {
    const hex = randomBytes(32).toString('hex');
    const key = await loadOrCreateMasterKey({
      dataDir: join(root, 'unused'),
      env: { GALET_MASTER_KEY: hex.toUpperCase() },
    });
    assert.equal(Buffer.from(key).toString('hex'), hex);
    await assert.rejects(stat(join(root, 'unused')), { code: 'ENOENT' });
  });

  it('refuses a malformed GALET_MASTER_KEY without repeating it', async () => {
    await assert.rejects(
      loadOrCreateMasterKey({ dataDir: root, env: { GALET_MASTER_KEY: 'secretsecret' } }),
      (error: unknown) =>
        isStorageError(error, 'INVALID_MASTER_KEY') && !error.message.includes('secretsecret'),
    );
  });

  it('creates <dataDir>/master.key once (mode 0600, directory 0700) and reads it afterwards', async () => {
    const dataDir = join(root, 'created', 'data');
    const warnings: { fields: Record<string, unknown>; message: string }[] = [];
    const logger = {
      info: () => undefined,
      warn: (fields: Record<string, unknown>, message: string) =>
        warnings.push({ fields, message }),
    };
    const key = await loadOrCreateMasterKey({ dataDir, env: {}, logger });
    assert.equal(key.length, 32);
    const path = join(dataDir, 'master.key');
    assert.equal((await stat(path)).mode & 0o777, 0o600);
    assert.equal((await stat(dataDir)).mode & 0o777, 0o700);
    assert.equal(await readFile(path, 'utf8'), `${Buffer.from(key).toString('hex')}\n`);
    assert.equal(warnings.length, 1);
    assert.match(warnings[0]!.message, /back it up/);
    assert.ok(!JSON.stringify(warnings).includes(Buffer.from(key).toString('hex')));

    assert.deepEqual(await loadOrCreateMasterKey({ dataDir, env: {}, logger }), key);
    assert.equal(warnings.length, 1);
  });

  it('gives every concurrent first start the same key', async () => {
    const dataDir = join(root, 'race');
    const keys = await Promise.all(
      Array.from({ length: 8 }, () => loadOrCreateMasterKey({ dataDir, env: {} })),
    );
    for (const key of keys) assert.deepEqual(key, keys[0]);
  });

  it('reads a file of 32 raw bytes, warns about loose permissions and refuses anything else', async () => {
    const dataDir = join(root, 'raw');
    await loadOrCreateMasterKey({ dataDir, env: {} });
    const raw = randomBytes(32);
    const path = join(dataDir, 'master.key');
    await writeFile(path, raw);
    await chmod(path, 0o644);
    const warnings: string[] = [];
    const logger = {
      info: () => undefined,
      warn: (_: unknown, message: string) => warnings.push(message),
    };
    assert.deepEqual(
      await loadOrCreateMasterKey({ dataDir, env: {}, logger }),
      new Uint8Array(raw),
    );
    assert.match(warnings.join(), /readable by other users/);

    await writeFile(path, 'not a key\n');
    await assert.rejects(loadOrCreateMasterKey({ dataDir, env: {} }), (error: unknown) =>
      isStorageError(error, 'INVALID_MASTER_KEY'),
    );
  });
});
