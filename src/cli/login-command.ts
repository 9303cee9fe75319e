import type { Command } from 'commander';
import { ApiClient, ApiError } from './api-client.js';
import { connectionOptions, resolveConnection, resolveUrl } from './connection.js';
import {
  type CredentialKind,
  credentialsPath,
  removeCredential,
  saveCredential,
} from './credentials.js';
import { CliInputError } from './fail.js';
import { printJson } from './output.js';
import { ask, askSecret, canPrompt, readStdinLine } from './prompt.js';

/**
 * `galet login` keeps a credential for a server (an API key, or a console session opened with
 * e-mail, password and TOTP code) in the user's credentials file; `galet logout` ends the
 * session and forgets it; `galet whoami` says who the current credential is.
 */
export function registerLoginCommands(program: Command): void {
  program
    .command('login')
    .description(
      'log in to a Galet server: keep an API key (--token) or open a console session (e-mail and password)',
    )
    .option(
      '--url <url>',
      'Galet HTTP API base URL (default $GALET_URL, the last login, http://127.0.0.1:8080)',
    )
    .option('--token <token>', 'an API key (or the admin token) to keep; checked first')
    .option('--token-stdin', 'read the token from the first line of standard input')
    .option('--email <address>', 'log in as this console user (asked when not given)')
    .option(
      '--password-stdin',
      'read the password from the first line of standard input (else asked)',
    )
    .option(
      '--totp <code>',
      'the 6-digit code of an account with a second factor (asked when needed)',
    )
    .action(async (o: Record<string, unknown>) => {
      const url = resolveUrl(connectionOptions(o));
      const api = new ApiClient({ url, token: undefined, source: 'none' });
      const token =
        o['tokenStdin'] === true ? await readStdinLine('--token-stdin') : optionText(o, 'token');
      if (token !== undefined) {
        const me = await api.send('GET', '/auth/me', { token });
        if (me.status !== 200) throw new ApiError(me.status, me.body);
        const who = me.body as {
          kind: string;
          apiKey?: { id: string; role: string; tenantId: string | null };
        };
        const kind: CredentialKind =
          who.kind === 'admin-token' ? 'admin-token' : who.kind === 'user' ? 'session' : 'api-key';
        const file = saveCredential(url, { kind, token, savedAt: new Date().toISOString() });
        printJson({
          url,
          kind,
          ...(who.apiKey === undefined ? {} : { apiKey: who.apiKey }),
          credentialsFile: file,
        });
        return;
      }
      const email =
        optionText(o, 'email') ?? (await ask('e-mail: ', 'an e-mail address (--email)'));
      const password =
        o['passwordStdin'] === true
          ? await readStdinLine('--password-stdin')
          : await askSecret('password: ', 'a password (--password-stdin)');
      const session = await openSession(api, email, password, optionText(o, 'totp'));
      const file = saveCredential(url, {
        kind: 'session',
        token: session.token,
        email: session.user.email,
        expiresAt: session.expiresAt,
        savedAt: new Date().toISOString(),
      });
      printJson({
        url,
        kind: 'session',
        user: session.user,
        expiresAt: session.expiresAt,
        credentialsFile: file,
      });
    });

  program
    .command('logout')
    .description('end the console session kept for a server (if any) and forget its credential')
    .option('--url <url>', 'the server (default $GALET_URL, the last login)')
    .action(async (o: Record<string, unknown>) => {
      const url = resolveUrl(connectionOptions(o));
      const removed = removeCredential(url);
      if (removed === undefined) {
        throw new CliInputError(`no credential kept for ${url} (${credentialsPath()})`);
      }
      let sessionEnded = false;
      if (removed.kind === 'session') {
        // Forgotten locally whatever happens; the server ends the session if it still can.
        const api = new ApiClient({ url, token: removed.token, source: 'login' });
        const answer = await api.send('POST', '/auth/logout').catch(() => undefined);
        sessionEnded = answer?.status === 204;
      }
      printJson({ url, loggedOut: true, kind: removed.kind, sessionEnded });
    });

  program
    .command('whoami')
    .description('who the credential in use is: GET /auth/me')
    .option('--url <url>', 'the server (default $GALET_URL, the last login)')
    .option('--token <token>', 'API token (default $GALET_TOKEN, the login of this URL)')
    .option('--data-dir <path>', 'where to find admin.token (default ./data)')
    .action(async (o: Record<string, unknown>) => {
      const api = new ApiClient(resolveConnection(connectionOptions(o)));
      printJson(await api.request('GET', '/auth/me'));
    });
}

interface Session {
  token: string;
  expiresAt: string;
  user: { email: string };
}

/** `POST /auth/login`; asks the TOTP code when the account needs one and a terminal is there. */
async function openSession(
  api: ApiClient,
  email: string,
  password: string,
  totp: string | undefined,
): Promise<Session> {
  const login = (code: string | undefined) =>
    api.send('POST', '/auth/login', {
      authenticated: false,
      json: { email, password, ...(code === undefined ? {} : { totp: code }) },
    });
  let answer = await login(totp);
  if (answer.status === 401 && totp === undefined && errorCode(answer.body) === 'TOTP_REQUIRED') {
    if (!canPrompt()) {
      throw new CliInputError('this account has a second factor: give its code with --totp <code>');
    }
    answer = await login(await ask('TOTP code: ', 'a TOTP code (--totp)'));
  }
  if (answer.status !== 200) throw new ApiError(answer.status, answer.body);
  return answer.body as Session;
}

function errorCode(body: unknown): unknown {
  return typeof body === 'object' && body !== null
    ? (body as { error?: unknown }).error
    : undefined;
}

function optionText(o: Record<string, unknown>, name: string): string | undefined {
  const value = o[name];
  return typeof value === 'string' && value !== '' ? value : undefined;
}
