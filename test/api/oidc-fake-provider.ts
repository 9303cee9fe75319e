/**
 * A small, real OpenID Connect provider for the tests, on 127.0.0.1: discovery, JWKS, an
 * authorization endpoint that logs the configured person in at once and redirects back with a
 * code, a token endpoint (client_secret_basic or _post, or private_key_jwt checked against the
 * client keys registered in `clientKeys`; PKCE S256, one use per code) that signs
 * ID tokens with keys generated here, and a userinfo endpoint. Tests change what it does next
 * (`tamperNext`, `denyNext`, `rotateKey`) and read what it saw (`seen`).
 *
 * Each login opens a session at the provider, named in the ID token's `sid` (as Keycloak does);
 * `logoutToken` signs the logout token the provider would POST to the relying party's
 * back-channel logout URL when such a session ends (OpenID Connect Back-Channel Logout 1.0).
 */
import {
  createHash,
  createPublicKey,
  generateKeyPairSync,
  type KeyObject,
  randomBytes,
  sign,
  timingSafeEqual,
  verify,
} from 'node:crypto';
import { createServer, type IncomingMessage, type Server, type ServerResponse } from 'node:http';
import type { AddressInfo } from 'node:net';
import { closeHttpServer } from '../helpers/sockets.js';

export interface TestSigningKey {
  kid: string;
  alg: 'RS256' | 'ES256';
  privateKey: KeyObject;
  publicJwk: Record<string, unknown>;
}

export function newSigningKey(alg: 'RS256' | 'ES256', kid: string): TestSigningKey {
  const { privateKey, publicKey } =
    alg === 'RS256'
      ? generateKeyPairSync('rsa', { modulusLength: 2048 })
      : generateKeyPairSync('ec', { namedCurve: 'P-256' });
  return {
    kid,
    alg,
    privateKey,
    publicJwk: { ...publicKey.export({ format: 'jwk' }), kid, alg, use: 'sig' },
  };
}

/** A compact JWS of `claims` signed with `key` (header `alg`, `kid` unless overridden). */
export function signJwt(
  claims: Record<string, unknown>,
  key: TestSigningKey,
  header: Record<string, unknown> = {},
): string {
  const part = (value: unknown) => Buffer.from(JSON.stringify(value)).toString('base64url');
  const input = `${part({ typ: 'JWT', alg: key.alg, kid: key.kid, ...header })}.${part(claims)}`;
  const signature =
    key.alg === 'RS256'
      ? sign('sha256', Buffer.from(input), key.privateKey)
      : sign('sha256', Buffer.from(input), { key: key.privateKey, dsaEncoding: 'ieee-p1363' });
  return `${input}.${signature.toString('base64url')}`;
}

/** What the next ID token will be: change the claims, the header or the signing key. */
export interface IdTokenDraft {
  claims: Record<string, unknown>;
  header: Record<string, unknown>;
  key: TestSigningKey;
}

/** The `events` member of a logout token (Back-Channel Logout 1.0 §2.4). */
export const BACKCHANNEL_LOGOUT_EVENT = 'http://schemas.openid.net/event/backchannel-logout';

/** What a logout token says, and how it is signed: each field changes the default. */
export interface LogoutTokenDraft {
  /** Default: the person's `sub`; null leaves it out. */
  sub?: string | null;
  /** Default: the latest session's `sid`; null leaves it out. */
  sid?: string | null;
  /** Claims added or replaced (undefined values are removed). */
  claims?: Record<string, unknown>;
  header?: Record<string, unknown>;
  key?: TestSigningKey;
}

interface IssuedCode {
  clientId: string;
  redirectUri: string;
  codeChallenge: string;
  nonce: string | undefined;
  person: Record<string, unknown>;
  sid: string;
  used: boolean;
}

export interface FakeProviderOptions {
  clientId: string;
  clientSecret: string;
  /** The provider's clock, ms (the API's, so that the tokens' times agree with it). */
  now: () => number;
}

export class FakeOidcProvider {
  readonly clientId: string;
  readonly clientSecret: string;
  /** The person who logs in at the authorization endpoint (their claims, `sub` included). */
  person: Record<string, unknown> = {
    sub: 'user-1',
    email: 'agent@veauche.fr',
    email_verified: true,
  };
  /** Claims the ID token leaves out (then found at the userinfo endpoint). */
  idTokenOmits: string[] = [];
  /** Adds `iss` to the redirect back (RFC 9207). */
  sendIssInRedirect = false;
  /** Puts the session's `sid` in the ID token. */
  sendSid = true;
  /** The `sid` of each login's session at the provider, oldest first. */
  readonly sessions: string[] = [];
  /** Keys in the JWKS document; `signingKey` signs. */
  published: TestSigningKey[];
  signingKey: TestSigningKey;
  readonly seen = {
    discovery: 0,
    jwks: 0,
    userinfo: 0,
    authorize: [] as URLSearchParams[],
    tokenAuth: [] as ('basic' | 'post' | 'private_key_jwt')[],
    /** The client assertions received, decoded (accepted or not). */
    assertions: [] as { header: Record<string, unknown>; claims: Record<string, unknown> }[],
    /** Why the last refused client assertion was refused. */
    assertionRefusal: undefined as string | undefined,
  };
  /**
   * The public keys registered for the client (as JWKs): a client assertion must be signed by
   * one (the one of its `kid` when it names one).
   */
  clientKeys: Record<string, unknown>[] = [];
  /** What the discovery document lists in `token_endpoint_auth_methods_supported`. */
  tokenEndpointAuthMethods: string[] = ['client_secret_basic', 'client_secret_post'];
  /** `aud` values a client assertion may carry; default the token endpoint and the issuer. */
  assertionAudiences: string[] | undefined;
  /** The `jti` of accepted client assertions: one use each (RFC 7523 §3 item 7). */
  readonly #assertionIds = new Set<string>();
  readonly #now: () => number;
  readonly #codes = new Map<string, IssuedCode>();
  readonly #accessTokens = new Map<string, Record<string, unknown>>();
  #tamper: ((draft: IdTokenDraft) => void) | undefined;
  #deny: string | undefined;
  #server: Server | undefined;
  #issuer = '';

  private constructor(options: FakeProviderOptions, key: TestSigningKey) {
    this.clientId = options.clientId;
    this.clientSecret = options.clientSecret;
    this.#now = options.now;
    this.published = [key];
    this.signingKey = key;
  }

  static async start(options: FakeProviderOptions): Promise<FakeOidcProvider> {
    const provider = new FakeOidcProvider(options, newSigningKey('RS256', 'key-1'));
    const server = createServer((request, response) => {
      provider.#handle(request, response).catch((error: unknown) => {
        response.statusCode = 500;
        response.end(String(error));
      });
    });
    await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
    provider.#server = server;
    provider.#issuer = `http://127.0.0.1:${(server.address() as AddressInfo).port}/realms/galet`;
    return provider;
  }

  get issuer(): string {
    return this.#issuer;
  }

  /** The next ID token goes through `change` first. */
  tamperNext(change: (draft: IdTokenDraft) => void): void {
    this.#tamper = change;
  }

  /** The next authorization answers with this error instead of a code. */
  denyNext(error: string): void {
    this.#deny = error;
  }

  /**
   * A logout token as the provider POSTs it (`logout_token`): `iss`, `aud`, `iat`, `exp` two
   * minutes on, a fresh `jti`, the back-channel logout event, the person's `sub` and the latest
   * session's `sid`, typed `logout+jwt`, signed with the signing key.
   */
  logoutToken(draft: LogoutTokenDraft = {}): string {
    const nowSeconds = Math.floor(this.#now() / 1000);
    const sub = draft.sub === undefined ? this.person['sub'] : draft.sub;
    const sid = draft.sid === undefined ? this.sessions.at(-1) : draft.sid;
    const claims: Record<string, unknown> = {
      iss: this.#issuer,
      aud: this.clientId,
      iat: nowSeconds,
      exp: nowSeconds + 120,
      jti: randomBytes(12).toString('base64url'),
      events: { [BACKCHANNEL_LOGOUT_EVENT]: {} },
      ...(sub === null || sub === undefined ? {} : { sub }),
      ...(sid === null || sid === undefined ? {} : { sid }),
    };
    for (const [name, value] of Object.entries(draft.claims ?? {})) {
      if (value === undefined) delete claims[name];
      else claims[name] = value;
    }
    return signJwt(claims, draft.key ?? this.signingKey, { typ: 'logout+jwt', ...draft.header });
  }

  /** A new signing key, published beside the old one (or instead of it). */
  rotateKey(key: TestSigningKey, { keepOld = false } = {}): void {
    this.published = keepOld ? [...this.published, key] : [key];
    this.signingKey = key;
  }

  async close(): Promise<void> {
    const server = this.#server;
    if (server === undefined) return;
    this.#server = undefined;
    await closeHttpServer(server);
  }

  async #handle(request: IncomingMessage, response: ServerResponse): Promise<void> {
    const url = new URL(request.url ?? '/', this.#issuer);
    const path = url.pathname.replace('/realms/galet', '');
    if (request.method === 'GET' && path === '/.well-known/openid-configuration') {
      this.seen.discovery += 1;
      return json(response, 200, {
        issuer: this.#issuer,
        authorization_endpoint: `${this.#issuer}/protocol/openid-connect/auth`,
        token_endpoint: `${this.#issuer}/protocol/openid-connect/token`,
        jwks_uri: `${this.#issuer}/protocol/openid-connect/certs`,
        userinfo_endpoint: `${this.#issuer}/protocol/openid-connect/userinfo`,
        response_types_supported: ['code'],
        code_challenge_methods_supported: ['S256'],
        id_token_signing_alg_values_supported: ['RS256', 'ES256'],
        token_endpoint_auth_methods_supported: this.tokenEndpointAuthMethods,
        token_endpoint_auth_signing_alg_values_supported: ['RS256', 'ES256'],
      });
    }
    if (request.method === 'GET' && path === '/protocol/openid-connect/certs') {
      this.seen.jwks += 1;
      return json(response, 200, { keys: this.published.map((key) => key.publicJwk) });
    }
    if (request.method === 'GET' && path === '/protocol/openid-connect/auth') {
      return this.#authorize(url.searchParams, response);
    }
    if (request.method === 'POST' && path === '/protocol/openid-connect/token') {
      return this.#token(request, response);
    }
    if (request.method === 'GET' && path === '/protocol/openid-connect/userinfo') {
      this.seen.userinfo += 1;
      const token = /^Bearer (.+)$/.exec(request.headers.authorization ?? '')?.[1];
      const claims = token === undefined ? undefined : this.#accessTokens.get(token);
      if (claims === undefined) return json(response, 401, { error: 'invalid_token' });
      return json(response, 200, claims);
    }
    json(response, 404, { error: 'not_found' });
  }

  #authorize(query: URLSearchParams, response: ServerResponse): void {
    this.seen.authorize.push(query);
    const redirectUri = query.get('redirect_uri') ?? '';
    if (query.get('client_id') !== this.clientId || query.get('response_type') !== 'code') {
      json(response, 400, { error: 'invalid_request' });
      return;
    }
    const back = new URL(redirectUri);
    const state = query.get('state');
    if (state !== null) back.searchParams.set('state', state);
    if (this.sendIssInRedirect) back.searchParams.set('iss', this.#issuer);
    if (this.#deny !== undefined) {
      back.searchParams.set('error', this.#deny);
      this.#deny = undefined;
    } else {
      const code = randomBytes(16).toString('base64url');
      this.#codes.set(code, {
        clientId: this.clientId,
        redirectUri,
        codeChallenge:
          query.get('code_challenge_method') === 'S256' ? (query.get('code_challenge') ?? '') : '',
        nonce: query.get('nonce') ?? undefined,
        person: { ...this.person },
        sid: randomBytes(9).toString('base64url'),
        used: false,
      });
      back.searchParams.set('code', code);
    }
    response.writeHead(302, { location: back.href });
    response.end();
  }

  async #token(request: IncomingMessage, response: ServerResponse): Promise<void> {
    const chunks: Buffer[] = [];
    for await (const chunk of request) chunks.push(chunk as Buffer);
    const form = new URLSearchParams(Buffer.concat(chunks).toString('utf8'));
    let clientId: string | null;
    let secret: string | null;
    const basic = /^Basic (.+)$/.exec(request.headers.authorization ?? '')?.[1];
    if (form.has('client_assertion') || form.has('client_assertion_type')) {
      this.seen.tokenAuth.push('private_key_jwt');
      const refusal = basic === undefined ? this.#assertionRefusal(form) : 'two methods at once';
      this.seen.assertionRefusal = refusal;
      if (refusal !== undefined) {
        return json(response, 401, { error: 'invalid_client', error_description: refusal });
      }
      clientId = this.clientId;
      secret = this.clientSecret;
    } else if (basic !== undefined) {
      const [id, pass] = Buffer.from(basic, 'base64').toString('utf8').split(':');
      clientId = decodeURIComponent((id ?? '').replace(/\+/g, ' '));
      secret = decodeURIComponent((pass ?? '').replace(/\+/g, ' '));
      this.seen.tokenAuth.push('basic');
    } else {
      clientId = form.get('client_id');
      secret = form.get('client_secret');
      this.seen.tokenAuth.push('post');
    }
    if (clientId !== this.clientId || secret === null || !sameSecret(secret, this.clientSecret)) {
      return json(response, 401, { error: 'invalid_client' });
    }
    const issued = this.#codes.get(form.get('code') ?? '');
    if (
      form.get('grant_type') !== 'authorization_code' ||
      issued === undefined ||
      issued.used ||
      issued.redirectUri !== form.get('redirect_uri')
    ) {
      return json(response, 400, { error: 'invalid_grant' });
    }
    issued.used = true;
    const verifier = form.get('code_verifier') ?? '';
    const challenge = createHash('sha256').update(verifier).digest('base64url');
    if (issued.codeChallenge === '' || challenge !== issued.codeChallenge) {
      return json(response, 400, { error: 'invalid_grant', error_description: 'PKCE' });
    }
    const nowSeconds = Math.floor(this.#now() / 1000);
    const claims: Record<string, unknown> = {
      iss: this.#issuer,
      aud: this.clientId,
      azp: this.clientId,
      exp: nowSeconds + 300,
      iat: nowSeconds,
      auth_time: nowSeconds,
      amr: ['pwd', 'otp'],
      ...(issued.nonce === undefined ? {} : { nonce: issued.nonce }),
      ...(this.sendSid ? { sid: issued.sid } : {}),
      ...issued.person,
    };
    this.sessions.push(issued.sid);
    for (const name of this.idTokenOmits) delete claims[name];
    const draft: IdTokenDraft = { claims, header: {}, key: this.signingKey };
    this.#tamper?.(draft);
    this.#tamper = undefined;
    const accessToken = randomBytes(16).toString('base64url');
    this.#accessTokens.set(accessToken, { ...issued.person });
    json(response, 200, {
      access_token: accessToken,
      token_type: 'Bearer',
      expires_in: 300,
      id_token: signJwt(draft.claims, draft.key, draft.header),
    });
  }

  /**
   * Why a `private_key_jwt` client assertion is refused, or undefined when it is good: the
   * assertion type, a JWS signed by a registered key (RS256 or ES256), `iss` = `sub` = the
   * client (and `client_id`, when sent), an `aud` naming this provider, `exp` not passed and
   * at most 10 minutes on, a `jti` not seen before.
   */
  #assertionRefusal(form: URLSearchParams): string | undefined {
    if (
      form.get('client_assertion_type') !== 'urn:ietf:params:oauth:client-assertion-type:jwt-bearer'
    ) {
      return 'client_assertion_type';
    }
    const parts = (form.get('client_assertion') ?? '').split('.');
    if (parts.length !== 3) return 'not a JWS';
    let header: Record<string, unknown>;
    let claims: Record<string, unknown>;
    try {
      header = JSON.parse(Buffer.from(parts[0] as string, 'base64url').toString('utf8'));
      claims = JSON.parse(Buffer.from(parts[1] as string, 'base64url').toString('utf8'));
    } catch {
      return 'not JSON';
    }
    this.seen.assertions.push({ header, claims });
    const alg = header['alg'];
    if (alg !== 'RS256' && alg !== 'ES256') return `algorithm ${String(alg)}`;
    const candidates = this.clientKeys.filter(
      (jwk) => header['kid'] === undefined || jwk['kid'] === header['kid'],
    );
    const input = Buffer.from(`${parts[0]}.${parts[1]}`, 'ascii');
    const signature = Buffer.from(parts[2] as string, 'base64url');
    const signed = candidates.some((jwk) => {
      const key = createPublicKey({ key: jwk as never, format: 'jwk' });
      const kty = alg === 'RS256' ? 'rsa' : 'ec';
      if (key.asymmetricKeyType !== kty) return false;
      return alg === 'RS256'
        ? verify('sha256', input, key, signature)
        : verify('sha256', input, { key, dsaEncoding: 'ieee-p1363' }, signature);
    });
    if (!signed) return 'signature';
    if (claims['iss'] !== this.clientId || claims['sub'] !== this.clientId) return 'iss/sub';
    const clientId = form.get('client_id');
    if (clientId !== null && clientId !== this.clientId) return 'client_id';
    const audiences = this.assertionAudiences ?? [
      `${this.#issuer}/protocol/openid-connect/token`,
      this.#issuer,
    ];
    const aud = Array.isArray(claims['aud']) ? claims['aud'] : [claims['aud']];
    if (!aud.some((value) => audiences.includes(value as string))) return 'aud';
    const nowSeconds = this.#now() / 1000;
    const exp = claims['exp'];
    if (typeof exp !== 'number' || exp <= nowSeconds || exp > nowSeconds + 600) return 'exp';
    const jti = claims['jti'];
    if (typeof jti !== 'string' || jti === '') return 'jti';
    if (this.#assertionIds.has(jti)) return 'jti replayed';
    this.#assertionIds.add(jti);
    return undefined;
  }
}

function sameSecret(a: string, b: string): boolean {
  const left = createHash('sha256').update(a).digest();
  return timingSafeEqual(left, createHash('sha256').update(b).digest());
}

function json(response: ServerResponse, status: number, body: unknown): void {
  response.writeHead(status, { 'content-type': 'application/json' });
  response.end(JSON.stringify(body));
}
