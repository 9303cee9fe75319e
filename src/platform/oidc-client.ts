import {
  CLIENT_ASSERTION_TYPE,
  type ClientAssertionKey,
  clientAssertion,
} from './oidc-client-assertion.js';
import { codeChallengeS256, type OidcFlow } from './oidc-flow.js';
import {
  checkIdTokenClaims,
  type DecodedIdToken,
  decodeIdToken,
  keyFor,
  type SigningKey,
  signatureValid,
  signingKeysOf,
} from './oidc-id-token.js';
import {
  checkLogoutTokenClaims,
  type LogoutRequest,
  logoutFailureOf,
} from './oidc-logout-token.js';
import { checkedUrl, OidcError, type ResolvedOidcSettings } from './oidc-settings.js';

/**
 * The relying party's side of an OpenID Connect provider: its discovery document and signing
 * keys (both cached; the keys fetched again when a token names an unknown key id, at most every
 * `jwksMinRefreshMs`), the authorization URL of a flow, the code exchange and the userinfo
 * request. Every failure is an `OidcError` with its reason; nothing here logs, and no message
 * holds a code, a token or the client secret.
 *
 * The only module of `platform/` that does I/O: HTTP requests to the provider, through the
 * `fetch` it is given (the global one by default), each with a time cap, no redirects followed
 * and a bounded answer.
 */

export interface ProviderMetadata {
  issuer: string;
  authorizationEndpoint: string;
  tokenEndpoint: string;
  jwksUri: string;
  userinfoEndpoint: string | undefined;
  /** `token_endpoint_auth_methods_supported`; absent means `client_secret_basic` (Discovery §3). */
  tokenEndpointAuthMethods: readonly string[] | undefined;
  /** `token_endpoint_auth_signing_alg_values_supported`, when listed. */
  tokenEndpointAuthSigningAlgs: readonly string[] | undefined;
}

export interface OidcClientOptions {
  settings: ResolvedOidcSettings;
  /** ms since the epoch; the API's clock. */
  now: () => number;
  /** How requests reach the provider; default the global fetch. */
  fetch?: typeof fetch;
  /** The signing key of `private_key_jwt` (`loadClientAssertionKey`); required with it. */
  clientKey?: ClientAssertionKey | undefined;
  /** Told, once, when the discovery document does not list what the settings use. */
  warn?: ((message: string) => void) | undefined;
}

/** Largest answer read from the provider, bytes. */
const MAX_ANSWER_BYTES = 1_048_576;

interface Cached<T> {
  value: T;
  fetchedAtMs: number;
}

export class OidcClient {
  readonly settings: ResolvedOidcSettings;
  readonly #now: () => number;
  readonly #fetch: typeof fetch;
  readonly #clientKey: ClientAssertionKey | undefined;
  readonly #warn: (message: string) => void;
  #warned = false;
  #metadata: Cached<ProviderMetadata> | undefined;
  #metadataFetch: Promise<ProviderMetadata> | undefined;
  #keys: Cached<SigningKey[]> | undefined;
  #keysFetch: Promise<SigningKey[]> | undefined;

  constructor(options: OidcClientOptions) {
    this.settings = options.settings;
    this.#now = options.now;
    this.#fetch = options.fetch ?? fetch;
    this.#clientKey = options.clientKey;
    this.#warn = options.warn ?? (() => {});
    if (this.settings.tokenEndpointAuth === 'private_key_jwt' && this.#clientKey === undefined) {
      throw new RangeError('private_key_jwt needs the client key (loadClientAssertionKey)');
    }
  }

  /** The discovery document (OpenID Connect Discovery 1.0 §4), cached for `cacheTtlMs`. */
  async metadata(): Promise<ProviderMetadata> {
    const cached = this.#metadata;
    if (cached !== undefined && this.#now() - cached.fetchedAtMs < this.settings.cacheTtlMs) {
      return cached.value;
    }
    this.#metadataFetch ??= this.#fetchMetadata().finally(() => {
      this.#metadataFetch = undefined;
    });
    return this.#metadataFetch;
  }

  async #fetchMetadata(): Promise<ProviderMetadata> {
    const url = `${this.settings.issuer.replace(/\/$/, '')}/.well-known/openid-configuration`;
    const answer = await this.#request(url, {}, 'discovery document');
    if (answer.status !== 200) throw unexpectedStatus('discovery document', answer.status);
    const document = jsonObject(answer.body, 'discovery document');
    // Discovery §4.3: the issuer in the document is exactly the one configured.
    if (document['issuer'] !== this.settings.issuer) {
      throw new OidcError(
        'provider-invalid',
        `the provider's discovery document names the issuer ${JSON.stringify(document['issuer'])}, not ${this.settings.issuer} as configured`,
      );
    }
    const endpoint = (name: string, required: boolean): string | undefined => {
      const value = document[name];
      if (value === undefined && !required) return undefined;
      try {
        return checkedUrl(value, `the provider's ${name}`).href;
      } catch (error) {
        throw new OidcError('provider-invalid', (error as Error).message);
      }
    };
    const metadata: ProviderMetadata = {
      issuer: this.settings.issuer,
      authorizationEndpoint: endpoint('authorization_endpoint', true) as string,
      tokenEndpoint: endpoint('token_endpoint', true) as string,
      jwksUri: endpoint('jwks_uri', true) as string,
      userinfoEndpoint: endpoint('userinfo_endpoint', false),
      tokenEndpointAuthMethods: stringList(document['token_endpoint_auth_methods_supported']),
      tokenEndpointAuthSigningAlgs: stringList(
        document['token_endpoint_auth_signing_alg_values_supported'],
      ),
    };
    this.#metadata = { value: metadata, fetchedAtMs: this.#now() };
    this.#checkSupport(metadata);
    return metadata;
  }

  /**
   * A provider that does not list the configured authentication may still accept it (the list
   * is advisory), so a mismatch is a warning, once: the token endpoint's answer is the proof.
   */
  #checkSupport(metadata: ProviderMetadata): void {
    if (this.#warned) return;
    const method = this.settings.tokenEndpointAuth;
    // Discovery §3: without the list, the provider supports client_secret_basic.
    const methods = metadata.tokenEndpointAuthMethods ?? ['client_secret_basic'];
    const problems: string[] = [];
    if (!methods.includes(method)) {
      problems.push(
        `does not list ${method} in token_endpoint_auth_methods_supported (${methods.join(', ') || 'empty'})`,
      );
    }
    const algorithm = this.#clientKey?.algorithm;
    const algorithms = metadata.tokenEndpointAuthSigningAlgs;
    if (algorithm !== undefined && algorithms !== undefined && !algorithms.includes(algorithm)) {
      problems.push(
        `does not list ${algorithm} in token_endpoint_auth_signing_alg_values_supported (${algorithms.join(', ') || 'empty'})`,
      );
    }
    if (problems.length === 0) return;
    this.#warned = true;
    this.#warn(
      `the identity provider's discovery document ${problems.join(', and ')}: logins may fail at the token endpoint`,
    );
  }

  /** Where the browser goes to log in: the code flow with PKCE S256, state and nonce. */
  async authorizationUrl(flow: OidcFlow): Promise<string> {
    const { authorizationEndpoint } = await this.metadata();
    const url = new URL(authorizationEndpoint);
    const parameters = {
      response_type: 'code',
      client_id: this.settings.clientId,
      redirect_uri: this.settings.redirectUrl,
      scope: this.settings.scopes.join(' '),
      state: flow.state,
      nonce: flow.nonce,
      code_challenge: codeChallengeS256(flow.codeVerifier),
      code_challenge_method: 'S256',
    };
    for (const [name, value] of Object.entries(parameters)) url.searchParams.set(name, value);
    return url.href;
  }

  /**
   * Exchanges the code (with the flow's verifier), checks the ID token and answers its claims,
   * completed from the userinfo endpoint when one of `wantedClaims` is not in the token
   * (OpenID Connect Core §5.3; the ID token's claims win).
   */
  async login(
    code: string,
    flow: OidcFlow,
    wantedClaims: readonly string[],
  ): Promise<Record<string, unknown>> {
    const tokens = await this.#exchangeCode(code, flow.codeVerifier);
    const claims = await this.verifyIdToken(tokens.idToken, flow.nonce);
    const missing = wantedClaims.some((name) => claims[name] === undefined);
    const { userinfoEndpoint } = await this.metadata();
    if (!missing || userinfoEndpoint === undefined || tokens.accessToken === undefined) {
      return claims;
    }
    const userinfo = await this.#userinfo(userinfoEndpoint, tokens.accessToken);
    if (userinfo['sub'] !== claims['sub']) {
      throw new OidcError(
        'userinfo-mismatch',
        'the userinfo answer is about another subject than the ID token',
      );
    }
    // `sid` names the provider's session of this ID token only (back-channel logout): never
    // one from the userinfo answer.
    const { sid: _sid, ...fromUserinfo } = userinfo;
    return { ...fromUserinfo, ...claims };
  }

  async #exchangeCode(
    code: string,
    codeVerifier: string,
  ): Promise<{ idToken: string; accessToken: string | undefined }> {
    const { tokenEndpoint } = await this.metadata();
    const { clientId, clientSecret, redirectUrl, tokenEndpointAuth, issuer } = this.settings;
    const form = new URLSearchParams({
      grant_type: 'authorization_code',
      code,
      redirect_uri: redirectUrl,
      code_verifier: codeVerifier,
    });
    const headers: Record<string, string> = {
      'content-type': 'application/x-www-form-urlencoded',
      accept: 'application/json',
    };
    if (tokenEndpointAuth === 'private_key_jwt') {
      // OpenID Connect Core §9, RFC 7523 §2.2; client_id too, as RFC 6749 §4.1.3 asks of a
      // client that does not authenticate with Basic.
      form.set('client_id', clientId);
      form.set('client_assertion_type', CLIENT_ASSERTION_TYPE);
      form.set(
        'client_assertion',
        clientAssertion(this.#clientKey as ClientAssertionKey, {
          clientId,
          audience: this.settings.clientAssertionAudience === 'issuer' ? issuer : tokenEndpoint,
          nowMs: this.#now(),
        }),
      );
    } else if (tokenEndpointAuth === 'client_secret_post') {
      form.set('client_id', clientId);
      form.set('client_secret', clientSecret);
    } else {
      // RFC 6749 §2.3.1: each part form-urlencoded before the Basic encoding.
      const credentials = `${formEncode(clientId)}:${formEncode(clientSecret)}`;
      headers['authorization'] = `Basic ${Buffer.from(credentials, 'utf8').toString('base64')}`;
    }
    const answer = await this.#request(
      tokenEndpoint,
      { method: 'POST', headers, body: form.toString() },
      'token endpoint',
    );
    if (answer.status === 400 || answer.status === 401) {
      let code = 'no error code';
      try {
        const error = jsonObject(answer.body, 'token error')['error'];
        if (typeof error === 'string' && /^[\x20-\x7e]{1,64}$/.test(error)) code = error;
      } catch {
        // Not JSON: the status says it.
      }
      if (code === 'invalid_client' || code === 'unauthorized_client') {
        throw new OidcError(
          'token-refused',
          `the provider refused Galet's client authentication (${answer.status}, ${code}): check the client id and the ${tokenEndpointAuth === 'private_key_jwt' ? 'public key registered for it' : 'client secret'}`,
        );
      }
      throw new OidcError(
        'token-refused',
        `the provider refused the authorization code (${answer.status}, ${code}): it may have been used already or have expired`,
      );
    }
    if (answer.status !== 200) throw unexpectedStatus('token endpoint', answer.status);
    const body = jsonObject(answer.body, 'token answer');
    if (typeof body['id_token'] !== 'string') {
      throw new OidcError(
        'provider-invalid',
        'the token answer holds no id_token: is "openid" a scope?',
      );
    }
    return {
      idToken: body['id_token'],
      accessToken: typeof body['access_token'] === 'string' ? body['access_token'] : undefined,
    };
  }

  /** The claims of a valid ID token of this login (signature, issuer, audience, times, nonce). */
  async verifyIdToken(idToken: string, nonce: string): Promise<Record<string, unknown>> {
    const token = await this.#verifiedToken(idToken, 'ID token');
    checkIdTokenClaims(token.claims, {
      issuer: this.settings.issuer,
      clientId: this.settings.clientId,
      nonce,
      nowMs: this.#now(),
      clockSkewMs: this.settings.clockSkewMs,
    });
    return token.claims;
  }

  /**
   * What a valid logout token (OpenID Connect Back-Channel Logout 1.0 §2.6) asks: its signature
   * checked as an ID token's, with the same keys, then its claims (`oidc-logout-token.ts`).
   * Throws an `OidcLogoutError`; the replay check (`jti`) is the caller's, which remembers them.
   */
  async verifyLogoutToken(logoutToken: string): Promise<LogoutRequest> {
    let token: DecodedIdToken;
    try {
      token = await this.#verifiedToken(logoutToken, 'logout token');
    } catch (error) {
      if (error instanceof OidcError) throw logoutFailureOf(error);
      throw error;
    }
    return checkLogoutTokenClaims(token.header, token.claims, {
      issuer: this.settings.issuer,
      clientId: this.settings.clientId,
      nowMs: this.#now(),
      clockSkewMs: this.settings.clockSkewMs,
    });
  }

  /** A token signed by one of the provider's keys (fetched again once for an unknown kid). */
  async #verifiedToken(text: string, what: string): Promise<DecodedIdToken> {
    const token = decodeIdToken(text, what);
    let key = keyFor(await this.#signingKeys(false), token.header);
    if (key === undefined) {
      // A key the cache does not know: the provider may have rotated its keys.
      const last = this.#keys?.fetchedAtMs ?? 0;
      if (this.#now() - last >= this.settings.jwksMinRefreshMs) {
        key = keyFor(await this.#signingKeys(true), token.header);
      }
    }
    if (key === undefined) {
      throw new OidcError(
        'unknown-key',
        `the ${what} is signed with a key the provider does not publish (${token.header.alg}, kid ${JSON.stringify(token.header.kid ?? null)})`,
      );
    }
    if (!signatureValid(token, key)) {
      throw new OidcError('bad-signature', `the ${what}'s signature is not the provider's`);
    }
    return token;
  }

  async #signingKeys(refresh: boolean): Promise<SigningKey[]> {
    const cached = this.#keys;
    if (
      !refresh &&
      cached !== undefined &&
      this.#now() - cached.fetchedAtMs < this.settings.cacheTtlMs
    ) {
      return cached.value;
    }
    this.#keysFetch ??= this.#fetchKeys().finally(() => {
      this.#keysFetch = undefined;
    });
    return this.#keysFetch;
  }

  async #fetchKeys(): Promise<SigningKey[]> {
    const { jwksUri } = await this.metadata();
    const answer = await this.#request(jwksUri, {}, 'key set (JWKS)');
    if (answer.status !== 200) throw unexpectedStatus('key set (JWKS)', answer.status);
    const keys = signingKeysOf(jsonObject(answer.body, 'key set (JWKS)'));
    this.#keys = { value: keys, fetchedAtMs: this.#now() };
    return keys;
  }

  async #userinfo(endpoint: string, accessToken: string): Promise<Record<string, unknown>> {
    const answer = await this.#request(
      endpoint,
      { headers: { authorization: `Bearer ${accessToken}`, accept: 'application/json' } },
      'userinfo endpoint',
    );
    if (answer.status !== 200) throw unexpectedStatus('userinfo endpoint', answer.status);
    if (!/^application\/json\b/i.test(answer.contentType)) {
      throw new OidcError(
        'provider-invalid',
        `the userinfo endpoint answered ${answer.contentType || 'no content type'}: Galet reads plain JSON userinfo only`,
      );
    }
    return jsonObject(answer.body, 'userinfo answer');
  }

  async #request(
    url: string,
    init: { method?: string; headers?: Record<string, string>; body?: string },
    what: string,
  ): Promise<{ status: number; contentType: string; body: string }> {
    const where = new URL(url);
    let response: Response;
    try {
      response = await this.#fetch(url, {
        ...init,
        redirect: 'manual',
        signal: AbortSignal.timeout(this.settings.requestTimeoutMs),
      });
    } catch (error) {
      const timedOut = (error as Error).name === 'TimeoutError';
      throw new OidcError(
        'provider-unreachable',
        `the identity provider's ${what} at ${where.origin} ${timedOut ? `did not answer within ${this.settings.requestTimeoutMs} ms` : 'could not be reached'}`,
        { cause: error },
      );
    }
    let body: string;
    try {
      body = await boundedText(response, MAX_ANSWER_BYTES);
    } catch (error) {
      throw new OidcError(
        (error as OidcError).reason ?? 'provider-unreachable',
        `the identity provider's ${what} at ${where.origin}: ${(error as Error).message}`,
        { cause: error },
      );
    }
    return {
      status: response.status,
      contentType: response.headers.get('content-type') ?? '',
      body,
    };
  }
}

/**
 * The e-mail address of the claims (lower case), checked: present and, unless the settings say
 * otherwise, verified by the provider (`email_verified`).
 */
export function emailOf(
  claims: Readonly<Record<string, unknown>>,
  settings: Pick<ResolvedOidcSettings, 'emailClaim' | 'requireVerifiedEmail'>,
): string {
  const email = claims[settings.emailClaim];
  if (typeof email !== 'string' || !/^[^\s@]+@[^\s@]+$/.test(email) || email.length > 254) {
    throw new OidcError(
      'email-missing',
      `the provider gave no e-mail address in the claim "${settings.emailClaim}"`,
    );
  }
  // Some providers send the flag as a string.
  const verified = claims['email_verified'];
  if (settings.requireVerifiedEmail && verified !== true && verified !== 'true') {
    throw new OidcError(
      'email-unverified',
      'the provider has not verified this e-mail address (email_verified is not true)',
    );
  }
  return email.trim().toLowerCase();
}

function unexpectedStatus(what: string, status: number): OidcError {
  return new OidcError(
    status >= 500 ? 'provider-unreachable' : 'provider-invalid',
    `the identity provider's ${what} answered HTTP ${status}`,
  );
}

function jsonObject(text: string, what: string): Record<string, unknown> {
  let value: unknown;
  try {
    value = JSON.parse(text);
  } catch {
    throw new OidcError('provider-invalid', `the provider's ${what} is not JSON`);
  }
  if (typeof value !== 'object' || value === null || Array.isArray(value)) {
    throw new OidcError('provider-invalid', `the provider's ${what} is not a JSON object`);
  }
  return value as Record<string, unknown>;
}

/** A list of strings from the discovery document; anything else is ignored as absent. */
function stringList(value: unknown): string[] | undefined {
  if (!Array.isArray(value) || !value.every((item) => typeof item === 'string')) return undefined;
  return value.slice(0, 100);
}

/** `application/x-www-form-urlencoded` encoding of one value. */
function formEncode(value: string): string {
  return new URLSearchParams([['', value]]).toString().slice(1);
}

async function boundedText(response: Response, maxBytes: number): Promise<string> {
  const declared = Number(response.headers.get('content-length') ?? 0);
  if (declared > maxBytes) {
    await response.body?.cancel();
    throw new OidcError('provider-invalid', `answer of ${declared} bytes, over ${maxBytes}`);
  }
  if (response.body === null) return '';
  const chunks: Uint8Array[] = [];
  let length = 0;
  for await (const chunk of response.body) {
    length += chunk.length;
    if (length > maxBytes) {
      throw new OidcError('provider-invalid', `answer over ${maxBytes} bytes`);
    }
    chunks.push(chunk);
  }
  return Buffer.concat(chunks).toString('utf8');
}
