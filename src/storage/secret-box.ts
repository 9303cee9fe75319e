import {
  createCipheriv,
  createDecipheriv,
  createSecretKey,
  type KeyObject,
  randomBytes,
} from 'node:crypto';
import { link, mkdir, open, readFile, stat, unlink } from 'node:fs/promises';
import { join } from 'node:path';
import { inspect } from 'node:util';
import type { StorageLogger } from './database.js';
import { StorageError } from './errors.js';

const FORMAT_VERSION = 0x01;
const NONCE_LENGTH = 12;
const TAG_LENGTH = 16;
const MASTER_KEY_LENGTH = 32;
const OVERHEAD = 1 + NONCE_LENGTH + TAG_LENGTH;

/**
 * Secrets at rest (root keys, session keys) sealed with AES-256-GCM under the master key.
 *
 * Sealed form: `version (0x01) | 12-byte random nonce | ciphertext | 16-byte tag`. The associated
 * data binds a secret to its place, e.g. `device:0102030405060708:app_key`: a sealed value copied
 * to another row or column does not open. Random 96-bit nonces are safe far beyond the number of
 * secrets a network stores (NIST SP 800-38D §8.3: 2^32 seals per key).
 *
 * The key lives in a KeyObject and a private field: it is neither enumerable, printable nor
 * serialisable.
 */
export class SecretBox {
  readonly #key: KeyObject;

  private constructor(key: KeyObject) {
    this.#key = key;
  }

  /** A SecretBox under a 32-byte master key (the bytes are copied; the caller may wipe its own). */
  static fromKey(key: Uint8Array): SecretBox {
    if (!(key instanceof Uint8Array) || key.length !== MASTER_KEY_LENGTH) {
      const got = key instanceof Uint8Array ? `${key.length} bytes` : typeof key;
      throw new StorageError('INVALID_MASTER_KEY', `a master key is 32 bytes, got ${got}`);
    }
    const copy = Buffer.from(key);
    const keyObject = createSecretKey(copy);
    copy.fill(0);
    return new SecretBox(keyObject);
  }

  seal(plaintext: Uint8Array, associatedData: string | Uint8Array): Uint8Array {
    const nonce = randomBytes(NONCE_LENGTH);
    const cipher = createCipheriv('aes-256-gcm', this.#key, nonce, { authTagLength: TAG_LENGTH });
    cipher.setAAD(toBytes(associatedData));
    const ciphertext = Buffer.concat([cipher.update(plaintext), cipher.final()]);
    const sealed = new Uint8Array(OVERHEAD + ciphertext.length);
    sealed[0] = FORMAT_VERSION;
    sealed.set(nonce, 1);
    sealed.set(ciphertext, 1 + NONCE_LENGTH);
    sealed.set(cipher.getAuthTag(), 1 + NONCE_LENGTH + ciphertext.length);
    return sealed;
  }

  /** The plaintext, or a `SECRET_OPEN_FAILED` StorageError if the sealed value does not authenticate. */
  open(sealed: Uint8Array, associatedData: string | Uint8Array): Uint8Array {
    const where = typeof associatedData === 'string' ? ` (${associatedData})` : '';
    if (!(sealed instanceof Uint8Array) || sealed.length < OVERHEAD) {
      const got = sealed instanceof Uint8Array ? `${sealed.length} bytes` : typeof sealed;
      throw new StorageError(
        'SECRET_OPEN_FAILED',
        `sealed secret${where} too short: ${got}, at least ${OVERHEAD} expected`,
      );
    }
    if (sealed[0] !== FORMAT_VERSION) {
      throw new StorageError(
        'SECRET_OPEN_FAILED',
        `sealed secret${where} has unknown format version ${sealed[0]}`,
      );
    }
    const nonce = sealed.subarray(1, 1 + NONCE_LENGTH);
    const ciphertext = sealed.subarray(1 + NONCE_LENGTH, sealed.length - TAG_LENGTH);
    const tag = sealed.subarray(sealed.length - TAG_LENGTH);
    const decipher = createDecipheriv('aes-256-gcm', this.#key, nonce, {
      authTagLength: TAG_LENGTH,
    });
    decipher.setAAD(toBytes(associatedData));
    decipher.setAuthTag(tag);
    try {
      const plaintext = Buffer.concat([decipher.update(ciphertext), decipher.final()]);
      return new Uint8Array(plaintext.buffer, plaintext.byteOffset, plaintext.byteLength);
    } catch (error) {
      throw new StorageError(
        'SECRET_OPEN_FAILED',
        `sealed secret${where} does not authenticate: tampered, sealed under another master key, or moved from another row`,
        { cause: error },
      );
    }
  }

  toJSON(): string {
    return 'SecretBox {}';
  }

  [inspect.custom](): string {
    return 'SecretBox {}';
  }
}

function toBytes(value: string | Uint8Array): Uint8Array {
  return typeof value === 'string' ? Buffer.from(value, 'utf8') : value;
}

export interface LoadMasterKeyOptions {
  dataDir: string;
  env?: NodeJS.ProcessEnv;
  logger?: StorageLogger;
}

/** The environment variable and the file name the master key is looked up under. */
export const MASTER_KEY_ENV = 'GALET_MASTER_KEY';
export const MASTER_KEY_FILE = 'master.key';

/**
 * The 32-byte master key: from `GALET_MASTER_KEY` (64 hex digits) when set, else from
 * `<dataDir>/master.key`, which is created on first use (32 random bytes, written as 64 hex
 * digits and a newline so it can be pasted into GALET_MASTER_KEY; a file of 32 raw bytes is read
 * too). Two processes starting together agree on one key: the file appears atomically (hard link
 * of a fully written temporary file), and the loser reads the winner's.
 *
 * Losing this key loses every stored root and session key, hence the warning when it is created.
 */
export async function loadOrCreateMasterKey(options: LoadMasterKeyOptions): Promise<Uint8Array> {
  const env = options.env ?? process.env;
  const fromEnv = env[MASTER_KEY_ENV];
  if (fromEnv !== undefined && fromEnv !== '') {
    const key = parseHexKey(fromEnv.trim());
    if (key === undefined) {
      throw new StorageError(
        'INVALID_MASTER_KEY',
        `${MASTER_KEY_ENV} must be 64 hex digits (32 bytes), got ${fromEnv.trim().length} characters`,
      );
    }
    return key;
  }

  const path = join(options.dataDir, MASTER_KEY_FILE);
  const existing = await readMasterKeyFile(path, options.logger);
  if (existing !== undefined) return existing;

  await mkdir(options.dataDir, { recursive: true, mode: 0o700 });
  const key = randomBytes(MASTER_KEY_LENGTH);
  const temporary = `${path}.${process.pid}.${randomBytes(4).toString('hex')}.tmp`;
  const handle = await open(temporary, 'wx', 0o600);
  try {
    await handle.writeFile(`${key.toString('hex')}\n`);
    await handle.sync();
  } finally {
    await handle.close();
  }
  try {
    await link(temporary, path);
  } catch (error) {
    if ((error as NodeJS.ErrnoException).code !== 'EEXIST') throw error;
    // Another process created it in the meantime: use theirs.
    const theirs = await readMasterKeyFile(path, options.logger);
    if (theirs === undefined) throw error;
    return theirs;
  } finally {
    await unlink(temporary).catch(() => undefined);
  }
  await syncDirectory(options.dataDir);
  options.logger?.warn(
    { path },
    'created a new master key; back it up: stored keys cannot be decrypted without it',
  );
  return new Uint8Array(key.buffer, key.byteOffset, key.byteLength);
}

async function readMasterKeyFile(
  path: string,
  logger: StorageLogger | undefined,
): Promise<Uint8Array | undefined> {
  let content: Buffer;
  try {
    content = await readFile(path);
  } catch (error) {
    if ((error as NodeJS.ErrnoException).code === 'ENOENT') return undefined;
    throw new StorageError(
      'INVALID_MASTER_KEY',
      `cannot read master key file ${path}: ${(error as Error).message}`,
      { cause: error },
    );
  }
  const key =
    content.length === MASTER_KEY_LENGTH
      ? new Uint8Array(content)
      : parseHexKey(content.toString('latin1').trim());
  content.fill(0);
  if (key === undefined) {
    throw new StorageError(
      'INVALID_MASTER_KEY',
      `master key file ${path} holds neither 64 hex digits nor 32 bytes (${content.length} bytes)`,
    );
  }
  const { mode } = await stat(path);
  if ((mode & 0o077) !== 0) {
    logger?.warn(
      { path, mode: `0${(mode & 0o777).toString(8)}` },
      'master key file is readable by other users; chmod 600 it',
    );
  }
  return key;
}

function parseHexKey(text: string): Uint8Array | undefined {
  if (!/^[0-9a-fA-F]{64}$/.test(text)) return undefined;
  return new Uint8Array(Buffer.from(text, 'hex'));
}

/** Makes the new directory entry durable (POSIX); not every platform allows it. */
async function syncDirectory(path: string): Promise<void> {
  try {
    const handle = await open(path, 'r');
    try {
      await handle.sync();
    } finally {
      await handle.close();
    }
  } catch {
    // Best effort: Windows cannot open a directory for fsync.
  }
}
