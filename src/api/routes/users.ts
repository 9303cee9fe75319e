import type { FastifyInstance, FastifyRequest } from 'fastify';
import {
  hashPassword,
  PASSWORD_MAX_LENGTH,
  passwordPolicyViolation,
  verifyPassword,
} from '../../platform/passwords.js';
import {
  can,
  canGrant,
  highestTenantRole,
  isGlobal,
  type Principal,
  roleRank,
  SCOPED_ROLES,
  type ScopedRole,
} from '../../platform/roles.js';
import { type Membership, USER_SORT, type User } from '../../storage/index.js';
import { audited, authorize, forbidden, type PlatformContext, principalOf } from '../auth.js';
import { badRequest, notFound } from '../errors.js';
import { listPage, type PageQuery, pagedListSchema, searchSchema } from '../paging.js';
import { listScope, tenantIdsFilter } from '../scope.js';
import { idSchema } from './schemas.js';

/**
 * Users: `/users`, and their memberships `/users/{id}/memberships/{tenantId}`.
 *
 * A tenant's owners and admins manage its users (`users:write`), up to their own role: an
 * admin cannot make an owner. A user who belongs to several tenants is changed (password,
 * disabled, deleted) only by someone who manages all of them, or by the operator. A user is
 * visible to the managers of the tenants they belong to; to anyone else they do not exist (404),
 * and their memberships elsewhere are not shown.
 *
 * An integration membership (one application) is in the application's tenant; the operator's
 * applications (without a tenant) take a global principal.
 */

const passwordSchema = {
  type: 'string',
  minLength: 1,
  maxLength: PASSWORD_MAX_LENGTH * 4,
} as const;

interface NewUserBody {
  email: string;
  password: string;
  tenantId?: string;
  role?: ScopedRole;
  applicationId?: string;
  operatorAdmin?: boolean;
}

interface UserPatchBody {
  password?: string;
  currentPassword?: string;
  disabled?: boolean;
  operatorAdmin?: boolean;
  resetTotp?: boolean;
}

export interface UserView extends User {
  memberships: { tenantId: string; role: ScopedRole; applicationId: string | null }[];
}

/** The user with the memberships the principal may see. */
export function userView(principal: Principal, user: User, memberships: Membership[]): UserView {
  const self = principal.kind === 'user' && principal.userId === user.id;
  return {
    ...user,
    memberships: memberships
      .filter(
        (m) =>
          self || isGlobal(principal) || can(principal, 'users:read', { tenantId: m.tenantId }),
      )
      .map((m) => ({ tenantId: m.tenantId, role: m.role, applicationId: m.applicationId })),
  };
}

export function registerUserRoutes(api: FastifyInstance, platform: PlatformContext): void {
  const { storage } = platform;

  /** The user and memberships if the principal may see them; else 404. */
  async function visibleUser(
    request: FastifyRequest,
    id: string,
  ): Promise<{ user: User; memberships: Membership[] }> {
    const principal = principalOf(request);
    const user = await storage.users.get(id);
    if (user === undefined) throw notFound(`user ${id}`);
    const memberships = await storage.memberships.listForUser(id);
    const self = principal.kind === 'user' && principal.userId === id;
    if (
      self ||
      isGlobal(principal) ||
      memberships.some((m) => can(principal, 'users:read', { tenantId: m.tenantId }))
    ) {
      return { user, memberships };
    }
    throw notFound(`user ${id}`);
  }

  /** Throws unless the principal manages the user in every tenant they belong to. */
  function assertManages(principal: Principal, user: User, memberships: Membership[]): void {
    if (can(principal, 'users:write', {})) return;
    if (user.operatorAdmin) throw forbidden('only the operator manages an operator-admin user');
    if (memberships.length === 0) throw forbidden('only the operator manages this user');
    for (const membership of memberships) {
      if (!can(principal, 'users:write', { tenantId: membership.tenantId })) {
        throw forbidden('this user also belongs to a tenant you do not manage');
      }
      const own = highestTenantRole(principal, membership.tenantId);
      if (own === undefined || roleRank(own) < roleRank(membership.role)) {
        throw forbidden(
          `a ${own ?? 'principal without a role'} cannot manage a ${membership.role}`,
        );
      }
    }
  }

  function checkPassword(password: string): void {
    const violation = passwordPolicyViolation(password);
    if (violation !== undefined) throw badRequest(violation);
  }

  async function assertTenantExists(tenantId: string): Promise<void> {
    if ((await storage.tenants.get(tenantId)) === undefined) throw notFound(`tenant ${tenantId}`);
  }

  /** Who may give `role` in `tenantId`. */
  function assertMayGrant(principal: Principal, role: ScopedRole, tenantId: string): void {
    if (!canGrant(principal, role, { tenantId })) {
      throw forbidden(`you may not give the ${role} role in this tenant`);
    }
  }

  /**
   * The application of an integration membership must be in the membership's tenant (one of
   * another tenant answers 404); the operator's applications (no tenant) take a global principal.
   */
  async function assertApplicationOfTenant(
    principal: Principal,
    applicationId: string,
    tenantId: string,
  ): Promise<void> {
    const application = await storage.applications.get(applicationId);
    if (application === undefined) throw notFound(`application ${applicationId}`);
    if (application.tenantId === tenantId) return;
    if (application.tenantId === null && isGlobal(principal)) return;
    if (application.tenantId === null || !isGlobal(principal)) {
      throw notFound(`application ${applicationId}`);
    }
    throw badRequest(`application ${applicationId} is not in tenant ${tenantId}`);
  }

  api.post<{ Body: NewUserBody }>(
    '/users',
    {
      schema: {
        body: {
          type: 'object',
          required: ['email', 'password'],
          additionalProperties: false,
          properties: {
            email: { type: 'string', minLength: 3, maxLength: 254 },
            password: passwordSchema,
            tenantId: idSchema,
            role: { type: 'string', enum: SCOPED_ROLES },
            applicationId: idSchema,
            operatorAdmin: { type: 'boolean' },
          },
        },
      },
    },
    async (request, reply) => {
      const body = request.body;
      const view = await audited(
        platform,
        request,
        {
          action: 'user.create',
          objectType: 'user',
          tenantId: body.tenantId ?? null,
          details: {
            email: body.email.trim().toLowerCase(),
            role: body.role ?? null,
            applicationId: body.applicationId ?? null,
            operatorAdmin: body.operatorAdmin ?? false,
          },
        },
        async (draft) => {
          const principal = principalOf(request);
          if ((body.tenantId === undefined) !== (body.role === undefined)) {
            throw badRequest('tenantId and role go together');
          }
          if (body.tenantId === undefined) {
            authorize(request, 'users:write', {}, 'users');
            if (body.operatorAdmin !== true) {
              throw badRequest('a user needs a tenantId and a role, or operatorAdmin: true');
            }
          } else {
            authorize(
              request,
              'users:write',
              { tenantId: body.tenantId },
              `tenant ${body.tenantId}`,
            );
            await assertTenantExists(body.tenantId);
            assertMayGrant(principal, body.role!, body.tenantId);
          }
          if (body.operatorAdmin === true && !can(principal, 'users:write', {})) {
            throw forbidden('only the operator creates operator-admin users');
          }
          if ((body.role === 'integration') !== (body.applicationId !== undefined)) {
            throw badRequest('an applicationId goes with the integration role, and only with it');
          }
          if (body.applicationId !== undefined && body.tenantId !== undefined) {
            await assertApplicationOfTenant(principal, body.applicationId, body.tenantId);
          }
          checkPassword(body.password);
          const user = await storage.users.create({
            email: body.email,
            passwordHash: await hashPassword(body.password),
            operatorAdmin: body.operatorAdmin ?? false,
          });
          draft.objectId = user.id;
          const memberships: Membership[] = [];
          if (body.tenantId !== undefined) {
            try {
              memberships.push(
                await storage.memberships.set({
                  userId: user.id,
                  tenantId: body.tenantId,
                  role: body.role!,
                  applicationId: body.applicationId ?? null,
                }),
              );
            } catch (error) {
              await storage.users.delete(user.id);
              throw error;
            }
          }
          return userView(principal, user, memberships);
        },
      );
      return reply.status(201).send(view);
    },
  );

  api.get<{ Querystring: PageQuery & { tenantId?: string; search?: string } }>(
    '/users',
    {
      schema: {
        querystring: pagedListSchema(Object.keys(USER_SORT.fields), {
          tenantId: idSchema,
          search: searchSchema,
        }),
      },
    },
    async (request) => {
      const principal = principalOf(request);
      const { tenantId, search, ...paging } = request.query;
      // 403 for a principal that reads users nowhere, whatever the filter (as every list).
      listScope(request, 'users:read', { applications: false });
      const { items: users, nextCursor } = await listPage(
        paging,
        USER_SORT.defaultField,
        'id',
        (options) => {
          const tenantIds = tenantIdsFilter(request, 'users:read', tenantId);
          return storage.users.list({
            ...options,
            ...(tenantIds === undefined ? {} : { tenantIds }),
            ...(search === undefined ? {} : { search }),
          });
        },
      );
      const memberships = await storage.memberships.listForUsers(users.map((u) => u.id));
      return {
        users: users.map((user) =>
          userView(
            principal,
            user,
            memberships.filter((m) => m.userId === user.id),
          ),
        ),
        nextCursor,
      };
    },
  );

  api.get<{ Params: { id: string } }>('/users/:id', async (request) => {
    const { user, memberships } = await visibleUser(request, request.params.id);
    return userView(principalOf(request), user, memberships);
  });

  api.patch<{ Params: { id: string }; Body: UserPatchBody }>(
    '/users/:id',
    {
      schema: {
        body: {
          type: 'object',
          minProperties: 1,
          additionalProperties: false,
          properties: {
            password: passwordSchema,
            currentPassword: passwordSchema,
            disabled: { type: 'boolean' },
            operatorAdmin: { type: 'boolean' },
            resetTotp: { type: 'boolean', const: true },
          },
        },
      },
    },
    async (request) => {
      const { id } = request.params;
      const body = request.body;
      return audited(
        platform,
        request,
        {
          action: 'user.update',
          objectType: 'user',
          objectId: id,
          details: {
            fields: Object.keys(body)
              .filter((f) => f !== 'currentPassword')
              .sort(),
          },
        },
        async (draft) => {
          const principal = principalOf(request);
          const { user, memberships } = await visibleUser(request, id);
          draft.tenantId = memberships.length === 1 ? memberships[0]!.tenantId : null;
          const self = principal.kind === 'user' && principal.userId === id;
          const onlyPassword =
            Object.keys(body).every((f) => f === 'password' || f === 'currentPassword') &&
            body.password !== undefined;
          if (self && onlyPassword) {
            // Changing one's own password takes the current one.
            const credentials = await storage.users.getCredentials(user.email);
            if (
              body.currentPassword === undefined ||
              credentials === undefined ||
              !(await verifyPassword(credentials.passwordHash, body.currentPassword))
            ) {
              throw forbidden(
                'changing your password takes your current password (currentPassword)',
              );
            }
          } else {
            assertManages(principal, user, memberships);
            if (body.operatorAdmin !== undefined && !can(principal, 'users:write', {})) {
              throw forbidden('only the operator makes operator-admin users');
            }
          }
          if (body.password !== undefined) checkPassword(body.password);
          const updated = await storage.users.update(id, {
            ...(body.password === undefined
              ? {}
              : { passwordHash: await hashPassword(body.password) }),
            ...(body.disabled === undefined ? {} : { disabled: body.disabled }),
            ...(body.operatorAdmin === undefined ? {} : { operatorAdmin: body.operatorAdmin }),
          });
          if (updated === undefined) throw notFound(`user ${id}`);
          let view = updated;
          if (body.resetTotp === true) {
            await storage.users.disableTotp(id);
            view = (await storage.users.get(id)) ?? updated;
          }
          if (body.password !== undefined || body.disabled === true) {
            // A new password or a disabled account ends every session.
            await storage.consoleSessions.deleteForUser(id);
          }
          return userView(principal, view, memberships);
        },
      );
    },
  );

  api.delete<{ Params: { id: string } }>('/users/:id', async (request, reply) => {
    const { id } = request.params;
    await audited(
      platform,
      request,
      { action: 'user.delete', objectType: 'user', objectId: id },
      async (draft) => {
        const principal = principalOf(request);
        const { user, memberships } = await visibleUser(request, id);
        draft.tenantId = memberships.length === 1 ? memberships[0]!.tenantId : null;
        draft.details = { email: user.email };
        assertManages(principal, user, memberships);
        if (!(await storage.users.delete(id))) throw notFound(`user ${id}`);
      },
    );
    return reply.status(204).send();
  });

  api.put<{
    Params: { id: string; tenantId: string };
    Body: { role: ScopedRole; applicationId?: string };
  }>(
    '/users/:id/memberships/:tenantId',
    {
      schema: {
        body: {
          type: 'object',
          required: ['role'],
          additionalProperties: false,
          properties: { role: { type: 'string', enum: SCOPED_ROLES }, applicationId: idSchema },
        },
      },
    },
    async (request) => {
      const { id, tenantId } = request.params;
      const { role, applicationId } = request.body;
      return audited(
        platform,
        request,
        {
          action: 'membership.set',
          objectType: 'user',
          objectId: id,
          tenantId,
          details: { role, applicationId: applicationId ?? null },
        },
        async () => {
          const principal = principalOf(request);
          authorize(request, 'users:write', { tenantId }, `tenant ${tenantId}`);
          await assertTenantExists(tenantId);
          const { user, memberships } = await visibleUser(request, id);
          assertMayGrant(principal, role, tenantId);
          const current = memberships.find((m) => m.tenantId === tenantId);
          assertOutranks(principal, current, tenantId);
          if ((role === 'integration') !== (applicationId !== undefined)) {
            throw badRequest('an applicationId goes with the integration role, and only with it');
          }
          if (applicationId !== undefined) {
            await assertApplicationOfTenant(principal, applicationId, tenantId);
          }
          const membership = await storage.memberships.set({
            userId: id,
            tenantId,
            role,
            applicationId: applicationId ?? null,
          });
          return userView(principal, user, [
            ...memberships.filter((m) => m.tenantId !== tenantId),
            membership,
          ]);
        },
      );
    },
  );

  api.delete<{ Params: { id: string; tenantId: string } }>(
    '/users/:id/memberships/:tenantId',
    async (request, reply) => {
      const { id, tenantId } = request.params;
      await audited(
        platform,
        request,
        { action: 'membership.remove', objectType: 'user', objectId: id, tenantId },
        async () => {
          const principal = principalOf(request);
          authorize(request, 'users:write', { tenantId }, `tenant ${tenantId}`);
          const { memberships } = await visibleUser(request, id);
          const current = memberships.find((m) => m.tenantId === tenantId);
          if (current === undefined)
            throw notFound(`membership of user ${id} in tenant ${tenantId}`);
          assertOutranks(principal, current, tenantId);
          await storage.memberships.remove(id, tenantId);
        },
      );
      return reply.status(204).send();
    },
  );
}

/** A member with a higher role than the principal's own is out of its reach. */
function assertOutranks(
  principal: Principal,
  current: Membership | undefined,
  tenantId: string,
): void {
  if (current === undefined || isGlobal(principal)) return;
  const own = highestTenantRole(principal, tenantId);
  if (own === undefined || roleRank(own) < roleRank(current.role)) {
    throw forbidden(`a ${own ?? 'principal without a role'} cannot change a ${current.role}`);
  }
}
