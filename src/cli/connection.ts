import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import type { Command } from 'commander';
import {
  type CredentialKind,
  type CredentialsFile,
  nonEmpty,
  readCredentials,
} from './credentials.js';
import { CliInputError } from './fail.js';

export const DEFAULT_URL = 'http://127.0.0.1:8080';

/** The connection options every API command takes. */
export interface ConnectionOptions {
  url?: string;
  token?: string;
  dataDir?: string;
}

export interface Connection {
  /** Without a trailing slash. */
  url: string;
  /** Undefined: no credential anywhere (fine for `galet login`, refused by the others). */
  token: string | undefined;
  /** Where the token came from, for messages. */
  source: 'option' | 'environment' | 'login' | 'admin.token' | 'none';
  kind?: CredentialKind;
}

export function withConnection(command: Command): Command {
  return command
    .option(
      '--url <url>',
      `Galet HTTP API base URL (default $GALET_URL, the last login, ${DEFAULT_URL})`,
    )
    .option(
      '--token <token>',
      'API token (default $GALET_TOKEN, the login of this URL, <data-dir>/admin.token)',
    )
    .option(
      '--data-dir <path>',
      'where to find admin.token when nothing else gives a token (default ./data)',
    );
}

export function connectionOptions(options: Record<string, unknown>): ConnectionOptions {
  const text = (name: string) =>
    typeof options[name] === 'string' ? { [name]: options[name] as string } : {};
  return { ...text('url'), ...text('token'), ...text('dataDir') };
}

/**
 * The one place the server and the credential are chosen. URL: `--url`, `$GALET_URL`, the server
 * of the last `galet login`, then the default. Token: `--token`, `$GALET_TOKEN` (or
 * `$GALET_ADMIN_TOKEN`), the login kept for that URL, then `<data-dir>/admin.token`.
 */
export function resolveConnection(
  options: ConnectionOptions,
  env: NodeJS.ProcessEnv = process.env,
): Connection {
  // The credentials file is read only when the options and the environment leave a question.
  let credentials: CredentialsFile | undefined;
  const stored = () => {
    credentials ??= readCredentials(env);
    return credentials;
  };
  const url = resolveUrl(options, env, stored);
  const given = nonEmpty(options.token);
  if (given !== undefined) return { url, token: given, source: 'option' };
  const fromEnv = nonEmpty(env['GALET_TOKEN']) ?? nonEmpty(env['GALET_ADMIN_TOKEN']);
  if (fromEnv !== undefined) return { url, token: fromEnv, source: 'environment' };
  const login = stored().servers[url];
  if (login !== undefined) {
    if (login.expiresAt !== undefined && Date.parse(login.expiresAt) <= Date.now()) {
      throw new CliInputError(
        `your session on ${url} ended at ${login.expiresAt}: run galet login again`,
      );
    }
    return { url, token: login.token, source: 'login', kind: login.kind };
  }
  const fromFile = readTokenFile(
    nonEmpty(options.dataDir) ?? nonEmpty(env['GALET_DATA_DIR']) ?? './data',
  );
  if (fromFile !== undefined) return { url, token: fromFile, source: 'admin.token' };
  return { url, token: undefined, source: 'none' };
}

/** The server: `--url`, `$GALET_URL`, the server of the last login, then the default. */
export function resolveUrl(
  options: ConnectionOptions,
  env: NodeJS.ProcessEnv = process.env,
  credentials: () => CredentialsFile = () => readCredentials(env),
): string {
  return normaliseUrl(
    nonEmpty(options.url) ?? nonEmpty(env['GALET_URL']) ?? credentials().currentUrl ?? DEFAULT_URL,
  );
}

/** `https://host:port/prefix` without trailing slashes; refuses what is not an http(s) URL. */
export function normaliseUrl(url: string): string {
  let parsed: URL;
  try {
    parsed = new URL(url);
  } catch {
    throw new CliInputError(`--url must be an http or https URL, got "${url}"`);
  }
  if (parsed.protocol !== 'http:' && parsed.protocol !== 'https:') {
    throw new CliInputError(`--url must be an http or https URL, got "${url}"`);
  }
  return `${parsed.origin}${parsed.pathname}`.replace(/\/+$/, '');
}

function readTokenFile(dataDir: string): string | undefined {
  try {
    return readFileSync(join(dataDir, 'admin.token'), 'utf8').trim() || undefined;
  } catch {
    return undefined;
  }
}
