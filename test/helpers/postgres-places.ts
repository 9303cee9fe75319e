import { after } from 'node:test';
import { type GaletDatabase, openDatabase } from '../../src/storage/index.js';
import type { Schema } from '../../src/storage/schema.js';
import type { StorageTestTarget, TestDatabasePlace } from '../storage/storage-suite.js';
import { dropPostgresTestDatabase, postgresTestHost, postgresTestUrl } from './services.js';

/** A new, empty PostgreSQL test database (the server was reachable when the file started). */
export async function newPostgresTestDatabase(): Promise<string> {
  const url = await postgresTestUrl();
  if (url === undefined) throw new Error(`PostgreSQL on ${postgresTestHost()} went away`);
  return url;
}

/**
 * The databases of a storage suite on PostgreSQL. CREATE DATABASE costs 20 to 300 ms depending
 * on the disk, so `fresh` places share one database, emptied of `tables` (children first) before
 * each test; `pristine` ones (the tests about migrations) get a database of their own. Call it
 * inside the suite's `describe`: the shared database is dropped after it.
 */
export function postgresTestTarget(tables: readonly (keyof Schema)[]): StorageTestTarget {
  let shared: Promise<string> | undefined;
  after(async () => {
    if (shared) await dropPostgresTestDatabase(await shared);
  });

  async function clear(database: GaletDatabase): Promise<void> {
    for (const table of tables) await database.db.deleteFrom(table).execute();
  }

  return {
    async fresh(): Promise<TestDatabasePlace> {
      shared ??= newPostgresTestDatabase();
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
      const url = await newPostgresTestDatabase();
      return {
        open: (logger) => openDatabase({ url, logger }),
        dispose: () => dropPostgresTestDatabase(url),
      };
    },
  };
}
