import {
  OIDC_CLIENT_ASSERTION_ALGORITHMS,
  type OidcClientAssertionAlgorithm,
} from './oidc-client-assertion.js';
import { TENANT_ROLES, type TenantRole } from './roles.js';

/**
 * OpenID Connect login for the console: the settings, their defaults and checks, the failure
 * reasons, and the auto-provisioning rules (a claim value gives a new user a tenant and a role).
 *
 * Pure: the provider client is `oidc-client.ts`, the flow cookie `oidc-flow.ts`, the ID token
 * checks `oidc-id-token.ts`, the routes `api/routes/oidc-routes.ts`.
 */

export type OidcTokenEndpointAuth =
  | 'client_secret_basic'
  | 'client_secret_post'
  | 'private_key_jwt';
export const OIDC_TOKEN_ENDPOINT_AUTHS: readonly OidcTokenEndpointAuth[] = [
  'client_secret_basic',
  'client_secret_post',
  'private_key_jwt',
];

/** The `aud` of a `private_key_jwt` assertion: the token endpoint's URL, or the issuer. */
export type OidcClientAssertionAudience = 'token-endpoint' | 'issuer';
export const OIDC_CLIENT_ASSERTION_AUDIENCES: readonly OidcClientAssertionAudience[] = [
  'token-endpoint',
  'issuer',
];

/** A user unknown to Galet whose `claim` holds `value` is created with `role` in `tenantId`. */
export interface OidcProvisioningRule {
  claim: string;
  value: string;
  tenantId: string;
  role: TenantRole;
}

export interface OidcSettings {
  /** The provider's issuer identifier, e.g. `https://sso.example.org/realms/galet`. */
  issuer: string;
  clientId: string;
  /**
   * From a file or GALET_OIDC_CLIENT_SECRET, never a flag; never logged. Required but with
   * `private_key_jwt`, which does not use it.
   */
  clientSecret?: string | undefined;
  /** Where the provider sends the browser back: `<public URL>/api/v1/auth/oidc/callback`. */
  redirectUrl: string;
  /** Default `openid email profile`; must hold `openid`. */
  scopes?: readonly string[] | undefined;
  /** The claim holding the user's e-mail address. Default `email`. */
  emailClaim?: string | undefined;
  /** Refuse an address unless `email_verified` is true. Default true. */
  requireVerifiedEmail?: boolean | undefined;
  /** How Galet authenticates at the token endpoint. Default `client_secret_basic`. */
  tokenEndpointAuth?: OidcTokenEndpointAuth | undefined;
  /** `private_key_jwt` only, and then required: a PEM file holding Galet's private key. */
  privateKeyFile?: string | undefined;
  /** `private_key_jwt`: the `kid` of the assertions' header and of the published JWK. */
  privateKeyId?: string | undefined;
  /** `private_key_jwt`: RS256 or ES256; default the key's (RSA: RS256, EC P-256: ES256). */
  clientAssertionAlgorithm?: OidcClientAssertionAlgorithm | undefined;
  /** `private_key_jwt`: the assertions' `aud`. Default `token-endpoint` (Core §9). */
  clientAssertionAudience?: OidcClientAssertionAudience | undefined;
  /** The provider's name on the console's login page ("Sign in with …"). Default `SSO`. */
  displayName?: string | undefined;
  /** Rules that create unknown users; none by default (only existing users log in). */
  provisioning?: readonly OidcProvisioningRule[] | undefined;
  /** Tolerated clock difference with the provider for `exp`, `iat`, `nbf`. Default 60 s. */
  clockSkewMs?: number | undefined;
  /** Time cap of each request to the provider. Default 5 s. */
  requestTimeoutMs?: number | undefined;
  /** How long a login may take at the provider (the flow cookie's life). Default 10 minutes. */
  flowTtlMs?: number | undefined;
  /** How long the discovery document and the keys are kept. Default 1 hour. */
  cacheTtlMs?: number | undefined;
  /** An unknown key id fetches the keys again at most this often. Default 10 s. */
  jwksMinRefreshMs?: number | undefined;
}

/** Optional settings that stay undefined when unset (no default). */
type WithoutDefault = 'privateKeyFile' | 'privateKeyId' | 'clientAssertionAlgorithm';

export type ResolvedOidcSettings = Required<{
  [K in Exclude<keyof OidcSettings, WithoutDefault>]: Exclude<OidcSettings[K], undefined>;
}> & { [K in WithoutDefault]: OidcSettings[K] };

export const OIDC_DEFAULTS = {
  scopes: ['openid', 'email', 'profile'],
  emailClaim: 'email',
  requireVerifiedEmail: true,
  tokenEndpointAuth: 'client_secret_basic',
  clientAssertionAudience: 'token-endpoint',
  displayName: 'SSO',
  provisioning: [],
  clockSkewMs: 60_000,
  requestTimeoutMs: 5000,
  flowTtlMs: 10 * 60_000,
  cacheTtlMs: 3_600_000,
  jwksMinRefreshMs: 10_000,
} as const satisfies Partial<ResolvedOidcSettings>;

/** Why an OIDC login failed: the metric's label, the audit entry's reason, the API's details. */
export type OidcFailureReason =
  | 'not-configured'
  | 'too-many-failures'
  | 'provider-error'
  | 'flow-missing'
  | 'flow-expired'
  | 'state-mismatch'
  | 'state-reused'
  | 'bad-request'
  | 'provider-unreachable'
  | 'provider-invalid'
  | 'token-refused'
  | 'malformed-token'
  | 'unsupported-algorithm'
  | 'unknown-key'
  | 'bad-signature'
  | 'wrong-issuer'
  | 'wrong-audience'
  | 'expired'
  | 'not-yet-valid'
  | 'nonce-mismatch'
  | 'userinfo-mismatch'
  | 'email-missing'
  | 'email-unverified'
  | 'unknown-user'
  | 'user-disabled'
  | 'provisioning-failed';

export const OIDC_FAILURE_REASONS: readonly OidcFailureReason[] = [
  'not-configured',
  'too-many-failures',
  'provider-error',
  'flow-missing',
  'flow-expired',
  'state-mismatch',
  'state-reused',
  'bad-request',
  'provider-unreachable',
  'provider-invalid',
  'token-refused',
  'malformed-token',
  'unsupported-algorithm',
  'unknown-key',
  'bad-signature',
  'wrong-issuer',
  'wrong-audience',
  'expired',
  'not-yet-valid',
  'nonce-mismatch',
  'userinfo-mismatch',
  'email-missing',
  'email-unverified',
  'unknown-user',
  'user-disabled',
  'provisioning-failed',
];

/** The HTTP status of each failure: the browser's flow (400), the token (401), the user (403). */
export const OIDC_FAILURE_STATUS: Readonly<Record<OidcFailureReason, number>> = {
  'not-configured': 404,
  'too-many-failures': 429,
  'provider-error': 401,
  'flow-missing': 400,
  'flow-expired': 400,
  'state-mismatch': 400,
  'state-reused': 400,
  'bad-request': 400,
  'provider-unreachable': 502,
  'provider-invalid': 502,
  'token-refused': 401,
  'malformed-token': 401,
  'unsupported-algorithm': 401,
  'unknown-key': 401,
  'bad-signature': 401,
  'wrong-issuer': 401,
  'wrong-audience': 401,
  expired: 401,
  'not-yet-valid': 401,
  'nonce-mismatch': 401,
  'userinfo-mismatch': 401,
  'email-missing': 403,
  'email-unverified': 403,
  'unknown-user': 403,
  'user-disabled': 403,
  'provisioning-failed': 403,
};

/**
 * A refused OIDC login. `message` is for the person in front of the browser and the log: it
 * never holds a token, a code, a state or the client secret.
 */
export class OidcError extends Error {
  override readonly name = 'OidcError';
  constructor(
    readonly reason: OidcFailureReason,
    message: string,
    options?: { cause?: unknown },
  ) {
    super(message, options);
  }
}

/** The settings with their defaults, checked; throws a RangeError naming the bad one. */
export function resolveOidcSettings(settings: OidcSettings): ResolvedOidcSettings {
  const issuer = checkedUrl(settings.issuer, 'the OIDC issuer');
  if (issuer.search !== '' || issuer.hash !== '') {
    throw new RangeError('the OIDC issuer must have no query or fragment (OpenID Discovery §2)');
  }
  const redirect = checkedUrl(settings.redirectUrl, 'the OIDC redirect URL');
  if (redirect.hash !== '') throw new RangeError('the OIDC redirect URL must have no fragment');
  if (typeof settings.clientId !== 'string' || settings.clientId.trim() === '') {
    throw new RangeError('the OIDC client id must be set');
  }
  const tokenEndpointAuth = settings.tokenEndpointAuth ?? OIDC_DEFAULTS.tokenEndpointAuth;
  if (!OIDC_TOKEN_ENDPOINT_AUTHS.includes(tokenEndpointAuth)) {
    throw new RangeError(
      `the OIDC token endpoint authentication must be ${OIDC_TOKEN_ENDPOINT_AUTHS.join(', ')}, got ${String(tokenEndpointAuth)}`,
    );
  }
  const keyed = tokenEndpointAuth === 'private_key_jwt';
  const clientSecret = settings.clientSecret ?? '';
  if (!keyed && (typeof clientSecret !== 'string' || clientSecret === '')) {
    throw new RangeError(
      'the OIDC client secret must be set (a file, or GALET_OIDC_CLIENT_SECRET), unless the token endpoint authentication is private_key_jwt',
    );
  }
  checkKeySettings(settings, keyed);
  const clientAssertionAudience =
    settings.clientAssertionAudience ?? OIDC_DEFAULTS.clientAssertionAudience;
  const scopes = settings.scopes ?? OIDC_DEFAULTS.scopes;
  if (!scopes.includes('openid')) {
    throw new RangeError(`the OIDC scopes must include openid, got "${scopes.join(' ')}"`);
  }
  for (const scope of scopes) {
    if (!/^[\x21\x23-\x5b\x5d-\x7e]+$/.test(scope)) {
      throw new RangeError(`the OIDC scope "${scope}" is not a valid scope token (RFC 6749 §3.3)`);
    }
  }
  const emailClaim = settings.emailClaim ?? OIDC_DEFAULTS.emailClaim;
  if (emailClaim === '') throw new RangeError('the OIDC e-mail claim must not be empty');
  const durations = {
    clockSkewMs: [settings.clockSkewMs ?? OIDC_DEFAULTS.clockSkewMs, 0, 600_000],
    requestTimeoutMs: [settings.requestTimeoutMs ?? OIDC_DEFAULTS.requestTimeoutMs, 100, 60_000],
    flowTtlMs: [settings.flowTtlMs ?? OIDC_DEFAULTS.flowTtlMs, 10_000, 3_600_000],
    cacheTtlMs: [settings.cacheTtlMs ?? OIDC_DEFAULTS.cacheTtlMs, 1000, 86_400_000],
    jwksMinRefreshMs: [settings.jwksMinRefreshMs ?? OIDC_DEFAULTS.jwksMinRefreshMs, 0, 3_600_000],
  } as const;
  for (const [name, [value, min, max]] of Object.entries(durations)) {
    if (!Number.isSafeInteger(value) || value < min || value > max) {
      throw new RangeError(`OIDC ${name} must be an integer from ${min} to ${max}, got ${value}`);
    }
  }
  const provisioning = settings.provisioning ?? [];
  for (const rule of provisioning) checkRule(rule);
  return {
    issuer: settings.issuer,
    clientId: settings.clientId,
    clientSecret,
    redirectUrl: redirect.href,
    scopes: [...scopes],
    emailClaim,
    requireVerifiedEmail: settings.requireVerifiedEmail ?? OIDC_DEFAULTS.requireVerifiedEmail,
    tokenEndpointAuth,
    privateKeyFile: keyed ? settings.privateKeyFile : undefined,
    privateKeyId: keyed ? settings.privateKeyId : undefined,
    clientAssertionAlgorithm: keyed ? settings.clientAssertionAlgorithm : undefined,
    clientAssertionAudience,
    displayName: settings.displayName ?? OIDC_DEFAULTS.displayName,
    provisioning: [...provisioning],
    clockSkewMs: durations.clockSkewMs[0],
    requestTimeoutMs: durations.requestTimeoutMs[0],
    flowTtlMs: durations.flowTtlMs[0],
    cacheTtlMs: durations.cacheTtlMs[0],
    jwksMinRefreshMs: durations.jwksMinRefreshMs[0],
  };
}

/**
 * The `private_key_jwt` settings: the key file with that method (the file itself is read at
 * start, `loadClientAssertionKey`), none of them with another (a sign of a mistake).
 */
function checkKeySettings(settings: OidcSettings, keyed: boolean): void {
  if (!keyed) {
    const stray = (
      [
        'privateKeyFile',
        'privateKeyId',
        'clientAssertionAlgorithm',
        'clientAssertionAudience',
      ] as const
    ).filter((name) => settings[name] !== undefined);
    if (stray.length > 0) {
      throw new RangeError(
        `the OIDC settings ${stray.join(', ')} need the token endpoint authentication private_key_jwt`,
      );
    }
    return;
  }
  if (typeof settings.privateKeyFile !== 'string' || settings.privateKeyFile === '') {
    throw new RangeError(
      'the OIDC token endpoint authentication private_key_jwt needs a private key file (PEM)',
    );
  }
  const keyId = settings.privateKeyId;
  if (keyId !== undefined && (typeof keyId !== 'string' || !/^[\x21-\x7e]{1,128}$/.test(keyId))) {
    throw new RangeError(
      'the OIDC private key id must be 1 to 128 printable ASCII characters without spaces',
    );
  }
  const algorithm = settings.clientAssertionAlgorithm;
  if (algorithm !== undefined && !OIDC_CLIENT_ASSERTION_ALGORITHMS.includes(algorithm)) {
    throw new RangeError(
      `the OIDC client assertion algorithm must be ${OIDC_CLIENT_ASSERTION_ALGORITHMS.join(' or ')}, got ${String(algorithm)}`,
    );
  }
  const audience = settings.clientAssertionAudience;
  if (audience !== undefined && !OIDC_CLIENT_ASSERTION_AUDIENCES.includes(audience)) {
    throw new RangeError(
      `the OIDC client assertion audience must be ${OIDC_CLIENT_ASSERTION_AUDIENCES.join(' or ')}, got ${String(audience)}`,
    );
  }
}

/**
 * An http(s) URL; plain http only to a loopback address (a provider on the same machine, a
 * test), since codes and tokens travel on it.
 */
export function checkedUrl(text: unknown, what: string): URL {
  let url: URL;
  try {
    url = new URL(String(text));
  } catch {
    throw new RangeError(`${what} must be a URL, got ${String(text)}`);
  }
  if (url.protocol === 'https:') return url;
  if (url.protocol === 'http:' && isLoopback(url.hostname)) return url;
  throw new RangeError(
    `${what} must be an https:// URL (http:// only to 127.0.0.1, ::1 or localhost), got ${url.protocol}//${url.host}`,
  );
}

function isLoopback(hostname: string): boolean {
  return (
    hostname === 'localhost' ||
    hostname === '[::1]' ||
    /^127\.\d{1,3}\.\d{1,3}\.\d{1,3}$/.test(hostname)
  );
}

function checkRule(rule: OidcProvisioningRule): void {
  if (typeof rule.claim !== 'string' || rule.claim === '') {
    throw new RangeError('an OIDC provisioning rule needs a claim');
  }
  if (typeof rule.value !== 'string' || rule.value === '') {
    throw new RangeError(`the OIDC provisioning rule on ${rule.claim} needs a value`);
  }
  if (typeof rule.tenantId !== 'string' || rule.tenantId === '') {
    throw new RangeError(`the OIDC provisioning rule ${rule.claim}=${rule.value} needs a tenant`);
  }
  if (!(TENANT_ROLES as readonly string[]).includes(rule.role)) {
    throw new RangeError(
      `the OIDC provisioning rule ${rule.claim}=${rule.value} has role "${rule.role}": one of ${TENANT_ROLES.join(', ')}`,
    );
  }
}

/**
 * Provisioning rules from their text form: `claim=value:tenantId:role`, separated by `;`
 * (e.g. `groups=galet-veauche:6f1c…:viewer; groups=noc:0b2e…:admin`). The tenant id and the
 * role are the last two `:` fields, so a value may hold `:` (a URN) and `,` (an LDAP DN).
 */
export function parseProvisioningRules(text: string): OidcProvisioningRule[] {
  const rules: OidcProvisioningRule[] = [];
  for (const part of text.split(';')) {
    const rule = part.trim();
    if (rule === '') continue;
    const equals = rule.indexOf('=');
    const fields = rule.slice(equals + 1).split(':');
    if (equals <= 0 || fields.length < 3) {
      throw new RangeError(
        `OIDC provisioning rule "${rule}": write claim=value:tenantId:role (e.g. groups=agents:<tenant id>:viewer)`,
      );
    }
    const role = (fields.pop() as string).trim();
    const tenantId = (fields.pop() as string).trim();
    const parsed = {
      claim: rule.slice(0, equals).trim(),
      value: fields.join(':').trim(),
      tenantId,
      role: role as TenantRole,
    };
    checkRule(parsed);
    rules.push(parsed);
  }
  return rules;
}

/**
 * The memberships a new user gets from their claims: one per tenant, from the first matching
 * rule for that tenant. A claim matches when it is the value, or a list holding it.
 */
export function provisionedMemberships(
  rules: readonly OidcProvisioningRule[],
  claims: Readonly<Record<string, unknown>>,
): { tenantId: string; role: TenantRole }[] {
  const memberships = new Map<string, TenantRole>();
  for (const rule of rules) {
    if (memberships.has(rule.tenantId)) continue;
    const claim = claims[rule.claim];
    const matches = Array.isArray(claim) ? claim.includes(rule.value) : claim === rule.value;
    if (matches) memberships.set(rule.tenantId, rule.role);
  }
  return [...memberships].map(([tenantId, role]) => ({ tenantId, role }));
}

/** The claims the provisioning rules read. */
export function provisioningClaimsOf(rules: readonly OidcProvisioningRule[]): string[] {
  return [...new Set(rules.map((rule) => rule.claim))];
}
