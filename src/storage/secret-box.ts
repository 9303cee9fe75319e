import {
  createCipheriv,
  createDecipheriv,
  createHmac,
  createSecretKey,
  type KeyObject,
  randomBytes,
} from 'node:crypto';
import { link, mkdir, open, readFile, rename, stat, unlink } from 'node:fs/promises';
import { dirname, join } from 'node:path';
import { inspect } from 'node:util';
import type { StorageLogger } from './database.js';
import { StorageError } from './errors.js';

/** The first format: `0x01 | nonce | ciphertext | tag`, no key id. Still read, no longer written. */
const FORMAT_V1 = 0x01;
/** `0x02 | key id | nonce | ciphertext | tag`; the version and key id are authenticated too. */
const FORMAT_V2 = 0x02;
const KEY_ID_LENGTH = 4;
const NONCE_LENGTH = 12;
const TAG_LENGTH = 16;
const MASTER_KEY_LENGTH = 32;
const OVERHEAD_V1 = 1 + NONCE_LENGTH + TAG_LENGTH;
const HEADER_V2 = 1 + KEY_ID_LENGTH;
const OVERHEAD_V2 = HEADER_V2 + NONCE_LENGTH + TAG_LENGTH;

/**
 * Secrets at rest (root keys, session keys, link KEKs, TOTP and webhook secrets) sealed with
 * AES-256-GCM under the master key.
 *
 * Sealed form: `version (0x02) | 4-byte key id | 12-byte random nonce | ciphertext | 16-byte tag`.
 * The key id names the master key (a truncated HMAC of it, see `keyId`), so that a value sealed
 * under another master key is reported as such, with both ids, instead of as a bare failure; it
 * also tells which key a database is on during a rotation. The associated data binds a secret to
 * its place, e.g. `device:0102030405060708:app_key`: a sealed value copied to another row or
 * column does not open. GCM authenticates the version and key id with it. Values sealed before
 * key ids (`0x01 | nonce | ciphertext | tag`) still open; `galet keys rotate-master` rewrites
 * them in the current form. Random 96-bit nonces are safe far beyond the number of secrets a
 * network stores (NIST SP 800-38D §8.3: 2^32 seals per key).
 *
 * The key lives in a KeyObject and a private field: it is neither enumerable, printable nor
 * serialisable.
 */
export class SecretBox {
  readonly #key: KeyObject;
  readonly #keyId: Uint8Array;

  private constructor(key: KeyObject) {
    this.#key = key;
    this.#keyId = masterKeyId(key);
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

  /**
   * The master key's id: 8 hex digits, written in every value sealed under it. Not secret (a
   * truncated HMAC-SHA-256 of a constant under the key): safe to print and log.
   */
  get keyId(): string {
    return Buffer.from(this.#keyId).toString('hex');
  }

  /**
   * The length of what was sealed (AES-GCM keeps it), read without the key; -1 when `sealed`
   * is no sealed value.
   */
  static plaintextLength(sealed: Uint8Array): number {
    const keyId = SecretBox.keyIdOf(sealed);
    if (keyId === undefined) return -1;
    return sealed.length - (keyId === null ? OVERHEAD_V1 : OVERHEAD_V2);
  }

  /**
   * The id of the master key a value was sealed under (8 hex digits); null for a value of the
   * first format, which names no key; undefined when it is no sealed value at all.
   */
  static keyIdOf(sealed: Uint8Array): string | null | undefined {
    if (!(sealed instanceof Uint8Array)) return undefined;
    if (sealed[0] === FORMAT_V1 && sealed.length >= OVERHEAD_V1) return null;
    if (sealed[0] === FORMAT_V2 && sealed.length >= OVERHEAD_V2) {
      return Buffer.from(sealed.subarray(1, HEADER_V2)).toString('hex');
    }
    return undefined;
  }

  seal(plaintext: Uint8Array, associatedData: string | Uint8Array): Uint8Array {
    const nonce = randomBytes(NONCE_LENGTH);
    const cipher = createCipheriv('aes-256-gcm', this.#key, nonce, { authTagLength: TAG_LENGTH });
    const sealed = new Uint8Array(OVERHEAD_V2 + plaintext.length);
    sealed[0] = FORMAT_V2;
    sealed.set(this.#keyId, 1);
    cipher.setAAD(Buffer.concat([sealed.subarray(0, HEADER_V2), toBytes(associatedData)]));
    const ciphertext = Buffer.concat([cipher.update(plaintext), cipher.final()]);
    sealed.set(nonce, HEADER_V2);
    sealed.set(ciphertext, HEADER_V2 + NONCE_LENGTH);
    sealed.set(cipher.getAuthTag(), HEADER_V2 + NONCE_LENGTH + ciphertext.length);
    return sealed;
  }

  /**
   * The plaintext, or a `SECRET_OPEN_FAILED` StorageError: sealed under another master key (the
   * message names both key ids), malformed, or not authentic (tampered, moved from another row).
   */
  open(sealed: Uint8Array, associatedData: string | Uint8Array): Uint8Array {
    const where = typeof associatedData === 'string' ? ` (${associatedData})` : '';
    const version = sealed instanceof Uint8Array ? sealed[0] : undefined;
    const minimum = version === FORMAT_V2 ? OVERHEAD_V2 : OVERHEAD_V1;
    if (!(sealed instanceof Uint8Array) || sealed.length < minimum) {
      const got = sealed instanceof Uint8Array ? `${sealed.length} bytes` : typeof sealed;
      throw new StorageError(
        'SECRET_OPEN_FAILED',
        `sealed secret${where} too short: ${got}, at least ${minimum} expected`,
      );
    }
    if (version !== FORMAT_V1 && version !== FORMAT_V2) {
      throw new StorageError(
        'SECRET_OPEN_FAILED',
        `sealed secret${where} has unknown format version ${version}`,
      );
    }
    let header: Uint8Array = new Uint8Array(0);
    if (version === FORMAT_V2) {
      header = sealed.subarray(0, HEADER_V2);
      const sealedKeyId = sealed.subarray(1, HEADER_V2);
      if (!Buffer.from(sealedKeyId).equals(this.#keyId)) {
        const theirs = Buffer.from(sealedKeyId).toString('hex');
        throw new StorageError(
          'SECRET_OPEN_FAILED',
          `sealed secret${where} was sealed under master key ${theirs}, but the master key in use is ${this.keyId}: ` +
            'wrong GALET_MASTER_KEY or master.key, or an unfinished `galet keys rotate-master`',
          { details: { sealedKeyId: theirs, keyId: this.keyId } },
        );
      }
    }
    const body = sealed.subarray(version === FORMAT_V2 ? HEADER_V2 : 1);
    const nonce = body.subarray(0, NONCE_LENGTH);
    const ciphertext = body.subarray(NONCE_LENGTH, body.length - TAG_LENGTH);
    const tag = body.subarray(body.length - TAG_LENGTH);
    const decipher = createDecipheriv('aes-256-gcm', this.#key, nonce, {
      authTagLength: TAG_LENGTH,
    });
    decipher.setAAD(Buffer.concat([header, toBytes(associatedData)]));
    decipher.setAuthTag(tag);
    try {
      const plaintext = Buffer.concat([decipher.update(ciphertext), decipher.final()]);
      return new Uint8Array(plaintext.buffer, plaintext.byteOffset, plaintext.byteLength);
    } catch (error) {
      throw new StorageError(
        'SECRET_OPEN_FAILED',
        version === FORMAT_V1
          ? `sealed secret${where} does not authenticate: tampered, sealed under another master key, or moved from another row`
          : `sealed secret${where} does not authenticate: tampered or moved from another row`,
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

function masterKeyId(key: KeyObject): Uint8Array {
  const mac = createHmac('sha256', key).update('galet master key id').digest();
  return new Uint8Array(mac.subarray(0, KEY_ID_LENGTH));
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
 * A rotation's new key, written before the database is re-encrypted and moved in place of
 * master.key after the commit: while it exists a rotation is unfinished (see rotate-master).
 */
export const MASTER_KEY_PENDING_FILE = 'master.key.new';
/**
 * The application role's KEK, kept across master key rotations (sealed under the current master
 * key, as hex): before the first rotation it is derived from the master key; the network holds
 * AppSKeys wrapped under it, so a rotation must not change it.
 */
export const APPLICATION_KEK_FILE = 'application-kek.sealed';
export const APPLICATION_KEK_PENDING_FILE = `${APPLICATION_KEK_FILE}.new`;
const APPLICATION_KEK_ASSOCIATED_DATA = 'file:application-kek';

/**
 * The 32-byte master key: from `GALET_MASTER_KEY` (64 hex digits) when set, else from
 * `<dataDir>/master.key`, which is created on first use (32 random bytes, written as 64 hex
 * digits and a newline so it can be pasted into GALET_MASTER_KEY; a file of 32 raw bytes is read
 * too). Two processes starting together agree on one key: the file appears atomically (hard link
 * of a fully written temporary file), and the loser reads the winner's. Refused while a master key
 * rotation is unfinished in the data directory.
 *
 * Losing this key loses every stored root and session key, hence the warning when it is created.
 */
export async function loadOrCreateMasterKey(options: LoadMasterKeyOptions): Promise<Uint8Array> {
  await refuseUnfinishedRotation(options.dataDir);
  const existing = await readMasterKey(options);
  if (existing !== undefined) return existing.key;

  const path = join(options.dataDir, MASTER_KEY_FILE);
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

/** Where a master key came from: GALET_MASTER_KEY, or the file at `path`. */
export type MasterKeySource = { kind: 'environment' } | { kind: 'file'; path: string };

/**
 * The master key as `loadOrCreateMasterKey` finds it (GALET_MASTER_KEY, else master.key), or
 * undefined when there is none yet; never creates one.
 */
export async function readMasterKey(
  options: LoadMasterKeyOptions,
): Promise<{ key: Uint8Array; source: MasterKeySource } | undefined> {
  const env = options.env ?? process.env;
  const fromEnv = env[MASTER_KEY_ENV];
  if (fromEnv !== undefined && fromEnv !== '') {
    return { key: parseMasterKeyHex(fromEnv, MASTER_KEY_ENV), source: { kind: 'environment' } };
  }
  const path = join(options.dataDir, MASTER_KEY_FILE);
  const key = await readMasterKeyFile(path, options.logger);
  return key === undefined ? undefined : { key, source: { kind: 'file', path } };
}

/** 64 hex digits (surrounding white space ignored) as a key; `what` names the source in errors. */
export function parseMasterKeyHex(text: string, what: string): Uint8Array {
  const key = parseHexKey(text.trim());
  if (key === undefined) {
    throw new StorageError(
      'INVALID_MASTER_KEY',
      `${what} must be 64 hex digits (32 bytes), got ${text.trim().length} characters`,
    );
  }
  return key;
}

/** The master key file at `path` (64 hex digits or 32 raw bytes), undefined when absent. */
export function readMasterKeyAt(path: string): Promise<Uint8Array | undefined> {
  return readMasterKeyFile(path, undefined);
}

/** The files of an unfinished rotation present in `dataDir` (empty: none). */
export async function unfinishedRotationFiles(dataDir: string): Promise<string[]> {
  const present: string[] = [];
  for (const name of [MASTER_KEY_PENDING_FILE, APPLICATION_KEK_PENDING_FILE]) {
    try {
      await stat(join(dataDir, name));
      present.push(name);
    } catch (error) {
      if ((error as NodeJS.ErrnoException).code !== 'ENOENT') throw error;
    }
  }
  return present;
}

async function refuseUnfinishedRotation(dataDir: string): Promise<void> {
  const files = await unfinishedRotationFiles(dataDir);
  if (files.length > 0) {
    throw new StorageError(
      'INVALID_MASTER_KEY',
      `a master key rotation is unfinished in ${dataDir} (${files.join(', ')}): ` +
        'run `galet keys rotate-master` again with the same settings; it finishes or undoes it',
    );
  }
}

/**
 * Writes a file only its owner can read (mode 0600) so that it is whole or absent: a temporary
 * file, synced, renamed over `path`, then the directory synced.
 */
export async function writePrivateFile(path: string, content: string): Promise<void> {
  const temporary = `${path}.${process.pid}.${randomBytes(4).toString('hex')}.tmp`;
  const handle = await open(temporary, 'wx', 0o600);
  try {
    await handle.writeFile(content);
    await handle.sync();
  } finally {
    await handle.close();
  }
  try {
    await rename(temporary, path);
  } catch (error) {
    await unlink(temporary).catch(() => undefined);
    throw error;
  }
  await syncDirectory(dirname(path));
}

/** Renames `from` to `to` and makes the change durable. */
export async function renameDurably(from: string, to: string): Promise<void> {
  await rename(from, to);
  await syncDirectory(dirname(to));
}

/** Makes `existing` also reachable as `alias` (a hard link; fails when `alias` exists). */
export async function linkDurably(existing: string, alias: string): Promise<void> {
  await link(existing, alias);
  await syncDirectory(dirname(alias));
}

/** The application KEK sealed under `box`, as the text of APPLICATION_KEK_FILE. */
export function sealApplicationKek(box: SecretBox, kek: Uint8Array): string {
  return `${Buffer.from(box.seal(kek, APPLICATION_KEK_ASSOCIATED_DATA)).toString('hex')}\n`;
}

/** Opens the text of APPLICATION_KEK_FILE (`SECRET_OPEN_FAILED` under another master key). */
export function openApplicationKek(box: SecretBox, text: string, path: string): Uint8Array {
  const hex = text.trim();
  if (!/^(?:[0-9a-f]{2})+$/.test(hex)) {
    throw new StorageError('SECRET_OPEN_FAILED', `${path} does not hold a sealed key (hex)`);
  }
  return box.open(Buffer.from(hex, 'hex'), APPLICATION_KEK_ASSOCIATED_DATA);
}

/**
 * The application role's KEK kept by a master key rotation (`<dataDir>/application-kek.sealed`),
 * or undefined when the data directory never went through one: the role then derives it from the
 * master key as before. Refused while a rotation is unfinished.
 */
export async function readKeptApplicationKek(
  dataDir: string,
  box: SecretBox,
): Promise<Uint8Array | undefined> {
  await refuseUnfinishedRotation(dataDir);
  const path = join(dataDir, APPLICATION_KEK_FILE);
  let text: string;
  try {
    text = await readFile(path, 'utf8');
  } catch (error) {
    if ((error as NodeJS.ErrnoException).code === 'ENOENT') return undefined;
    throw error;
  }
  return openApplicationKek(box, text, path);
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
