import type { FastifyInstance, FastifyReply, FastifyRequest } from 'fastify';
import type { LoginLimiter } from '../../platform/login-limiter.js';
import {
  hashPassword,
  needsRehash,
  PASSWORD_MAX_LENGTH,
  verifyDummyPassword,
  verifyPassword,
} from '../../platform/passwords.js';
import { generateSessionToken } from '../../platform/tokens.js';
import { generateTotpSecret, toBase32, totpUri, verifyTotp } from '../../platform/totp.js';
import type { User } from '../../storage/index.js';
import {
  audited,
  type PlatformContext,
  principalOf,
  recordAudit,
  SESSION_COOKIE,
} from '../auth.js';
import { ApiError, badRequest, conflict, notFound } from '../errors.js';
import { userView } from './users.js';

/**
 * Console login: `POST /auth/login` (public) gives a session token, also set as an HttpOnly
 * cookie; `POST /auth/logout` ends it; `GET /auth/me` says who the caller is; `/auth/totp/*`
 * enrol and remove the caller's TOTP second factor.
 *
 * Every login is audited, failed ones too (with the reason, never the password). Failed logins
 * are limited per (address, IP) and per IP (`LoginLimiter`): over the limit, 429 with
 * Retry-After, before any password is checked.
 */

export interface LoginOptions {
  limiter: LoginLimiter;
  /** How long a session lasts. */
  sessionTtlMs: number;
}

interface LoginBody {
  email: string;
  password: string;
  totp?: string;
}

const INVALID_LOGIN = 'invalid email or password';
/** The route options of a TOTP change confirmed by a code (`{code}`). */
const totpCodeRoute = {
  schema: {
    body: {
      type: 'object',
      required: ['code'],
      additionalProperties: false,
      properties: { code: { type: 'string', pattern: '^[0-9]{6}$' } },
    },
  },
} as const;

/** The public route: no credentials needed. */
export function registerLoginRoute(
  api: FastifyInstance,
  platform: PlatformContext,
  options: LoginOptions,
): void {
  const { storage } = platform;
  api.post<{ Body: LoginBody }>(
    '/auth/login',
    {
      schema: {
        body: {
          type: 'object',
          required: ['email', 'password'],
          additionalProperties: false,
          properties: {
            email: { type: 'string', minLength: 1, maxLength: 254 },
            password: { type: 'string', maxLength: PASSWORD_MAX_LENGTH * 4 },
            totp: { type: 'string', maxLength: 10 },
          },
        },
      },
    },
    async (request, reply) => {
      const { password, totp } = request.body;
      const email = request.body.email.trim().toLowerCase();
      const ip = request.ip;
      const limit = options.limiter.check(email, ip);
      if (!limit.allowed) {
        const seconds = Math.ceil(limit.retryAfterMs / 1000);
        return reply
          .status(429)
          .header('retry-after', String(seconds))
          .send({
            error: 'TOO_MANY_REQUESTS',
            message: `too many failed logins: try again in ${seconds} s`,
          });
      }
      const draft = { action: 'auth.login', objectType: 'user' };

      const fail = async (
        reason: string,
        userId: string | null,
        tenantId: string | null,
        answer = new ApiError(401, 'UNAUTHORIZED', INVALID_LOGIN),
      ): Promise<never> => {
        const lockedOut = options.limiter.recordFailure(email, ip);
        await recordAudit(
          platform,
          request,
          { ...draft, objectId: userId, tenantId, details: { email, reason, lockedOut } },
          'failure',
          { type: 'anonymous' },
        );
        throw answer;
      };

      const credentials = await storage.users.getCredentials(email);
      if (credentials === undefined) {
        await verifyDummyPassword(password);
        return fail('unknown-email', null, null);
      }
      const { user } = credentials;
      const memberships = await storage.memberships.listForUser(user.id);
      const tenantId = memberships.length === 1 ? memberships[0]!.tenantId : null;
      if (!(await verifyPassword(credentials.passwordHash, password))) {
        return fail('wrong-password', user.id, tenantId);
      }
      if (user.disabled) return fail('disabled', user.id, tenantId);
      if (credentials.totp !== null) {
        if (totp === undefined || totp === '') {
          return fail(
            'totp-required',
            user.id,
            tenantId,
            new ApiError(401, 'TOTP_REQUIRED', 'this account needs a TOTP code (totp)'),
          );
        }
        const check = verifyTotp(credentials.totp.secret, totp, {
          timeMs: platform.now().getTime(),
          lastUsedStep: credentials.totp.lastStep,
        });
        if (!check.valid) return fail(`totp-${check.reason}`, user.id, tenantId);
        // One code, one session: of two logins racing with the same code, one wins.
        if (!(await storage.users.useTotpStep(user.id, check.step))) {
          return fail('totp-replayed', user.id, tenantId);
        }
      }

      const now = platform.now();
      const session = generateSessionToken();
      const expiresAt = new Date(now.getTime() + options.sessionTtlMs).toISOString();
      await storage.consoleSessions.create({ idHash: session.idHash, userId: user.id, expiresAt });
      await storage.users.recordLogin(user.id, now.toISOString());
      if (needsRehash(credentials.passwordHash)) {
        await storage.users.update(user.id, { passwordHash: await hashPassword(password) });
      }
      options.limiter.recordSuccess(email, ip);
      await recordAudit(
        platform,
        request,
        { ...draft, objectId: user.id, tenantId, details: { email } },
        'success',
        { type: 'user', id: user.id, tenantId },
      );
      setSessionCookie(request, reply, session.token, options.sessionTtlMs);
      return {
        token: session.token,
        expiresAt,
        user: userView(
          {
            kind: 'user',
            userId: user.id,
            operatorAdmin: user.operatorAdmin,
            memberships: [],
          },
          user,
          memberships,
        ),
      };
    },
  );
}

/** The routes for a logged-in caller. */
export function registerAuthRoutes(api: FastifyInstance, platform: PlatformContext): void {
  const { storage } = platform;

  api.post('/auth/logout', async (request, reply) => {
    const principal = principalOf(request);
    await audited(
      platform,
      request,
      {
        action: 'auth.logout',
        objectType: 'user',
        objectId: principal.kind === 'user' ? principal.userId : null,
      },
      async () => {
        if (request.sessionIdHash !== null) {
          await storage.consoleSessions.delete(request.sessionIdHash);
        }
      },
    );
    clearSessionCookie(request, reply);
    return reply.status(204).send();
  });

  api.get('/auth/me', async (request) => {
    const principal = principalOf(request);
    switch (principal.kind) {
      case 'admin-token':
        return { kind: 'admin-token' };
      case 'api-key':
        return { kind: 'api-key', apiKey: await storage.apiKeys.get(principal.keyId) };
      case 'user': {
        const user = await existingUser(principal.userId);
        return {
          kind: 'user',
          user: userView(principal, user, await storage.memberships.listForUser(user.id)),
        };
      }
    }
  });

  /**
   * Runs `work` for the logged-in user (TOTP enrolment is for oneself, through a console
   * session), audited as `action` on that user.
   */
  function asSessionUser<T>(
    request: FastifyRequest,
    action: string,
    work: (userId: string) => Promise<T>,
  ): Promise<T> {
    const principal = principalOf(request);
    if (principal.kind !== 'user') {
      throw badRequest('TOTP enrolment is for a logged-in user (a console session)');
    }
    const { userId } = principal;
    return audited(platform, request, { action, objectType: 'user', objectId: userId }, () =>
      work(userId),
    );
  }

  async function existingUser(userId: string): Promise<User> {
    const user = await storage.users.get(userId);
    if (user === undefined) throw notFound(`user ${userId}`);
    return user;
  }

  api.post('/auth/totp/setup', async (request) =>
    asSessionUser(request, 'user.totp-setup', async (userId) => {
      const user = await existingUser(userId);
      if (user.totpEnabled)
        throw conflict('a TOTP second factor is enrolled already: remove it first');
      const secret = generateTotpSecret();
      await storage.users.setPendingTotp(userId, secret);
      // Shown once, here; confirmed by POST /auth/totp/enable with a code.
      return { secret: toBase32(secret), otpauthUri: totpUri(secret, user.email) };
    }),
  );

  api.post<{ Body: { code: string } }>(
    '/auth/totp/enable',
    totpCodeRoute,
    async (request, reply) => {
      await asSessionUser(request, 'user.totp-enable', async (userId) => {
        const secret = await storage.users.getPendingTotp(userId);
        if (secret === undefined)
          throw conflict('no TOTP enrolment under way: POST /auth/totp/setup first');
        const check = verifyTotp(secret, request.body.code, { timeMs: platform.now().getTime() });
        if (!check.valid) throw badRequest('wrong TOTP code');
        await storage.users.enableTotp(userId, secret, check.step);
      });
      return reply.status(204).send();
    },
  );

  api.post<{ Body: { code: string } }>(
    '/auth/totp/disable',
    totpCodeRoute,
    async (request, reply) => {
      await asSessionUser(request, 'user.totp-disable', async (userId) => {
        const user = await existingUser(userId);
        const credentials = await storage.users.getCredentials(user.email);
        if (credentials?.totp == null) throw conflict('no TOTP second factor is enrolled');
        const check = verifyTotp(credentials.totp.secret, request.body.code, {
          timeMs: platform.now().getTime(),
          lastUsedStep: credentials.totp.lastStep,
        });
        if (!check.valid || !(await storage.users.useTotpStep(userId, check.step))) {
          throw badRequest('wrong TOTP code');
        }
        await storage.users.disableTotp(userId);
      });
      return reply.status(204).send();
    },
  );
}

function cookieAttributes(
  request: FastifyRequest,
  maxAgeSeconds: number,
  alwaysSecure = false,
): string {
  // SameSite=Strict: a browser never sends it with a request another site started (CSRF).
  const secure = alwaysSecure || request.protocol === 'https' ? '; Secure' : '';
  return `Path=/api/v1; HttpOnly; SameSite=Strict; Max-Age=${maxAgeSeconds}${secure}`;
}

/**
 * The console session's cookie, as every login sets it. `alwaysSecure`: Secure even when the
 * request itself came over http (the OIDC login behind a TLS proxy, its redirect URL https).
 */
export function setSessionCookie(
  request: FastifyRequest,
  reply: FastifyReply,
  token: string,
  ttlMs: number,
  { alwaysSecure = false }: { alwaysSecure?: boolean } = {},
): void {
  reply.header(
    'set-cookie',
    `${SESSION_COOKIE}=${token}; ${cookieAttributes(request, Math.floor(ttlMs / 1000), alwaysSecure)}`,
  );
}

function clearSessionCookie(request: FastifyRequest, reply: FastifyReply): void {
  reply.header('set-cookie', `${SESSION_COOKIE}=; ${cookieAttributes(request, 0)}`);
}
