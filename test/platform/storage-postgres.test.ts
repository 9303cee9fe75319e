import { after, describe, it } from 'node:test';
import { type GaletDatabase, openDatabase } from '../../src/storage/index.js';
import {
  dropPostgresTestDatabase,
  postgresReachable,
  postgresTestHost,
  postgresTestUrl,
  skipOrFail,
} from '../helpers/services.js';
import type { TestDatabasePlace } from '../storage/storage-suite.js';
import { platformStorageSuite } from './storage-suite.js';

const reachable = await postgresReachable();

async function newTestDatabase(): Promise<string> {
  const url = await postgresTestUrl();
  if (url === undefined) throw new Error(`PostgreSQL on ${postgresTestHost()} went away`);
  return url;
}

/** The tables these tests write, children first (applications: for integration scopes). */
const TABLES = [
  'audit_log',
  'console_sessions',
  'api_keys',
  'memberships',
  'users',
  'tenants',
  'applications',
] as const;

async function clear(database: GaletDatabase): Promise<void> {
  for (const table of TABLES) await database.db.deleteFrom(table).execute();
}

describe('platform storage on PostgreSQL', () => {
  if (!reachable) {
    it('needs a PostgreSQL server', (t) => {
      skipOrFail(t, `PostgreSQL on ${postgresTestHost()} is not reachable`);
    });
    return;
  }

  // One database for the suite, emptied before each test; the migration test gets its own.
  let shared: Promise<string> | undefined;
  after(async () => {
    if (shared) await dropPostgresTestDatabase(await shared);
  });

  platformStorageSuite({
    async fresh(): Promise<TestDatabasePlace> {
      shared ??= newTestDatabase();
      const url = await shared;
      let cleared = false;
      return {
        async open(logger) {
          const database = await openDatabase({ url, logger });
          if (!cleared) {
            await clear(database);
            cleared = true;
          }
          return database;
        },
        dispose: async () => undefined,
      };
    },
    async pristine(): Promise<TestDatabasePlace> {
      const url = await newTestDatabase();
      return {
        open: (logger) => openDatabase({ url, logger }),
        dispose: () => dropPostgresTestDatabase(url),
      };
    },
  });
});
