import assert from 'node:assert/strict';
import { randomBytes } from 'node:crypto';
import { mkdtemp, rm, stat, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, before, describe, it } from 'node:test';
import { sql } from 'kysely';
import pg from 'pg';
import {
  createStorage,
  type GaletDatabase,
  isStorageError,
  MIGRATION_TABLE,
  openDatabase,
  SecretBox,
  type StorageErrorCode,
} from '../../src/storage/index.js';
import { migrations } from '../../src/storage/migrations/index.js';
import {
  dropPostgresTestDatabase,
  postgresReachable,
  postgresTestHost,
  postgresTestUrl,
  skipOrFail,
} from '../helpers/services.js';

/** Every migration Galet knows, in order. */
const MIGRATION_NAMES = Object.keys(migrations('sqlite'));

async function rejectsWith(
  promise: Promise<unknown>,
  code: StorageErrorCode,
  check?: (message: string) => void,
): Promise<void> {
  await assert.rejects(promise, (error: unknown) => {
    assert.ok(isStorageError(error), `expected a StorageError ${code}, got ${String(error)}`);
    assert.equal(error.code, code, error.message);
    check?.(error.message);
    return true;
  });
}

let root: string;
before(async () => {
  root = await mkdtemp(join(tmpdir(), 'galet-database-'));
});
after(async () => {
  await rm(root, { recursive: true, force: true });
});

async function pragma(database: GaletDatabase, name: string): Promise<unknown> {
  const result = await sql.raw(`pragma ${name}`).execute(database.db);
  return Object.values(result.rows[0] as object)[0];
}

describe('openDatabase: choosing the engine', () => {
  it('refuses an unsupported URL scheme without repeating the URL', async () => {
    await rejectsWith(
      openDatabase({ url: 'mysql://root:hunter2@db.example/galet' }),
      'UNSUPPORTED_DATABASE_URL',
      (message) => {
        assert.match(message, /'mysql:'/);
        assert.doesNotMatch(message, /hunter2/);
      },
    );
    await rejectsWith(openDatabase({ url: 'galet.db' }), 'UNSUPPORTED_DATABASE_URL');
    await rejectsWith(openDatabase({ url: 'sqlite:' }), 'UNSUPPORTED_DATABASE_URL');
  });

  it('refuses a malformed PostgreSQL URL without repeating it', async () => {
    await rejectsWith(
      openDatabase({ url: 'postgres://galet:hunter2@[::1/galet' }),
      'UNSUPPORTED_DATABASE_URL',
      (message) => assert.doesNotMatch(message, /hunter2/),
    );
  });

  it('needs a URL or a data directory', async () => {
    await rejectsWith(openDatabase({}), 'UNSUPPORTED_DATABASE_URL');
  });

  it('names the host, never the password, when PostgreSQL is unreachable', async () => {
    await rejectsWith(
      openDatabase({ url: 'postgresql://galet:hunter2@127.0.0.1:1/galet', connectTimeoutMs: 2000 }),
      'DATABASE_UNAVAILABLE',
      (message) => {
        assert.match(message, /galet@127\.0\.0\.1:1\/galet/);
        assert.doesNotMatch(message, /hunter2/);
      },
    );
  });
});

describe('openDatabase on SQLite', () => {
  it('creates <dataDir>/galet.sqlite in a private directory, in WAL mode with foreign keys', async () => {
    const dataDir = join(root, 'nested', 'data');
    const database = await openDatabase({ dataDir });
    try {
      assert.equal(database.dialect, 'sqlite');
      assert.equal(database.location, join(dataDir, 'galet.sqlite'));
      assert.ok((await stat(join(dataDir, 'galet.sqlite'))).isFile());
      assert.equal((await stat(dataDir)).mode & 0o777, 0o700);
      assert.equal(await pragma(database, 'journal_mode'), 'wal');
      assert.equal(await pragma(database, 'foreign_keys'), 1);
      assert.equal(await pragma(database, 'synchronous'), 1); // NORMAL
      assert.equal(await pragma(database, 'busy_timeout'), 5000);
    } finally {
      await database.close();
    }
  });

  it('accepts sqlite:<path>, sqlite:///<absolute path>, :memory: and sqlite::memory:', async () => {
    const relative = join(root, 'relative.sqlite');
    for (const [url, location] of [
      [`sqlite:${relative}`, relative],
      [`sqlite://${join(root, 'absolute.sqlite')}`, join(root, 'absolute.sqlite')],
      [':memory:', ':memory:'],
      ['sqlite::memory:', ':memory:'],
    ] as const) {
      const database = await openDatabase({ url });
      try {
        assert.equal(database.location, location, url);
        const storage = createStorage(database, SecretBox.fromKey(randomBytes(32)));
        await storage.applications.create({ name: url });
        assert.equal((await storage.applications.list()).length, 1);
      } finally {
        await database.close();
      }
    }
  });

  it('keeps data, keys included, when the file is reopened', async () => {
    const dataDir = join(root, 'reopen');
    const masterKey = randomBytes(32);
    const appKey = new Uint8Array(randomBytes(16));
    const nwkSKey = new Uint8Array(randomBytes(16));
    const first = await openDatabase({ dataDir });
    const storage = createStorage(first, SecretBox.fromKey(masterKey));
    const { id } = await storage.applications.create({ name: 'kept' });
    const devEui = '0102030405060708';
    await storage.devices.create({
      devEui,
      joinEui: '0000000000000000',
      name: 'kept',
      applicationId: id,
      macVersion: '1.0.3',
      deviceClass: 'A',
      activation: 'otaa',
      appKey,
    });
    await storage.deviceSessions.upsert({
      devEui,
      devAddr: 0xfe00_0000,
      macVersion: '1.0.3',
      keys: { lorawan: '1.0', nwkSKey, appSKey: new Uint8Array(16) },
      fCntUp: 9,
      nFCntDown: 4,
      aFCntDown: 0,
      rx1DelaySeconds: 5,
      rx1DrOffset: 0,
      rx2Dr: 0,
      rx2FrequencyHz: 869_525_000,
    });
    await first.close();

    const second = await openDatabase({ dataDir });
    try {
      const reopened = createStorage(second, SecretBox.fromKey(masterKey));
      assert.equal((await reopened.applications.get(id))?.name, 'kept');
      assert.deepEqual(await reopened.devices.getRootKeys(devEui), { appKey });
      const session = await reopened.deviceSessions.get(devEui);
      assert.equal(session?.fCntUp, 9);
      assert.equal(session?.devAddr, 0xfe00_0000);
      assert.deepEqual(session?.keys.lorawan === '1.0' && session.keys.nwkSKey, nwkSKey);
    } finally {
      await second.close();
    }
  });

  it('uses STRICT tables: a value of the wrong type is refused, as PostgreSQL would', async () => {
    const database = await openDatabase({ url: ':memory:' });
    try {
      await assert.rejects(
        sql`insert into gateways (gateway_id, name, rx_received, created_at, updated_at)
            values ('0102030405060708', 'gw', 'many', 'now', 'now')`.execute(database.db),
        /cannot store TEXT value in INTEGER column gateways\.rx_received/,
      );
    } finally {
      await database.close();
    }
  });

  it('refuses to start on a database migrated by a newer Galet', async () => {
    const dataDir = join(root, 'newer');
    const database = await openDatabase({ dataDir });
    await database.db
      .insertInto(MIGRATION_TABLE as never)
      .values({ name: '9999_future', timestamp: new Date().toISOString() } as never)
      .execute();
    await database.close();
    await rejectsWith(openDatabase({ dataDir }), 'MIGRATION_FAILED', (message) =>
      assert.match(message, /9999_future.*newer version of Galet/),
    );
  });

  it('reports a file that is not a SQLite database', async () => {
    const path = join(root, 'not-a-database.sqlite');
    await writeFile(path, 'this is not a database, just some text that is long enough'.repeat(20));
    await rejectsWith(openDatabase({ url: `sqlite:${path}` }), 'DATABASE_UNAVAILABLE', (message) =>
      assert.ok(message.includes(path), message),
    );
  });
});

describe('openDatabase on PostgreSQL', () => {
  let reachable = false;
  before(async () => {
    reachable = await postgresReachable();
  });
  const unreachable = `PostgreSQL on ${postgresTestHost()} is not reachable`;

  it('migrates once when two processes open a new database at the same time', async (t) => {
    if (!reachable) return skipOrFail(t, unreachable);
    const url = await postgresTestUrl();
    assert.ok(url);
    try {
      const [a, b] = await Promise.all([openDatabase({ url }), openDatabase({ url })]);
      try {
        assert.equal(a.dialect, 'postgres');
        const rows = await a.db
          .selectFrom(MIGRATION_TABLE as never)
          .select('name' as never)
          .execute();
        assert.deepEqual(
          rows,
          MIGRATION_NAMES.map((name) => ({ name })),
        );
      } finally {
        await a.close();
        await b.close();
      }
    } finally {
      await dropPostgresTestDatabase(url);
    }
  });

  it('reads bigint as a number, without changing pg’s global parsers', async (t) => {
    if (!reachable) return skipOrFail(t, unreachable);
    const url = await postgresTestUrl();
    assert.ok(url);
    const database = await openDatabase({ url });
    try {
      const { rows } = await sql<{ n: unknown; big: unknown }>`
        select count(*) as n, ${4_294_967_296}::bigint as big`.execute(database.db);
      assert.deepEqual(rows, [{ n: 1, big: 4_294_967_296 }]);
      assert.equal(pg.types.getTypeParser(20, 'text')('5'), '5');
    } finally {
      await database.close();
      await dropPostgresTestDatabase(url);
    }
  });

  it('names the database when it does not exist', async (t) => {
    if (!reachable) return skipOrFail(t, unreachable);
    const url = new URL((await postgresTestUrl()) ?? assert.fail('no test database'));
    await dropPostgresTestDatabase(url.toString());
    await rejectsWith(openDatabase({ url: url.toString() }), 'DATABASE_UNAVAILABLE', (message) =>
      assert.ok(message.includes(url.pathname.slice(1)), message),
    );
  });
});
