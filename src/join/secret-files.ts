import { X509Certificate } from 'node:crypto';
import { readFile, stat } from 'node:fs/promises';
import type { Logger } from '../logger.js';

/**
 * Reading the files the join settings point at: KEKs, bearer tokens, PEM certificates and keys.
 * Each reader names the setting (`where`) and the file in its error, never the content; a file
 * holding a secret that other users may read is named in a warning.
 */
export type SettingError = new (message: string) => Error;

async function readText(path: string, where: string, what: string, Fail: SettingError) {
  try {
    return await readFile(path, 'latin1');
  } catch (error) {
    throw new Fail(`${where}: cannot read ${what} ${path}: ${(error as Error).message}`);
  }
}

async function warnIfShared(path: string, what: string, logger: Logger | undefined) {
  const { mode } = await stat(path);
  if ((mode & 0o077) !== 0) {
    logger?.warn(
      { path, mode: `0${(mode & 0o777).toString(8)}` },
      `${what} is readable by other users; chmod 600 it`,
    );
  }
}

/** A KEK: 16, 24 or 32 bytes as hex (RFC 3394 takes AES-128/192/256 keys). */
export async function readKekFile(
  path: string,
  where: string,
  Fail: SettingError,
  logger?: Logger,
): Promise<Uint8Array> {
  const text = (await readText(path, where, 'kekFile', Fail)).trim();
  if (!/^(?:[0-9a-fA-F]{32}|[0-9a-fA-F]{48}|[0-9a-fA-F]{64})$/.test(text)) {
    throw new Fail(`${where}: kekFile ${path} must hold a KEK of 16, 24 or 32 bytes as hex`);
  }
  await warnIfShared(path, 'join server KEK file', logger);
  return new Uint8Array(Buffer.from(text, 'hex'));
}

/** What a bearer token may be: 16 to 512 visible ASCII characters (it travels in a header). */
export const BEARER_TOKEN = /^[\x21-\x7e]{16,512}$/;

/** A bearer token alone in a file; one trailing newline is ignored. */
export async function readTokenFile(
  path: string,
  where: string,
  Fail: SettingError,
  logger?: Logger,
): Promise<string> {
  const token = (await readText(path, where, 'tokenFile', Fail)).replace(/\r?\n$/, '');
  if (!BEARER_TOKEN.test(token)) {
    throw new Fail(
      `${where}: tokenFile ${path} must hold one token of 16 to 512 visible ASCII characters`,
    );
  }
  await warnIfShared(path, 'Backend Interfaces token file', logger);
  return token;
}

/** PEM text of certificates: at least one, each parsed (a CA file may hold several). */
export async function readCertificateFile(
  path: string,
  where: string,
  field: string,
  Fail: SettingError,
): Promise<{ pem: string; certificates: X509Certificate[] }> {
  const pem = await readText(path, where, field, Fail);
  const blocks = pem.match(/-----BEGIN CERTIFICATE-----[\s\S]+?-----END CERTIFICATE-----/g) ?? [];
  if (blocks.length === 0) {
    throw new Fail(`${where}: ${field} ${path} holds no PEM certificate`);
  }
  try {
    return { pem, certificates: blocks.map((block) => new X509Certificate(block)) };
  } catch (error) {
    throw new Fail(`${where}: ${field} ${path}: ${(error as Error).message}`);
  }
}

/** A PEM private key (TLS). */
export async function readPrivateKeyFile(
  path: string,
  where: string,
  field: string,
  Fail: SettingError,
  logger?: Logger,
): Promise<string> {
  const pem = await readText(path, where, field, Fail);
  if (!/-----BEGIN [A-Z ]*PRIVATE KEY-----/.test(pem)) {
    throw new Fail(`${where}: ${field} ${path} holds no PEM private key`);
  }
  await warnIfShared(path, 'TLS private key file', logger);
  return pem;
}
