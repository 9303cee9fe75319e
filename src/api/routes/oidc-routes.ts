import { randomBytes } from 'node:crypto';
import type { FastifyInstance, FastifyReply, FastifyRequest } from 'fastify';
import { Counter, type Registry } from 'prom-client';
import { LoginLimiter } from '../../platform/login-limiter.js';
import { emailOf, OidcClient } from '../../platform/oidc-client.js';
import {
  type ClientAssertionKey,
  loadClientAssertionKey,
  sealingSecretOf,
} from '../../platform/oidc-client-assertion.js';
import { FinishedFlows, FlowSealer, newFlow, type OidcFlow } from '../../platform/oidc-flow.js';
import { sameText } from '../../platform/oidc-id-token.js';
import {
  MAX_LOGOUT_CLAIM_LENGTH,
  OIDC_LOGOUT_FAILURE_REASONS,
  OidcLogoutError,
} from '../../platform/oidc-logout-token.js';
import {
  OIDC_FAILURE_REASONS,
  OIDC_FAILURE_STATUS,
  OidcError,
  provisionedMemberships,
  provisioningClaimsOf,
  type ResolvedOidcSettings,
  resolveOidcSettings,
} from '../../platform/oidc-settings.js';
import { hashPassword } from '../../platform/passwords.js';
import { generateSessionToken } from '../../platform/tokens.js';
import { StorageError, type User } from '../../storage/index.js';
import { cookieValue, type PlatformContext, recordAudit } from '../auth.js';
import type { ApiOptions } from '../server.js';
import { setSessionCookie } from './auth-routes.js';
import { userView } from './users.js';

/**
 * OpenID Connect login for the console (authorization code flow with PKCE), public routes:
 *
 * - `GET /auth/oidc`: whether OIDC login is on, and the provider's name for the login page.
 * - `GET /auth/oidc/start`: 302 to the provider's authorization endpoint, with state, nonce and
 *   PKCE S256, all sealed in a short-lived HttpOnly, SameSite=Lax cookie (`oidc-flow.ts`).
 * - `GET /auth/oidc/callback`: checks the flow, exchanges the code, verifies the ID token
 *   (`oidc-client.ts`), finds the user by e-mail address (or creates one by the provisioning
 *   rules), opens the same console session as `POST /auth/login` and redirects to `/console/`.
 *
 * A browser gets redirects and, on failure, a small HTML page; a client that asks for JSON only
 * (`Accept: application/json`) gets 200 with `{authorizationUrl}` / the session, and errors as
 * `{error: "OIDC_LOGIN_FAILED", message, details: {reason}}`. Every failure is counted by reason
 * (`galet_oidc_login_failures_total{reason}`), logged in one line without code, token or state,
 * and, at the callback, audited as a failed `auth.login`. Failed callbacks are limited per IP
 * like failed password logins.
 *
 * An OIDC login does not ask for Galet's TOTP code: the identity provider authenticates the
 * person, second factor included (docs/OPERATOR-GUIDE.md, "OIDC login").
 *
 * - `POST /auth/oidc/backchannel-logout`: OpenID Connect Back-Channel Logout 1.0. The provider
 *   POSTs a signed logout token (form-encoded `logout_token`) when a session ends there; Galet
 *   verifies it (`OidcClient.verifyLogoutToken`), refuses a `jti` it accepted already (remembered
 *   in the database, so on every instance) and ends the console sessions opened from that
 *   provider session (`sid`) or of that person (`sub`): each OIDC login's session remembers both.
 *   200 with no body when done, else 400 `{error: "invalid_request", error_description,
 *   details: {reason}}` (§2.8), always `Cache-Control: no-store`. Counted
 *   (`galet_oidc_backchannel_logouts_total`, `..._failures_total{reason}`), logged and audited
 *   (`auth.logout`, `details.method: "oidc-backchannel"`).
 *
 * - `GET /auth/oidc/jwks.json`: with `private_key_jwt`, the public half of Galet's client key as
 *   a JWK Set, for the provider to fetch (Keycloak's "Use JWKS URL"); 404 otherwise.
 */

export const OIDC_FLOW_COOKIE = 'galet_oidc_flow';
const CALLBACK_PATH = '/api/v1/auth/oidc/callback';
/** Where the provider sends logout tokens: register `<public URL>` + this at the provider. */
export const BACKCHANNEL_LOGOUT_PATH = '/api/v1/auth/oidc/backchannel-logout';
/** Where the provider may fetch Galet's public client key (`private_key_jwt`). */
export const CLIENT_JWKS_PATH = '/api/v1/auth/oidc/jwks.json';
/** A logout token is 1-4 KB; the form holds nothing else. */
const LOGOUT_BODY_LIMIT = 65_536;
/** As `buildApi`'s default. */
const DEFAULT_SESSION_TTL_MS = 12 * 3_600_000;

type OidcRouteOptions = Pick<ApiOptions, 'oidc' | 'sessionTtlMs' | 'loginLimits' | 'metrics'>;

interface CallbackQuery {
  code?: string;
  state?: string;
  error?: string;
  iss?: string;
}

const OIDC_TAGS = ['auth'];
/** The error body (inline: Fastify compiles response schemas without the document's components). */
const ERROR_BODY = {
  type: 'object',
  required: ['error', 'message'],
  properties: {
    error: { type: 'string', description: 'OIDC_LOGIN_FAILED or OIDC_NOT_CONFIGURED' },
    message: { type: 'string' },
    details: {
      type: 'object',
      properties: { reason: { type: 'string', enum: OIDC_FAILURE_REASONS } },
    },
  },
} as const;

/** The OIDC routes (public: register them outside the authentication hook). */
export function registerOidcRoutes(
  api: FastifyInstance,
  platform: PlatformContext,
  options: OidcRouteOptions,
): void {
  const settings = options.oidc === undefined ? undefined : resolveOidcSettings(options.oidc);
  const nowMs = () => platform.now().getTime();
  const metrics = oidcMetrics(options.metrics);
  const logger = platform.logger;
  let login: OidcLogin | undefined;
  if (settings !== undefined) {
    const redirectPath = new URL(settings.redirectUrl).pathname;
    if (!redirectPath.endsWith(CALLBACK_PATH)) {
      throw new RangeError(
        `the OIDC redirect URL must lead to this API's callback, …${CALLBACK_PATH}; got ${settings.redirectUrl}`,
      );
    }
    // Read and checked at start: a bad key file stops the server, not the first login.
    const clientKey =
      settings.privateKeyFile === undefined
        ? undefined
        : loadClientAssertionKey({ ...settings, privateKeyFile: settings.privateKeyFile });
    login = {
      settings,
      client: new OidcClient({
        settings,
        now: nowMs,
        clientKey,
        warn: (message) => logger?.warn({ issuer: settings.issuer }, message),
      }),
      clientKey,
      sealer: new FlowSealer(
        clientKey === undefined ? settings.clientSecret : sealingSecretOf(clientKey),
        settings,
      ),
      finished: new FinishedFlows(),
      cookiePath: redirectPath,
      consoleUrl: `${redirectPath.slice(0, -CALLBACK_PATH.length)}/console/`,
      secureCookies: settings.redirectUrl.startsWith('https:'),
    };
    logger?.info(
      {
        issuer: settings.issuer,
        clientId: settings.clientId,
        redirectUrl: settings.redirectUrl,
        backchannelLogoutUrl: backchannelLogoutUrl(settings.redirectUrl),
        tokenEndpointAuth: settings.tokenEndpointAuth,
        ...(clientKey === undefined
          ? {}
          : {
              clientAssertionAlgorithm: clientKey.algorithm,
              ...(clientKey.keyId === undefined ? {} : { clientKeyId: clientKey.keyId }),
              jwksUrl: besideCallback(settings.redirectUrl, CLIENT_JWKS_PATH),
            }),
      },
      'OIDC login enabled: register the redirect URL at the identity provider',
    );
  }
  const limits = options.loginLimits ?? {};
  // Failed callbacks per IP only: there is no address to count by before the provider answers.
  const limiter = new LoginLimiter({
    now: nowMs,
    ...limits,
    maxFailures: limits.maxFailuresPerIp ?? 50,
  });
  const sessionTtlMs = options.sessionTtlMs ?? DEFAULT_SESSION_TTL_MS;
  // Refused logout tokens per IP: past the limit, refusals are no longer audited one by one.
  const logoutLimiter = new LoginLimiter({
    now: nowMs,
    ...limits,
    maxFailures: limits.maxFailuresPerIp ?? 50,
  });

  /** Counts, logs and answers a refusal (JSON or an HTML page); audits it when `audit` is set. */
  async function refuse(
    request: FastifyRequest,
    reply: FastifyReply,
    failure: OidcError,
    audit: { email?: string; userId?: string; tenantId?: string | null } | undefined,
  ): Promise<FastifyReply> {
    const { reason } = failure;
    metrics.failures.inc({ reason });
    if (audit !== undefined && reason !== 'provider-unreachable' && reason !== 'provider-invalid') {
      limiter.recordFailure('oidc', request.ip);
    }
    const line = {
      reason,
      ip: request.ip,
      ...(audit?.userId === undefined ? {} : { userId: audit.userId }),
    };
    // A probe of a server without OIDC is not worth a warning.
    if (reason === 'not-configured') logger?.debug(line, 'OIDC login refused: not configured');
    else logger?.warn(line, `OIDC login refused: ${failure.message}`);
    if (audit !== undefined) {
      await recordAudit(
        platform,
        request,
        {
          action: 'auth.login',
          objectType: 'user',
          objectId: audit.userId ?? null,
          tenantId: audit.tenantId ?? null,
          details: {
            method: 'oidc',
            reason,
            ...(audit.email === undefined ? {} : { email: audit.email }),
          },
        },
        'failure',
        { type: 'anonymous' },
      );
    }
    const status = OIDC_FAILURE_STATUS[reason];
    noStore(reply).status(status);
    if (wantsJson(request)) {
      return reply.send({
        error: reason === 'not-configured' ? 'OIDC_NOT_CONFIGURED' : 'OIDC_LOGIN_FAILED',
        message: failure.message,
        details: { reason },
      });
    }
    return reply
      .header('content-type', 'text/html; charset=utf-8')
      .header(
        'content-security-policy',
        "default-src 'none'; base-uri 'none'; form-action 'none'; frame-ancestors 'none'",
      )
      .header('x-content-type-options', 'nosniff')
      .send(errorPage(failure, login?.consoleUrl ?? '/console/'));
  }

  api.get(
    '/auth/oidc',
    {
      schema: {
        summary: 'Whether OIDC login is on, for the console login page',
        tags: OIDC_TAGS,
        response: {
          200: {
            type: 'object',
            required: ['enabled'],
            properties: {
              enabled: { type: 'boolean' },
              displayName: { type: 'string', description: 'For "Sign in with <displayName>"' },
              startUrl: { type: 'string', description: 'Where the sign-in link leads' },
            },
          },
        },
      },
    },
    async () =>
      login === undefined
        ? { enabled: false }
        : {
            enabled: true,
            displayName: login.settings.displayName,
            startUrl: '/api/v1/auth/oidc/start',
          },
  );

  api.get(
    '/auth/oidc/jwks.json',
    {
      schema: {
        summary: "Galet's public client key for private_key_jwt, as a JWK Set",
        description:
          'The key the identity provider checks client assertions with (register this URL, or the key, at the provider). 404 unless the token endpoint authentication is private_key_jwt.',
        tags: OIDC_TAGS,
        response: {
          200: {
            type: 'object',
            required: ['keys'],
            properties: {
              keys: { type: 'array', items: { type: 'object', additionalProperties: true } },
            },
          },
          404: ERROR_BODY,
        },
      },
    },
    async (_request, reply) => {
      const key = login?.clientKey;
      if (key === undefined) {
        return reply.status(404).send({
          error: 'OIDC_NOT_CONFIGURED',
          message: 'this server does not authenticate to an identity provider with a key',
        });
      }
      return reply
        .header('cache-control', 'public, max-age=300')
        .header('content-type', 'application/jwk-set+json; charset=utf-8')
        .send({ keys: [key.publicJwk] });
    },
  );

  api.get(
    '/auth/oidc/start',
    {
      schema: {
        summary: 'Start an OIDC login: redirect to the identity provider',
        description:
          'A browser gets 302 to the provider (authorization code flow, PKCE S256) and the flow cookie `galet_oidc_flow`; with `Accept: application/json` only, 200 with the URL and the same cookie.',
        tags: OIDC_TAGS,
        response: {
          200: {
            type: 'object',
            required: ['authorizationUrl', 'expiresAt'],
            properties: {
              authorizationUrl: { type: 'string' },
              expiresAt: { type: 'string', description: 'The login must finish by then' },
            },
          },
          404: ERROR_BODY,
          502: ERROR_BODY,
        },
      },
    },
    async (request, reply) => {
      if (login === undefined) return refuse(request, reply, notConfigured(), undefined);
      const flow = newFlow(nowMs(), login.settings.flowTtlMs);
      let authorizationUrl: string;
      try {
        authorizationUrl = await login.client.authorizationUrl(flow);
      } catch (error) {
        if (error instanceof OidcError) return refuse(request, reply, error, undefined);
        throw error;
      }
      metrics.started.inc();
      noStore(reply).header('set-cookie', flowCookie(login, flow));
      if (wantsJson(request)) {
        return reply.send({
          authorizationUrl,
          expiresAt: new Date(flow.expiresAtMs).toISOString(),
        });
      }
      return reply.redirect(authorizationUrl, 302);
    },
  );

  api.get<{ Querystring: CallbackQuery }>(
    '/auth/oidc/callback',
    {
      schema: {
        summary: 'Finish an OIDC login: the identity provider redirects here',
        description:
          'Checks the flow cookie and state, exchanges the code, verifies the ID token, opens a console session (`galet_session` cookie) and redirects a browser to `/console/`; with `Accept: application/json` only, 200 with the session as `POST /auth/login` answers it.',
        tags: OIDC_TAGS,
        querystring: {
          type: 'object',
          properties: {
            code: { type: 'string', maxLength: 4096 },
            state: { type: 'string', maxLength: 512 },
            iss: { type: 'string', maxLength: 2048, description: 'RFC 9207' },
            error: { type: 'string', maxLength: 256 },
            error_description: { type: 'string', maxLength: 2048 },
          },
        },
        response: {
          200: {
            type: 'object',
            required: ['token', 'expiresAt', 'user'],
            properties: {
              token: { type: 'string' },
              expiresAt: { type: 'string' },
              user: { type: 'object', additionalProperties: true },
            },
          },
          400: ERROR_BODY,
          401: ERROR_BODY,
          403: ERROR_BODY,
          404: ERROR_BODY,
          429: ERROR_BODY,
          502: ERROR_BODY,
        },
      },
      // A query the schema refuses is a failed login like any other (counted, audited, a page).
      errorHandler: (error, request, reply) => {
        if ((error as { validation?: unknown }).validation === undefined) throw error;
        return refuse(
          request,
          reply,
          new OidcError(
            'bad-request',
            'the provider sent this browser back with a malformed answer',
          ),
          {},
        );
      },
    },
    async (request, reply) => {
      const limit = limiter.check('oidc', request.ip);
      if (!limit.allowed) {
        const seconds = Math.ceil(limit.retryAfterMs / 1000);
        reply.header('retry-after', String(seconds));
        return refuse(
          request,
          reply,
          new OidcError('too-many-failures', `too many failed logins: try again in ${seconds} s`),
          undefined,
        );
      }
      if (login === undefined) return refuse(request, reply, notConfigured(), undefined);
      // The flow is over whatever happens next.
      reply.header('set-cookie', clearedFlowCookie(login));
      const audit: { email?: string; userId?: string; tenantId?: string | null } = {};
      try {
        const user = await finishLogin(login, request, audit);
        return await openSession(login, request, reply, user, audit);
      } catch (error) {
        if (error instanceof OidcError) return refuse(request, reply, error, audit);
        throw error;
      }
    },
  );

  /** Counts, logs, audits (unless `audit` is false) and answers a refused logout token (400). */
  async function refuseLogout(
    request: FastifyRequest,
    reply: FastifyReply,
    failure: OidcLogoutError,
    audit: boolean,
  ): Promise<FastifyReply> {
    const { reason } = failure;
    metrics.logoutFailures.inc({ reason });
    const line = { reason, ip: request.ip };
    if (reason === 'not-configured') {
      logger?.debug(line, `OIDC back-channel logout refused: ${failure.message}`);
    } else if (reason === 'internal') {
      logger?.error(
        { ...line, err: failure.cause },
        'OIDC back-channel logout failed: the sessions could not be ended',
      );
    } else {
      logger?.warn(line, `OIDC back-channel logout refused: ${failure.message}`);
    }
    if (audit) {
      await recordAudit(
        platform,
        request,
        {
          action: 'auth.logout',
          objectType: 'user',
          objectId: null,
          tenantId: null,
          details: { method: 'oidc-backchannel', reason },
        },
        'failure',
        { type: 'anonymous' },
      );
    }
    // §2.8: 400 for a logout that failed, whatever the cause; the body in OAuth 2.0's error form.
    return noStore(reply).status(400).send({
      error: 'invalid_request',
      error_description: failure.message,
      details: { reason },
    });
  }

  api.register(async (scope) => {
    // Form-encoded bodies (§2.5), on this route only: the login takes JSON alone (a form post
    // from another site must not reach it). Any other type is refused (415, then 400 below).
    scope.removeAllContentTypeParsers();
    scope.addContentTypeParser(
      'application/x-www-form-urlencoded',
      { parseAs: 'string', bodyLimit: LOGOUT_BODY_LIMIT },
      (_request, body, done) => {
        const form = new URLSearchParams(body as string);
        if (form.getAll('logout_token').length > 1) {
          done(new OidcLogoutError('bad-request', 'the form holds logout_token more than once'));
          return;
        }
        done(null, Object.fromEntries(form));
      },
    );
    scope.post<{ Body: { logout_token?: unknown } }>(
      '/auth/oidc/backchannel-logout',
      {
        bodyLimit: LOGOUT_BODY_LIMIT,
        schema: {
          summary: 'OIDC back-channel logout: the identity provider ends console sessions',
          description:
            'OpenID Connect Back-Channel Logout 1.0: a form-encoded `logout_token` signed by the provider; ends the console sessions opened from its `sid`, or every OIDC session of its `sub`. 200 with no body, or 400.',
          tags: OIDC_TAGS,
          body: {
            content: {
              'application/x-www-form-urlencoded': {
                schema: {
                  type: 'object',
                  required: ['logout_token'],
                  properties: { logout_token: { type: 'string', minLength: 1 } },
                },
              },
            },
          },
          response: {
            200: { type: 'null', description: 'The sessions are ended (or there were none)' },
            400: LOGOUT_ERROR_BODY,
          },
        },
        // Whatever refuses the request before the handler (type, size, form) is a 400 too.
        errorHandler: (error, request, reply) => {
          const failure =
            error instanceof OidcLogoutError
              ? error
              : new OidcLogoutError(
                  'bad-request',
                  `send logout_token form-encoded (application/x-www-form-urlencoded): ${error.message}`,
                );
          const limited = !logoutLimiter.check('oidc-logout', request.ip).allowed;
          if (!limited) logoutLimiter.recordFailure('oidc-logout', request.ip);
          return refuseLogout(request, reply, failure, !limited);
        },
      },
      async (request, reply) => {
        if (login === undefined) {
          return refuseLogout(request, reply, notConfiguredLogout(), false);
        }
        const limited = !logoutLimiter.check('oidc-logout', request.ip).allowed;
        try {
          return await backchannelLogout(login, request, reply);
        } catch (error) {
          const failure =
            error instanceof OidcLogoutError
              ? error
              : new OidcLogoutError('internal', 'Galet could not end the sessions: try again', {
                  cause: error,
                });
          if (failure.reason !== 'internal' && !limited) {
            logoutLimiter.recordFailure('oidc-logout', request.ip);
          }
          return refuseLogout(request, reply, failure, !limited);
        }
      },
    );
  });

  /** A verified, new logout token: its sessions end, each user's logout is audited. */
  async function backchannelLogout(
    login: OidcLogin,
    request: FastifyRequest<{ Body: { logout_token?: unknown } }>,
    reply: FastifyReply,
  ): Promise<FastifyReply> {
    const token = request.body?.logout_token;
    if (typeof token !== 'string' || token === '') {
      throw new OidcLogoutError('bad-request', 'the form holds no logout_token');
    }
    const logout = await login.client.verifyLogoutToken(token);
    const { storage } = platform;
    const result = await storage.consoleSessions.endOidcSessions({
      issuer: login.settings.issuer,
      jti: logout.jti,
      rememberUntil: new Date(logout.acceptedUntilMs).toISOString(),
      ...(logout.subject === undefined ? {} : { subject: logout.subject }),
      ...(logout.sessionId === undefined ? {} : { sessionId: logout.sessionId }),
    });
    if (result.replayed) {
      throw new OidcLogoutError('replayed', 'this logout token was received already (same jti)');
    }
    const sessionsEnded = result.ended.reduce((sum, user) => sum + user.sessions, 0);
    metrics.logouts.inc();
    metrics.sessionsEnded.inc(sessionsEnded);
    const details = {
      method: 'oidc-backchannel',
      // What the token named: the provider's session (its sid is not recorded), the person, both.
      by: logout.sessionId === undefined ? 'sub' : logout.subject === undefined ? 'sid' : 'sid+sub',
      ...(logout.subject === undefined ? {} : { subject: logout.subject }),
      jti: logout.jti,
    };
    for (const { userId, sessions } of result.ended) {
      const memberships = await storage.memberships.listForUser(userId);
      const tenantId = memberships.length === 1 ? memberships[0]!.tenantId : null;
      await recordAudit(
        platform,
        request,
        {
          action: 'auth.logout',
          objectType: 'user',
          objectId: userId,
          tenantId,
          details: { ...details, sessionsEnded: sessions },
        },
        'success',
        // The person's logout, relayed by their provider (as their OIDC login is theirs).
        { type: 'user', id: userId, tenantId },
      );
    }
    if (result.ended.length === 0) {
      // Nothing to end (a login elsewhere, or ended already): recorded for whoever wonders why.
      await recordAudit(
        platform,
        request,
        {
          action: 'auth.logout',
          objectType: 'user',
          objectId: null,
          tenantId: null,
          details: { ...details, sessionsEnded: 0 },
        },
        'success',
        { type: 'anonymous' },
      );
    }
    logger?.info(
      { ip: request.ip, by: details.by, users: result.ended.length, sessionsEnded },
      'OIDC back-channel logout: console sessions ended',
    );
    return noStore(reply).status(200).send();
  }

  /** The checks of the callback up to a known, enabled user. Fills `audit` as it learns. */
  async function finishLogin(
    login: OidcLogin,
    request: FastifyRequest<{ Querystring: CallbackQuery }>,
    audit: { email?: string; userId?: string; tenantId?: string | null },
  ): Promise<{ user: User; claims: Claims }> {
    const { settings } = login;
    const query = request.query;
    const flow = login.sealer.open(cookieValue(request.headers.cookie, OIDC_FLOW_COOKIE));
    if (flow === undefined) {
      throw new OidcError(
        'flow-missing',
        'this browser has no login under way (its sign-in cookie is missing or unreadable): start again',
      );
    }
    const now = nowMs();
    if (flow.expiresAtMs <= now) {
      throw new OidcError(
        'flow-expired',
        `the login took longer than ${Math.round(settings.flowTtlMs / 1000)} s at the identity provider: start again`,
      );
    }
    if (typeof query.state !== 'string' || !sameText(query.state, flow.state)) {
      throw new OidcError(
        'state-mismatch',
        'the answer of the identity provider is not for the login this browser started (state mismatch): start again',
      );
    }
    // RFC 9207: an answer that names its issuer names ours (mix-up attacks).
    if (query.iss !== undefined && query.iss !== settings.issuer) {
      throw new OidcError(
        'wrong-issuer',
        `the answer names another issuer than ${settings.issuer} (a mix-up between providers?)`,
      );
    }
    if (!login.finished.finish(flow, now)) {
      throw new OidcError('state-reused', 'this login was finished already: start again');
    }
    if (query.error !== undefined) {
      const code = /^[\x20-\x7e]{1,64}$/.test(query.error) ? query.error : 'unknown';
      throw new OidcError('provider-error', `the identity provider refused the login (${code})`);
    }
    if (typeof query.code !== 'string' || query.code === '') {
      throw new OidcError('bad-request', 'the identity provider sent no authorization code');
    }
    const wanted = [
      settings.emailClaim,
      ...(settings.requireVerifiedEmail ? ['email_verified'] : []),
      ...provisioningClaimsOf(settings.provisioning),
    ];
    const claims = await login.client.login(query.code, flow, wanted);
    const email = emailOf(claims, settings);
    audit.email = email;
    const user =
      (await platform.storage.users.getByEmail(email)) ??
      (await provision(login, request, email, claims));
    audit.userId = user.id;
    const memberships = await platform.storage.memberships.listForUser(user.id);
    audit.tenantId = memberships.length === 1 ? memberships[0]!.tenantId : null;
    if (user.disabled) throw new OidcError('user-disabled', 'this Galet account is disabled');
    return { user, claims };
  }

  /**
   * A user for an address Galet does not know, when the provisioning rules give them a role
   * somewhere; else `unknown-user`. The password is random and never shown: the account logs
   * in through the provider until an administrator sets one.
   */
  async function provision(
    login: OidcLogin,
    request: FastifyRequest,
    email: string,
    claims: Claims,
  ): Promise<User> {
    const { storage } = platform;
    const memberships = provisionedMemberships(login.settings.provisioning, claims);
    if (memberships.length === 0) {
      throw new OidcError(
        'unknown-user',
        'no Galet account has the e-mail address the identity provider gave: ask an administrator to create one',
      );
    }
    for (const { tenantId } of memberships) {
      if ((await storage.tenants.get(tenantId)) === undefined) {
        throw new OidcError(
          'provisioning-failed',
          `the OIDC provisioning rules name tenant ${tenantId}, which does not exist: tell the operator`,
        );
      }
    }
    let user: User;
    try {
      user = await storage.users.create({
        email,
        passwordHash: await hashPassword(randomBytes(32).toString('base64url')),
      });
    } catch (error) {
      // Created meanwhile by a login in another tab: that one provisioned it.
      if (error instanceof StorageError && error.code === 'ALREADY_EXISTS') {
        const existing = await storage.users.getByEmail(email);
        if (existing !== undefined) return existing;
      }
      throw error;
    }
    try {
      for (const membership of memberships) {
        await storage.memberships.set({ userId: user.id, ...membership });
      }
    } catch (error) {
      await storage.users.delete(user.id);
      throw new OidcError(
        'provisioning-failed',
        `the new account could not be given its roles: ${(error as Error).message}`,
        { cause: error },
      );
    }
    metrics.provisioned.inc();
    for (const membership of memberships) {
      await recordAudit(
        platform,
        request,
        {
          action: 'user.create',
          objectType: 'user',
          objectId: user.id,
          tenantId: membership.tenantId,
          details: { email, role: membership.role, via: 'oidc-provisioning' },
        },
        'success',
        { type: 'system' },
      );
    }
    return user;
  }

  /** The console session of a password login, and its cookie; audited. */
  async function openSession(
    login: OidcLogin,
    request: FastifyRequest,
    reply: FastifyReply,
    { user, claims }: { user: User; claims: Claims },
    audit: { email?: string; tenantId?: string | null },
  ): Promise<FastifyReply> {
    const { storage } = platform;
    const now = platform.now();
    const session = generateSessionToken();
    const expiresAt = new Date(now.getTime() + sessionTtlMs).toISOString();
    await storage.consoleSessions.create({
      idHash: session.idHash,
      userId: user.id,
      expiresAt,
      oidc: sessionOrigin(login.settings.issuer, claims),
    });
    await storage.users.recordLogin(user.id, now.toISOString());
    limiter.recordSuccess('oidc', request.ip);
    metrics.logins.inc();
    await recordAudit(
      platform,
      request,
      {
        action: 'auth.login',
        objectType: 'user',
        objectId: user.id,
        tenantId: audit.tenantId ?? null,
        details: { method: 'oidc', email: audit.email, ...authenticationMethods(claims) },
      },
      'success',
      { type: 'user', id: user.id, tenantId: audit.tenantId ?? null },
    );
    // The cleared flow cookie is set already: Fastify adds this one beside it.
    setSessionCookie(request, noStore(reply), session.token, sessionTtlMs, {
      alwaysSecure: login.secureCookies,
    });
    if (wantsJson(request)) {
      const memberships = await storage.memberships.listForUser(user.id);
      return reply.send({
        token: session.token,
        expiresAt,
        user: userView(
          { kind: 'user', userId: user.id, operatorAdmin: user.operatorAdmin, memberships: [] },
          user,
          memberships,
        ),
      });
    }
    return reply.redirect(login.consoleUrl, 302);
  }
}

type Claims = Record<string, unknown>;

interface OidcLogin {
  settings: ResolvedOidcSettings;
  client: OidcClient;
  /** With `private_key_jwt`: Galet's key. */
  clientKey: ClientAssertionKey | undefined;
  sealer: FlowSealer;
  finished: FinishedFlows;
  /** The redirect URL's path: the flow cookie goes there only. */
  cookiePath: string;
  /** Where a browser lands after the login. */
  consoleUrl: string;
  secureCookies: boolean;
}

function notConfigured(): OidcError {
  return new OidcError('not-configured', 'OIDC login is not configured on this server');
}

function notConfiguredLogout(): OidcLogoutError {
  return new OidcLogoutError('not-configured', 'OIDC login is not configured on this server');
}

/** The answer to a refused logout token (§2.8: OAuth 2.0's error form, and Galet's reason). */
const LOGOUT_ERROR_BODY = {
  type: 'object',
  required: ['error', 'error_description'],
  properties: {
    error: { type: 'string', enum: ['invalid_request'] },
    error_description: { type: 'string' },
    details: {
      type: 'object',
      properties: { reason: { type: 'string', enum: OIDC_LOGOUT_FAILURE_REASONS } },
    },
  },
} as const;

/** `<public URL>/api/v1/auth/oidc/backchannel-logout`, beside the redirect URL. */
export function backchannelLogoutUrl(redirectUrl: string): string {
  return besideCallback(redirectUrl, BACKCHANNEL_LOGOUT_PATH);
}

/** `<public URL>` + `path`, the public URL being the redirect URL's without the callback. */
function besideCallback(redirectUrl: string, path: string): string {
  const url = new URL(redirectUrl);
  url.pathname = `${url.pathname.slice(0, -CALLBACK_PATH.length)}${path}`;
  url.search = '';
  return url.href;
}

/**
 * Where a console session comes from, for the provider's back-channel logout: the issuer, the
 * ID token's `sub` and `sid` (claims longer than a logout token may carry are not kept: no
 * logout token could name them).
 */
function sessionOrigin(
  issuer: string,
  claims: Claims,
): { issuer: string; subject: string; sessionId?: string } | undefined {
  const fits = (value: unknown): value is string =>
    typeof value === 'string' && value !== '' && value.length <= MAX_LOGOUT_CLAIM_LENGTH;
  const { sub, sid } = claims;
  if (!fits(sub)) return undefined;
  return { issuer, subject: sub, ...(fits(sid) ? { sessionId: sid } : {}) };
}

function flowCookie(login: OidcLogin, flow: OidcFlow): string {
  const maxAge = Math.floor(login.settings.flowTtlMs / 1000);
  // SameSite=Lax: the provider's redirect back is a top-level navigation from another site.
  return `${OIDC_FLOW_COOKIE}=${login.sealer.seal(flow)}; Path=${login.cookiePath}; HttpOnly; SameSite=Lax; Max-Age=${maxAge}${login.secureCookies ? '; Secure' : ''}`;
}

function clearedFlowCookie(login: OidcLogin): string {
  return `${OIDC_FLOW_COOKIE}=; Path=${login.cookiePath}; HttpOnly; SameSite=Lax; Max-Age=0${login.secureCookies ? '; Secure' : ''}`;
}

function noStore(reply: FastifyReply): FastifyReply {
  return reply.header('cache-control', 'no-store').header('referrer-policy', 'no-referrer');
}

/** A client that asks for JSON and not for a page (a script, not a browser's navigation). */
function wantsJson(request: FastifyRequest): boolean {
  const accept = request.headers.accept ?? '';
  return /\bapplication\/json\b/i.test(accept) && !/\btext\/html\b/i.test(accept);
}

/** How the provider authenticated the person (`amr`, `acr`), for the audit entry. */
function authenticationMethods(claims: Claims): Record<string, unknown> {
  const details: Record<string, unknown> = {};
  const amr = claims['amr'];
  if (
    Array.isArray(amr) &&
    amr.length <= 10 &&
    amr.every((m) => typeof m === 'string' && m.length <= 32)
  ) {
    details['amr'] = amr;
  }
  const acr = claims['acr'];
  if (typeof acr === 'string' && acr.length <= 100) details['acr'] = acr;
  return details;
}

function oidcMetrics(registry: Registry | undefined): {
  started: Counter;
  logins: Counter;
  provisioned: Counter;
  failures: Counter<'reason'>;
  logouts: Counter;
  sessionsEnded: Counter;
  logoutFailures: Counter<'reason'>;
} {
  const counter = <L extends string>(name: string, help: string, labelNames: L[] = []) =>
    (registry?.getSingleMetric(name) as Counter<L> | undefined) ??
    new Counter<L>({ name, help, labelNames, registers: registry === undefined ? [] : [registry] });
  return {
    started: counter(
      'galet_oidc_logins_started_total',
      'OIDC logins sent to the identity provider',
    ),
    logins: counter('galet_oidc_logins_total', 'OIDC logins that opened a console session'),
    provisioned: counter(
      'galet_oidc_users_provisioned_total',
      'users created at their first OIDC login by the provisioning rules',
    ),
    failures: counter(
      'galet_oidc_login_failures_total',
      'refused OIDC logins (start and callback), by reason',
      ['reason'],
    ),
    logouts: counter(
      'galet_oidc_backchannel_logouts_total',
      'logout tokens accepted from the identity provider (back-channel logout)',
    ),
    sessionsEnded: counter(
      'galet_oidc_backchannel_sessions_ended_total',
      'console sessions ended by back-channel logouts',
    ),
    logoutFailures: counter(
      'galet_oidc_backchannel_logout_failures_total',
      'refused back-channel logouts, by reason',
      ['reason'],
    ),
  };
}

const HTML_ESCAPES: Record<string, string> = {
  '&': '&amp;',
  '<': '&lt;',
  '>': '&gt;',
  '"': '&quot;',
  "'": '&#39;',
};

function escapeHtml(text: string): string {
  return text.replace(/[&<>"']/g, (c) => HTML_ESCAPES[c] as string);
}

/** The page a browser shows for a refused login: what went wrong, and the way back. */
function errorPage(failure: OidcError, consoleUrl: string): string {
  return `<!doctype html>
<html lang="en">
<head><meta charset="utf-8"><meta name="viewport" content="width=device-width"><title>Sign-in failed · Galet</title></head>
<body>
<h1>Sign-in failed</h1>
<p>${escapeHtml(failure.message)}</p>
<p>Reason: <code>${escapeHtml(failure.reason)}</code></p>
<p><a href="${escapeHtml(consoleUrl)}#/login">Back to the console's login page</a></p>
</body>
</html>
`;
}
