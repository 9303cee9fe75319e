import { checkIssuerAndAudience } from './oidc-id-token.js';
import { OidcError } from './oidc-settings.js';

/**
 * The logout token of OpenID Connect Back-Channel Logout 1.0: a JWT the provider signs like an
 * ID token and POSTs to the relying party when a session ends there. Its claims are checked here
 * (§2.4, §2.6), once `OidcClient.verifyLogoutToken` has checked its signature with the
 * provider's keys. Pure: the clock and the settings come in.
 */

/** The member of `events` that makes a JWT a logout token (§2.4). */
export const BACKCHANNEL_LOGOUT_EVENT = 'http://schemas.openid.net/event/backchannel-logout';

/**
 * How old a logout token may be (its `iat`, beyond the clock skew). The specification leaves
 * the window to the relying party; a provider sends the token at once, so a few minutes is
 * plenty, and its `jti` needs remembering only that long.
 */
export const LOGOUT_TOKEN_MAX_AGE_MS = 5 * 60_000;

/** Longest `jti`, `sid` or `sub` accepted, characters. */
export const MAX_LOGOUT_CLAIM_LENGTH = 1024;

/** Why a back-channel logout was refused: the metric's label, the log's and the answer's. */
export type OidcLogoutFailureReason =
  | 'not-configured'
  | 'bad-request'
  | 'provider-unreachable'
  | 'provider-invalid'
  | 'malformed-token'
  | 'unsupported-algorithm'
  | 'unknown-key'
  | 'bad-signature'
  | 'not-a-logout-token'
  | 'wrong-issuer'
  | 'wrong-audience'
  | 'expired'
  | 'not-yet-valid'
  | 'too-old'
  | 'nonce-present'
  | 'no-subject'
  | 'replayed'
  | 'internal';

export const OIDC_LOGOUT_FAILURE_REASONS: readonly OidcLogoutFailureReason[] = [
  'not-configured',
  'bad-request',
  'provider-unreachable',
  'provider-invalid',
  'malformed-token',
  'unsupported-algorithm',
  'unknown-key',
  'bad-signature',
  'not-a-logout-token',
  'wrong-issuer',
  'wrong-audience',
  'expired',
  'not-yet-valid',
  'too-old',
  'nonce-present',
  'no-subject',
  'replayed',
  // Galet could not end the sessions (its database): the provider may send the token again.
  'internal',
];

/** A refused logout token. `message` never holds the token. */
export class OidcLogoutError extends Error {
  override readonly name = 'OidcLogoutError';
  constructor(
    readonly reason: OidcLogoutFailureReason,
    message: string,
    options?: { cause?: unknown },
  ) {
    super(message, options);
  }
}

/** The refusal of a logout token for an error of the checks it shares with ID tokens. */
export function logoutFailureOf(error: OidcError): OidcLogoutError {
  const reason = (OIDC_LOGOUT_FAILURE_REASONS as readonly string[]).includes(error.reason)
    ? (error.reason as OidcLogoutFailureReason)
    : 'malformed-token';
  return new OidcLogoutError(reason, error.message, { cause: error });
}

export interface LogoutTokenExpectations {
  issuer: string;
  clientId: string;
  nowMs: number;
  clockSkewMs: number;
  /** Default `LOGOUT_TOKEN_MAX_AGE_MS`. */
  maxAgeMs?: number;
}

/** What a valid logout token says. */
export interface LogoutRequest {
  /** Unique per token at its issuer: a second one is a replay. */
  jti: string;
  /** `sub`: the person at the provider. */
  subject: string | undefined;
  /** `sid`: the provider's session. At least one of `subject` and `sessionId` is set. */
  sessionId: string | undefined;
  /** Until when the token would be accepted: its `jti` must be remembered that long. */
  acceptedUntilMs: number;
}

/**
 * Checks the claims of a logout token whose signature is verified (§2.6): `iss` and `aud` as
 * for an ID token, `iat` not in the future nor older than the window, `exp` (when present; the
 * earlier drafts had none) not passed, `jti` present, `events` holding the back-channel logout
 * event (an object), no `nonce` (so that an ID token is never taken for a logout token, nor the
 * reverse), `sub` or `sid` or both. A `typ` header other than `logout+jwt` or `JWT` is refused
 * (§4.1, cross-JWT confusion).
 */
export function checkLogoutTokenClaims(
  header: { typ?: string | undefined },
  claims: Readonly<Record<string, unknown>>,
  expected: LogoutTokenExpectations,
): LogoutRequest {
  const typ = header.typ?.toLowerCase().replace(/^application\//, '');
  if (typ !== undefined && typ !== 'logout+jwt' && typ !== 'jwt') {
    throw new OidcLogoutError(
      'not-a-logout-token',
      `the token is typed ${JSON.stringify(header.typ)}, not logout+jwt`,
    );
  }
  try {
    checkIssuerAndAudience(claims, expected, 'logout token');
  } catch (error) {
    if (error instanceof OidcError) throw logoutFailureOf(error);
    throw error;
  }
  const events = claims['events'];
  const event =
    typeof events === 'object' && events !== null && !Array.isArray(events)
      ? (events as Record<string, unknown>)[BACKCHANNEL_LOGOUT_EVENT]
      : undefined;
  if (typeof event !== 'object' || event === null || Array.isArray(event)) {
    throw new OidcLogoutError(
      'not-a-logout-token',
      `the token's events claim does not hold ${BACKCHANNEL_LOGOUT_EVENT} (an object): not a logout token`,
    );
  }
  if (claims['nonce'] !== undefined) {
    throw new OidcLogoutError(
      'nonce-present',
      'the logout token has a nonce claim, which a logout token must not have',
    );
  }
  const { nowMs, clockSkewMs } = expected;
  const maxAgeMs = expected.maxAgeMs ?? LOGOUT_TOKEN_MAX_AGE_MS;
  const seconds = (name: string, required: boolean): number | undefined => {
    const value = claims[name];
    if (value === undefined && !required) return undefined;
    if (typeof value !== 'number' || !Number.isFinite(value)) {
      throw new OidcLogoutError(
        'malformed-token',
        `the logout token's ${name} is not a number of seconds`,
      );
    }
    return value * 1000;
  };
  const iat = seconds('iat', true) as number;
  const exp = seconds('exp', false);
  const nbf = seconds('nbf', false);
  for (const [name, at] of [
    ['iat', iat],
    ['nbf', nbf],
  ] as const) {
    if (at !== undefined && at > nowMs + clockSkewMs) {
      throw new OidcLogoutError(
        'not-yet-valid',
        `the logout token's ${name} ${new Date(at).toISOString()} is in the future (now ${new Date(nowMs).toISOString()}): are the clocks set?`,
      );
    }
  }
  const acceptedUntilMs = iat + maxAgeMs + clockSkewMs;
  if (acceptedUntilMs <= nowMs) {
    throw new OidcLogoutError(
      'too-old',
      `the logout token was issued at ${new Date(iat).toISOString()}, more than ${maxAgeMs / 1000} s ago`,
    );
  }
  if (exp !== undefined && exp <= nowMs - clockSkewMs) {
    throw new OidcLogoutError(
      'expired',
      `the logout token expired at ${new Date(exp).toISOString()} (now ${new Date(nowMs).toISOString()})`,
    );
  }
  const jti = claims['jti'];
  if (typeof jti !== 'string' || jti === '' || jti.length > MAX_LOGOUT_CLAIM_LENGTH) {
    throw new OidcLogoutError('malformed-token', 'the logout token has no usable jti claim');
  }
  const text = (name: 'sub' | 'sid'): string | undefined => {
    const value = claims[name];
    if (value === undefined) return undefined;
    if (typeof value !== 'string' || value === '' || value.length > MAX_LOGOUT_CLAIM_LENGTH) {
      throw new OidcLogoutError(
        'malformed-token',
        `the logout token's ${name} is not a string of 1 to ${MAX_LOGOUT_CLAIM_LENGTH} characters`,
      );
    }
    return value;
  };
  const subject = text('sub');
  const sessionId = text('sid');
  if (subject === undefined && sessionId === undefined) {
    throw new OidcLogoutError(
      'no-subject',
      'the logout token names neither a subject (sub) nor a session (sid)',
    );
  }
  return { jti, subject, sessionId, acceptedUntilMs };
}
