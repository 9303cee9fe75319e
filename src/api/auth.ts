import { createHash, randomBytes, timingSafeEqual } from 'node:crypto';
import { chmod, mkdir, readFile, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import type { FastifyRequest } from 'fastify';
import type { Logger } from '../logger.js';
import { type Action, can, type Principal, type Target } from '../platform/roles.js';
import {
  parseApiKeyToken,
  sessionIdHash,
  tokenKind,
  tokenMatchesHash,
} from '../platform/tokens.js';
import type { AuditOutcome, NewAuditEntry, Storage } from '../storage/index.js';
import { ApiError } from './errors.js';

/**
 * The admin token: from GALET_ADMIN_TOKEN, or generated on first start and kept in
 * `<dataDir>/admin.token` (mode 0600). `created` tells the caller to print it, once.
 */
export async function loadOrCreateAdminToken(
  dataDir: string,
  env: NodeJS.ProcessEnv = process.env,
): Promise<{ token: string; created: boolean; source: 'environment' | 'file' }> {
  const fromEnv = env['GALET_ADMIN_TOKEN'];
  if (fromEnv !== undefined && fromEnv !== '') {
    if (fromEnv.length < 16) throw new Error('GALET_ADMIN_TOKEN must be at least 16 characters');
    return { token: fromEnv, created: false, source: 'environment' };
  }
  const path = join(dataDir, 'admin.token');
  try {
    const token = (await readFile(path, 'utf8')).trim();
    if (token.length >= 16) return { token, created: false, source: 'file' };
  } catch (error) {
    if ((error as NodeJS.ErrnoException).code !== 'ENOENT') throw error;
  }
  await mkdir(dataDir, { recursive: true, mode: 0o700 });
  const token = `galet_${randomBytes(24).toString('base64url')}`;
  await writeFile(path, `${token}\n`, { mode: 0o600 });
  await chmod(path, 0o600);
  return { token, created: true, source: 'file' };
}

/** Compares a presented bearer token with the expected one in constant time. */
export class TokenVerifier {
  readonly #expectedDigest: Buffer;

  constructor(token: string) {
    this.#expectedDigest = digest(token);
  }

  verify(presented: string | undefined): boolean {
    if (presented === undefined) return false;
    // Hashing first makes the comparison length-independent.
    return timingSafeEqual(digest(presented), this.#expectedDigest);
  }
}

function digest(token: string): Buffer {
  return createHash('sha256').update(token, 'utf8').digest();
}

export function bearerToken(header: string | undefined): string | undefined {
  if (header === undefined) return undefined;
  const match = /^Bearer\s+(\S+)\s*$/i.exec(header);
  return match?.[1];
}

// ---------------------------------------------------------------------------------------------
// Principals: the admin token, API keys and console sessions.

declare module 'fastify' {
  interface FastifyRequest {
    /** Who made the request: set by the authentication hook; null on public routes (login). */
    principal: Principal | null;
    /** The SHA-256 id of the console session the request came with, for logout; else null. */
    sessionIdHash: string | null;
    /** What a route knows about the object of a write, for the audit hook (`noteAudit`). */
    auditNote: AuditNote | null;
    /** Set once the request's audit entry is written: the hook then writes none. */
    auditRecorded: boolean;
  }
}

/** The console's session cookie (HttpOnly, SameSite=Strict, path /api/v1). */
export const SESSION_COOKIE = 'galet_session';

const UNAUTHORIZED_MESSAGE = 'missing or invalid bearer token';

export interface AuthenticatorOptions {
  adminToken: string;
  storage: Storage;
  now: () => Date;
  /** A key's lastUsedAt and a session's lastSeenAt are written at most this often. Default 60 s. */
  touchIntervalMs?: number;
}

export type Authentication =
  | { principal: Principal; sessionIdHash: string | null }
  | { error: string };

/**
 * Turns the credentials of a request into a principal: `Authorization: Bearer <token>` with the
 * admin token, an API key or a session token, or else the session cookie. An Authorization
 * header that fails does not fall back to the cookie.
 *
 * An API key costs one primary-key read (its id is in the token) and a constant-time compare of
 * SHA-256 hashes; its lastUsedAt is written at most once a minute (remembered here, and the
 * UPDATE is conditional too, for other instances).
 */
export class Authenticator {
  readonly #admin: TokenVerifier;
  readonly #storage: Storage;
  readonly #now: () => Date;
  readonly #touchIntervalMs: number;
  readonly #lastTouch = new Map<string, number>();

  constructor(options: AuthenticatorOptions) {
    this.#admin = new TokenVerifier(options.adminToken);
    this.#storage = options.storage;
    this.#now = options.now;
    this.#touchIntervalMs = options.touchIntervalMs ?? 60_000;
  }

  async authenticate(headers: {
    authorization?: string | undefined;
    cookie?: string | undefined;
  }): Promise<Authentication> {
    if (headers.authorization !== undefined) {
      const token = bearerToken(headers.authorization);
      if (token === undefined) return { error: UNAUTHORIZED_MESSAGE };
      if (this.#admin.verify(token)) {
        return { principal: { kind: 'admin-token' }, sessionIdHash: null };
      }
      switch (tokenKind(token)) {
        case 'api-key':
          return this.#apiKey(token);
        case 'session':
          return this.#session(token);
        case 'other':
          return { error: UNAUTHORIZED_MESSAGE };
      }
    }
    const cookie = cookieValue(headers.cookie, SESSION_COOKIE);
    if (cookie !== undefined) return this.#session(cookie);
    return { error: UNAUTHORIZED_MESSAGE };
  }

  async #apiKey(token: string): Promise<Authentication> {
    const parsed = parseApiKeyToken(token);
    const found = parsed && (await this.#storage.apiKeys.getForVerification(parsed.id));
    if (found === undefined || !tokenMatchesHash(token, found.secretHash)) {
      return { error: UNAUTHORIZED_MESSAGE };
    }
    const { key } = found;
    const now = this.#now();
    const nowIso = now.toISOString();
    if (key.revokedAt !== null && key.revokedAt <= nowIso) {
      return { error: `API key ${key.id} has been revoked` };
    }
    if (key.expiresAt !== null && key.expiresAt <= nowIso) {
      return { error: `API key ${key.id} has expired` };
    }
    if (this.#due(`key:${key.id}`, now.getTime())) {
      await this.#storage.apiKeys.touchLastUsed(key.id, nowIso, this.#touchIntervalMs);
    }
    return {
      principal: {
        kind: 'api-key',
        keyId: key.id,
        tenantId: key.tenantId,
        applicationId: key.applicationId,
        role: key.role,
        readOnly: key.readOnly,
      },
      sessionIdHash: null,
    };
  }

  async #session(token: string): Promise<Authentication> {
    const idHash = sessionIdHash(token);
    if (idHash === undefined) return { error: UNAUTHORIZED_MESSAGE };
    const now = this.#now();
    const session = await this.#storage.consoleSessions.getActive(idHash, now.toISOString());
    if (session === undefined) return { error: 'session expired or ended: log in again' };
    const user = await this.#storage.users.get(session.userId);
    if (user === undefined || user.disabled) {
      return { error: 'session expired or ended: log in again' };
    }
    const memberships = await this.#storage.memberships.listForUser(user.id);
    if (this.#due(`session:${idHash}`, now.getTime())) {
      await this.#storage.consoleSessions.touch(idHash, now.toISOString(), this.#touchIntervalMs);
    }
    return {
      principal: {
        kind: 'user',
        userId: user.id,
        operatorAdmin: user.operatorAdmin,
        memberships: memberships.map((m) => ({
          tenantId: m.tenantId,
          role: m.role,
          applicationId: m.applicationId,
        })),
      },
      sessionIdHash: idHash,
    };
  }

  /** Whether a write of lastUsedAt / lastSeenAt is due for this key or session. */
  #due(key: string, nowMs: number): boolean {
    const last = this.#lastTouch.get(key);
    if (last !== undefined && nowMs - last < this.#touchIntervalMs) return false;
    // Bounded: forgetting only costs one conditional UPDATE per key or session.
    if (this.#lastTouch.size >= 10_000) this.#lastTouch.clear();
    this.#lastTouch.set(key, nowMs);
    return true;
  }
}

/** One cookie's value from a Cookie header, or undefined. */
export function cookieValue(header: string | undefined, name: string): string | undefined {
  if (header === undefined) return undefined;
  for (const part of header.split(';')) {
    const equals = part.indexOf('=');
    if (equals < 0) continue;
    if (part.slice(0, equals).trim() !== name) continue;
    const value = part.slice(equals + 1).trim();
    return value === '' ? undefined : value;
  }
  return undefined;
}

/** The principal of an authenticated request (the hook guarantees it on protected routes). */
export function principalOf(request: FastifyRequest): Principal {
  if (request.principal === null) throw new ApiError(401, 'UNAUTHORIZED', UNAUTHORIZED_MESSAGE);
  return request.principal;
}

/** An authorization refusal: 404 for what the principal may not even see, 403 otherwise. */
export class AccessDenied extends ApiError {}

/**
 * Throws unless the principal may do `action` on `target`. When the principal cannot see the
 * target's tenant at all, the answer is 404 "<what> not found", exactly as for an object that
 * does not exist; otherwise 403 FORBIDDEN. A target without tenant and application (a global
 * permission) is never hidden: 403.
 */
export function authorize(
  request: FastifyRequest,
  action: Action,
  target: Target,
  what: string,
): void {
  const principal = principalOf(request);
  if (can(principal, action, target)) return;
  const untenanted = (target.tenantId ?? null) === null && (target.applicationId ?? null) === null;
  throw refusal(principal, action, what, untenanted || seesObject(principal, action, target));
}

/** The read action of an action (`devices:write` -> `devices:read`). */
export function readOf(action: Action): Action {
  return action.replace(/:write$/, ':read') as Action;
}

/** Whether the principal may see that an object of `target` exists: it may read it, or its tenant. */
export function seesObject(principal: Principal, action: Action, target: Target): boolean {
  const tenantId = target.tenantId ?? null;
  return (
    can(principal, readOf(action), target) ||
    (tenantId !== null && can(principal, 'tenants:read', { tenantId }))
  );
}

/** The refusal of `action`: 404 "<what> not found" for what the principal cannot see, else 403. */
export function refusal(
  principal: Principal,
  action: Action,
  what: string,
  seen: boolean,
): AccessDenied {
  if (!seen) return new AccessDenied(404, 'NOT_FOUND', `${what} not found`);
  return forbidden(`${describePrincipal(principal)} may not ${action.replace(':', ' ')} here`);
}

export function forbidden(message: string): AccessDenied {
  return new AccessDenied(403, 'FORBIDDEN', message);
}

function describePrincipal(principal: Principal): string {
  switch (principal.kind) {
    case 'admin-token':
      return 'the admin token';
    case 'user':
      return 'this user';
    case 'api-key':
      return principal.readOnly ? 'this read-only API key' : `this ${principal.role} API key`;
  }
}

// ---------------------------------------------------------------------------------------------
// The audit trail of the API's writes and logins.

/** The actor of an audit entry. */
export function auditActor(principal: Principal | null): NewAuditEntry['actor'] {
  if (principal === null) return { type: 'anonymous' };
  switch (principal.kind) {
    case 'admin-token':
      return { type: 'admin-token' };
    case 'user':
      return {
        type: 'user',
        id: principal.userId,
        tenantId: principal.memberships.length === 1 ? principal.memberships[0]!.tenantId : null,
      };
    case 'api-key':
      return { type: 'api-key', id: principal.keyId, tenantId: principal.tenantId };
  }
}

/** What a route fills in for its audit entry; `work` may complete it (the new object's id). */
export interface AuditDraft {
  action: string;
  objectType: string;
  objectId?: string | null;
  tenantId?: string | null;
  details?: Record<string, unknown>;
}

/**
 * What a route tells the audit hook (server.ts) about its write: the tenant and id of the object
 * and details; `denied` when an authorization refusal ended it. The hook derives the action
 * (`device.queue`) from the route unless the note names one.
 */
export interface AuditNote {
  action?: string;
  objectType?: string;
  objectId?: string | null;
  tenantId?: string | null;
  details?: Record<string, unknown>;
  denied?: boolean;
}

/** Adds to the request's audit note (details merge). */
export function noteAudit(request: FastifyRequest, note: AuditNote): void {
  const current = request.auditNote ?? {};
  request.auditNote = {
    ...current,
    ...note,
    ...(note.details === undefined ? {} : { details: { ...current.details, ...note.details } }),
  };
}

export interface AuditTrail {
  storage: Storage;
  logger?: Logger | undefined;
}

/** What the platform routes (tenants, users, API keys, auth, audit) share. */
export interface PlatformContext extends AuditTrail {
  /** The clock for expiry decisions; tests pass their own. */
  now: () => Date;
}

/** Appends one entry for this request; a failure to write it is logged, never thrown. */
export async function recordAudit(
  trail: AuditTrail,
  request: FastifyRequest,
  draft: AuditDraft,
  outcome: AuditOutcome,
  actor: NewAuditEntry['actor'] = auditActor(request.principal),
): Promise<void> {
  request.auditRecorded = true;
  try {
    await trail.storage.auditLog.append({
      actor,
      action: draft.action,
      objectType: draft.objectType,
      objectId: draft.objectId ?? null,
      tenantId: draft.tenantId ?? null,
      sourceIp: request.ip,
      outcome,
      details: draft.details ?? {},
    });
  } catch (error) {
    trail.logger?.error({ err: error, action: draft.action }, 'could not write an audit entry');
  }
}

/**
 * Runs a write and records it: `success` when `work` returns, `denied` when it throws an
 * authorization refusal, `failure` (with the error's code and message) for any other error,
 * which is rethrown.
 */
export async function audited<T>(
  trail: AuditTrail,
  request: FastifyRequest,
  draft: AuditDraft,
  work: (draft: AuditDraft) => Promise<T>,
): Promise<T> {
  let result: T;
  try {
    result = await work(draft);
  } catch (error) {
    const code =
      error instanceof ApiError ? error.error : ((error as { code?: unknown }).code ?? 'INTERNAL');
    // A refusal as 404 is about an object the principal cannot see: the entry does not name
    // its tenant, or the probe would show in that tenant's audit log (with the prober's ids).
    const invisible = error instanceof AccessDenied && error.statusCode === 404;
    await recordAudit(
      trail,
      request,
      {
        ...draft,
        ...(invisible ? { tenantId: null } : {}),
        details: {
          ...draft.details,
          error: String(code),
          message: error instanceof Error ? error.message.slice(0, 300) : String(error),
        },
      },
      error instanceof AccessDenied ? 'denied' : 'failure',
    );
    throw error;
  }
  await recordAudit(trail, request, draft, 'success');
  return result;
}
