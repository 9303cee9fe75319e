import { chmodSync, mkdirSync, readFileSync, renameSync, statSync, writeFileSync } from 'node:fs';
import { homedir } from 'node:os';
import { dirname, join } from 'node:path';
import { CliInputError } from './fail.js';

/**
 * The credentials `galet login` keeps, per server URL, in a file only its user may read
 * (`$XDG_CONFIG_HOME/galet/credentials.json`, by default `~/.config/galet/credentials.json`,
 * mode 0600 in a 0700 directory). `currentUrl` is the server of the last login: the one the
 * commands talk to when neither `--url` nor `GALET_URL` names another.
 */

export type CredentialKind = 'api-key' | 'session' | 'admin-token';

export interface StoredCredential {
  kind: CredentialKind;
  token: string;
  /** The account of a console session. */
  email?: string;
  /** When a console session ends (ISO 8601). */
  expiresAt?: string;
  savedAt: string;
}

export interface CredentialsFile {
  version: 1;
  currentUrl?: string;
  servers: Record<string, StoredCredential>;
}

export function credentialsPath(env: NodeJS.ProcessEnv = process.env): string {
  const configHome = nonEmpty(env['XDG_CONFIG_HOME']) ?? join(homedir(), '.config');
  return join(configHome, 'galet', 'credentials.json');
}

/** The file's content; an empty one when there is none yet. */
export function readCredentials(env: NodeJS.ProcessEnv = process.env): CredentialsFile {
  const path = credentialsPath(env);
  let text: string;
  try {
    text = readFileSync(path, 'utf8');
  } catch (error) {
    if ((error as NodeJS.ErrnoException).code === 'ENOENT') return { version: 1, servers: {} };
    throw new CliInputError(`cannot read ${path}: ${(error as Error).message}`);
  }
  if ((statSync(path).mode & 0o077) !== 0) {
    process.stderr.write(`galet: warning: ${path} is readable by others: chmod 600 it\n`);
  }
  try {
    const parsed = JSON.parse(text) as Partial<CredentialsFile>;
    if (typeof parsed.servers !== 'object' || parsed.servers === null)
      throw new Error('no servers');
    return {
      version: 1,
      servers: parsed.servers,
      ...(typeof parsed.currentUrl === 'string' ? { currentUrl: parsed.currentUrl } : {}),
    };
  } catch (error) {
    throw new CliInputError(
      `${path} is not a galet credentials file (${(error as Error).message}): remove it and log in again`,
    );
  }
}

/** Keeps the credential of `url` and makes it the current server. Returns the file's path. */
export function saveCredential(
  url: string,
  credential: StoredCredential,
  env: NodeJS.ProcessEnv = process.env,
): string {
  const file = readCredentials(env);
  file.servers[url] = credential;
  file.currentUrl = url;
  return writeCredentials(file, env);
}

/** Forgets the credential of `url`; the one forgotten, if there was one. */
export function removeCredential(
  url: string,
  env: NodeJS.ProcessEnv = process.env,
): StoredCredential | undefined {
  const file = readCredentials(env);
  const removed = file.servers[url];
  if (removed === undefined) return undefined;
  delete file.servers[url];
  if (file.currentUrl === url) delete file.currentUrl;
  writeCredentials(file, env);
  return removed;
}

/** Written to a temporary file (mode 0600 from its creation) renamed over the old one. */
function writeCredentials(file: CredentialsFile, env: NodeJS.ProcessEnv): string {
  const path = credentialsPath(env);
  mkdirSync(dirname(path), { recursive: true, mode: 0o700 });
  const temporary = `${path}.${process.pid}.tmp`;
  writeFileSync(temporary, `${JSON.stringify(file, null, 2)}\n`, { mode: 0o600 });
  chmodSync(temporary, 0o600);
  renameSync(temporary, path);
  return path;
}

export function nonEmpty(value: string | undefined): string | undefined {
  return value === undefined || value.trim() === '' ? undefined : value;
}
