import assert from 'node:assert/strict';
import { randomBytes } from 'node:crypto';
import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { describe, it } from 'node:test';
import SqliteDatabase from 'better-sqlite3';
import { Kysely, Migrator, SqliteDialect } from 'kysely';
import {
  createStorage,
  MIGRATION_LOCK_TABLE,
  MIGRATION_TABLE,
  openDatabase,
  SecretBox,
  SQLITE_FILE_NAME,
} from '../../src/storage/index.js';
import { migrationProvider } from '../../src/storage/migrations/index.js';
import type { TestDatabasePlace } from '../storage/storage-suite.js';
import { tenancyStorageSuite } from './tenancy-suite.js';

async function newPlace(): Promise<TestDatabasePlace> {
  const dataDir = await mkdtemp(join(tmpdir(), 'galet-tenancy-'));
  return {
    open: (logger) => openDatabase({ dataDir, logger }),
    dispose: () => rm(dataDir, { recursive: true, force: true }),
  };
}

describe('tenancy storage on SQLite', () => {
  tenancyStorageSuite({ fresh: newPlace, pristine: newPlace });

  it('leaves the rows written before 0008 without a tenant, unshared, untagged', async (t) => {
    const dataDir = await mkdtemp(join(tmpdir(), 'galet-tenancy-upgrade-'));
    t.after(() => rm(dataDir, { recursive: true, force: true }));
    const file = join(dataDir, SQLITE_FILE_NAME);
    // biome-ignore lint/suspicious/noExplicitAny: the schema as it was before 0008
    const old = new Kysely<any>({
      dialect: new SqliteDialect({ database: new SqliteDatabase(file) }),
    });
    const migrator = new Migrator({
      db: old,
      provider: migrationProvider('sqlite'),
      migrationTableName: MIGRATION_TABLE,
      migrationLockTableName: MIGRATION_LOCK_TABLE,
    });
    assert.equal((await migrator.migrateTo('0007_link_tokens')).error, undefined);
    const at = '2026-01-01T00:00:00.000Z';
    await old
      .insertInto('applications')
      .values({ id: 'app-1', name: 'old', created_at: at, updated_at: at })
      .execute();
    await old
      .insertInto('gateways')
      .values({ gateway_id: 'aa555a0000000001', name: 'old', created_at: at, updated_at: at })
      .execute();
    await old
      .insertInto('devices')
      .values({
        dev_eui: '70b3d57ed0000001',
        join_eui: '70b3d57ed0000000',
        name: 'old',
        application_id: 'app-1',
        mac_version: '1.0.3',
        device_class: 'A',
        activation: 'abp',
        created_at: at,
        updated_at: at,
      })
      .execute();
    await old.destroy();

    const database = await openDatabase({ dataDir });
    t.after(() => database.close());
    const storage = createStorage(database, SecretBox.fromKey(randomBytes(32)));
    assert.equal((await storage.applications.get('app-1'))?.tenantId, null);
    const gateway = await storage.gateways.get('aa555a0000000001');
    assert.deepEqual([gateway?.tenantId, gateway?.shared, gateway?.tags], [null, false, {}]);
    const device = await storage.devices.get('70b3d57ed0000001');
    assert.deepEqual([device?.tenantId, device?.tags], [null, {}]);
  });
});
