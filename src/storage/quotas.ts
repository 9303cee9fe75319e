import type { Kysely } from 'kysely';
import { StorageError } from './errors.js';
import type { DatabaseDialect, Schema } from './schema.js';

/** What a tenant's quotas count. */
export type QuotaKind = 'devices' | 'gateways';

const QUOTA_NAME: Record<QuotaKind, 'maxDevices' | 'maxGateways'> = {
  devices: 'maxDevices',
  gateways: 'maxGateways',
};

/**
 * Throws `QUOTA_EXCEEDED` unless the tenant has room for `adding` more devices or gateways, and
 * `MISSING_REFERENCE` when there is no such tenant. Call it inside the transaction that inserts:
 * PostgreSQL locks the tenant's row (FOR NO KEY UPDATE) so that two creations for one tenant
 * count one after the other; SQLite transactions are serial already (BEGIN IMMEDIATE).
 */
export async function assertQuotaRoom(
  db: Kysely<Schema>,
  dialect: DatabaseDialect,
  tenantId: string,
  kind: QuotaKind,
  adding: number,
): Promise<void> {
  let query = db
    .selectFrom('tenants')
    .select(['max_devices', 'max_gateways'])
    .where('id', '=', tenantId);
  if (dialect === 'postgres') query = query.forNoKeyUpdate();
  const tenant = await query.executeTakeFirst();
  if (tenant === undefined) {
    throw new StorageError('MISSING_REFERENCE', `tenant ${tenantId} does not exist`);
  }
  const limit = kind === 'devices' ? tenant.max_devices : tenant.max_gateways;
  if (limit === null || adding <= 0) return;
  const row = await db
    .selectFrom(kind)
    .select((eb) => eb.fn.countAll<number | string | bigint>().as('count'))
    .where('tenant_id', '=', tenantId)
    .executeTakeFirstOrThrow();
  const used = Number(row.count);
  if (used + adding > limit) {
    const quota = QUOTA_NAME[kind];
    throw new StorageError(
      'QUOTA_EXCEEDED',
      `tenant ${tenantId} may have at most ${limit} ${kind} (${quota}): it has ${used}, ` +
        `${adding} more would make ${used + adding}`,
      { details: { quota, limit, used, adding } },
    );
  }
}
