import assert from 'node:assert/strict';
import { randomBytes } from 'node:crypto';
import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, describe, it } from 'node:test';
import SqliteDatabase from 'better-sqlite3';
import { sql } from 'kysely';
import pg from 'pg';
import {
  createStorage,
  type GaletDatabase,
  isStorageError,
  openDatabase,
  SecretBox,
} from '../../src/storage/index.js';
import {
  censusSealedValues,
  claimDatabaseForRotation,
  rotateSealedValues,
  SEALED_COLUMNS,
  sealedColumnName,
} from '../../src/storage/master-key-rotation.js';
import {
  dropPostgresTestDatabase,
  postgresReachable,
  postgresTestHost,
  postgresTestUrl,
  skipOrFail,
} from '../helpers/services.js';
import {
  assertEverySecretReads,
  assertNoSecretReads,
  sealAppKeysInFirstFormat,
  storeEverySecret,
} from './master-key-fixtures.js';

interface Engine {
  name: string;
  /** A new empty database; `dispose` removes it. */
  open(): Promise<{
    database: GaletDatabase;
    reopen(): Promise<GaletDatabase>;
    dispose(): Promise<void>;
  }>;
  /** The `*_enc` columns of the migrated database, as `table.column`. */
  sealedColumnsInSchema(database: GaletDatabase): Promise<string[]>;
}

const sqliteEngine: Engine = {
  name: 'SQLite',
  async open() {
    const dataDir = await mkdtemp(join(tmpdir(), 'galet-rotation-'));
    const database = await openDatabase({ dataDir });
    return {
      database,
      reopen: () => openDatabase({ dataDir }),
      dispose: () => rm(dataDir, { recursive: true, force: true }),
    };
  },
  async sealedColumnsInSchema(database) {
    const tables = await sql<{ name: string }>`
      select name from sqlite_master where type = 'table' and name not like 'sqlite_%'
    `.execute(database.db);
    const found: string[] = [];
    for (const { name } of tables.rows) {
      for (const column of database.sqlite!.pragma(`table_info(${JSON.stringify(name)})`) as {
        name: string;
      }[]) {
        if (column.name.endsWith('_enc')) found.push(`${name}.${column.name}`);
      }
    }
    return found.sort();
  },
};

const postgresEngine: Engine = {
  name: 'PostgreSQL',
  async open() {
    const url = await postgresTestUrl();
    if (url === undefined) throw new Error(`PostgreSQL on ${postgresTestHost()} went away`);
    const database = await openDatabase({ url, poolSize: 1 });
    return {
      database,
      reopen: () => openDatabase({ url, poolSize: 1 }),
      dispose: () => dropPostgresTestDatabase(url),
    };
  },
  async sealedColumnsInSchema(database) {
    const { rows } = await sql<{ table_name: string; column_name: string }>`
      select table_name, column_name from information_schema.columns
      where table_schema = current_schema() and column_name like '%\\_enc'
    `.execute(database.db);
    return rows.map((row) => `${row.table_name}.${row.column_name}`).sort();
  },
};

function rotationSuite(engine: Engine): void {
  it('lists every sealed column of the schema', async () => {
    const place = await engine.open();
    try {
      const listed = SEALED_COLUMNS.map(sealedColumnName).sort();
      assert.deepEqual(await engine.sealedColumnsInSchema(place.database), listed);
    } finally {
      await place.database.close();
      await place.dispose();
    }
  });

  it('re-encrypts every secret in one transaction: readable with the new key only', async () => {
    const place = await engine.open();
    try {
      const oldKey = new Uint8Array(randomBytes(32));
      const from = SecretBox.fromKey(oldKey);
      const to = SecretBox.fromKey(randomBytes(32));
      const stored = await storeEverySecret(createStorage(place.database, from));
      // Some values as an older Galet sealed them (no key id): read, and rewritten with one.
      await sealAppKeysInFirstFormat(place.database, oldKey, stored);
      await assertEverySecretReads(createStorage(place.database, from), stored);

      const before = await censusSealedValues(place.database, [from, to]);
      assert.deepEqual(before.unreadable, []);
      assert.deepEqual(before.byKeyId, { [from.keyId]: before.total });
      assert.equal(
        before.columns.find((c) => c.column === 'devices.app_key_enc')?.byKeyId['first-format'],
        stored.devices.length,
      );

      const progress: string[] = [];
      const result = await rotateSealedValues(place.database, {
        from,
        to,
        onProgress: ({ column, done, total }) => {
          progress.push(`${column} ${done}/${total}`);
        },
      });
      assert.equal(result.rewritten, before.total);
      // 3 devices with an AppKey, 1 of them 1.1 with a NwkKey, 3 sessions, 3 TOTP secrets,
      // 2 pending, 3 link KEKs, 3 webhook secrets, 2 with headers.
      assert.equal(result.rewritten, 3 + 1 + 3 + 3 + 2 + 3 + 3 + 2);
      assert.ok(progress.includes('devices.app_key_enc 3/3'), progress.join(', '));
      assert.ok(progress.includes('webhooks.headers_enc 2/2'), progress.join(', '));

      await assertEverySecretReads(createStorage(place.database, to), stored);
      await assertNoSecretReads(place.database, from, stored);
      const afterwards = await censusSealedValues(place.database, [from, to]);
      assert.deepEqual(afterwards.byKeyId, { [to.keyId]: before.total });
      assert.ok(afterwards.columns.every((c) => c.byKeyId['first-format'] === undefined));

      // And from a fresh connection: the commit is durable.
      await place.database.close();
      const reopened = await place.reopen();
      try {
        await assertEverySecretReads(createStorage(reopened, to), stored);
      } finally {
        await reopened.close();
      }
    } finally {
      await place.database.close();
      await place.dispose();
    }
  });

  it('leaves the database fully on the old key when the rotation fails midway', async () => {
    const place = await engine.open();
    try {
      const from = SecretBox.fromKey(randomBytes(32));
      const to = SecretBox.fromKey(randomBytes(32));
      const stored = await storeEverySecret(createStorage(place.database, from), 4);
      const total = (await censusSealedValues(place.database, [from])).total;
      let rewrittenBeforeFailure = 0;
      await assert.rejects(
        rotateSealedValues(place.database, {
          from,
          to,
          onProgress: ({ column, done }) => {
            rewrittenBeforeFailure += done;
            // Devices and sessions are rewritten by then; the users' secrets are half way.
            if (column === 'users.totp_secret_enc' && done > 0) {
              throw new Error('simulated crash in the middle of the rotation');
            }
          },
        }),
        /simulated crash/,
      );
      assert.ok(rewrittenBeforeFailure > 0);
      await assertEverySecretReads(createStorage(place.database, from), stored);
      await assertNoSecretReads(place.database, to, stored);
      assert.deepEqual((await censusSealedValues(place.database, [from, to])).byKeyId, {
        [from.keyId]: total,
      });

      // A value that does not open under the current key stops the rotation before the commit.
      await place.database.db
        .updateTable('webhooks')
        .set({ secret_enc: Buffer.from(to.seal(Buffer.from('x'), 'webhook:elsewhere:secret')) })
        .where('id', '=', stored.webhooks[1]!.id)
        .execute();
      await assert.rejects(
        rotateSealedValues(place.database, { from, to }),
        (error: unknown) =>
          isStorageError(error, 'SECRET_OPEN_FAILED') &&
          error.message.includes(`webhooks.secret_enc of id ${stored.webhooks[1]!.id}`) &&
          error.message.includes('nothing was changed'),
      );
      await assertEverySecretReads(createStorage(place.database, from), {
        ...stored,
        webhooks: stored.webhooks.filter((_, index) => index !== 1),
      });
      await assert.rejects(
        rotateSealedValues(place.database, { from, to: from }),
        (error: unknown) => isStorageError(error, 'INVALID_MASTER_KEY'),
      );
    } finally {
      await place.database.close();
      await place.dispose();
    }
  });
}

describe('master key rotation on SQLite', () => {
  rotationSuite(sqliteEngine);

  it('claims the database only when no other process has it open', async () => {
    const dataDir = await mkdtemp(join(tmpdir(), 'galet-rotation-lock-'));
    after(() => rm(dataDir, { recursive: true, force: true }));
    // A running Galet: another connection that read the database and stays open.
    const running = await openDatabase({ dataDir });
    await running.db.selectFrom('devices').select('dev_eui').execute();
    const rotation = await openDatabase({ dataDir });
    try {
      await assert.rejects(
        claimDatabaseForRotation(rotation),
        (error: unknown) =>
          isStorageError(error, 'DATABASE_UNAVAILABLE') &&
          /in use by another process/.test(error.message),
      );
    } finally {
      await rotation.close();
    }
    await running.close();
    const claimed = await openDatabase({ dataDir });
    try {
      await claimDatabaseForRotation(claimed);
      // Held until closed: another connection (a Galet starting now) cannot read the database.
      const other = new SqliteDatabase(join(dataDir, 'galet.sqlite'), { timeout: 0 });
      try {
        assert.throws(() => other.prepare('select count(*) from devices').get(), {
          code: 'SQLITE_BUSY',
        });
      } finally {
        other.close();
      }
    } finally {
      await claimed.close();
    }
    await (await openDatabase({ dataDir })).close();
  });
});

const reachable = await postgresReachable();

describe('master key rotation on PostgreSQL', () => {
  if (!reachable) {
    it('needs a PostgreSQL server', (t) => {
      skipOrFail(t, `PostgreSQL on ${postgresTestHost()} is not reachable`);
    });
    return;
  }
  rotationSuite(postgresEngine);

  it('refuses while another Galet is connected to the database', async () => {
    const place = await postgresEngine.open();
    try {
      await claimDatabaseForRotation(place.database);
      const url = await databaseUrlOf(place.database);
      const running = new pg.Client({ connectionString: url, application_name: 'galet' });
      await running.connect();
      try {
        await assert.rejects(
          claimDatabaseForRotation(place.database),
          (error: unknown) =>
            isStorageError(error, 'DATABASE_UNAVAILABLE') &&
            /1 other Galet connection is open/.test(error.message),
        );
      } finally {
        await running.end();
      }
      await claimDatabaseForRotation(place.database);
    } finally {
      await place.database.close();
      await place.dispose();
    }
  });
});

/** The test database's URL, rebuilt from its name (the admin URL with another path). */
async function databaseUrlOf(database: GaletDatabase): Promise<string> {
  const { rows } = await sql<{ name: string }>`select current_database() as name`.execute(
    database.db,
  );
  const url = new URL(
    process.env.GALET_TEST_POSTGRES_URL ?? 'postgres://postgres@127.0.0.1:5432/postgres',
  );
  url.pathname = `/${rows[0]!.name}`;
  return url.toString();
}
