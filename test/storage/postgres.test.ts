import { after, describe, it } from 'node:test';
import { type GaletDatabase, openDatabase } from '../../src/storage/index.js';
import {
  dropPostgresTestDatabase,
  postgresReachable,
  postgresTestHost,
  postgresTestUrl,
  skipOrFail,
} from '../helpers/services.js';
import { storageSuite, type TestDatabasePlace } from './storage-suite.js';

const reachable = await postgresReachable();

async function newTestDatabase(): Promise<string> {
  const url = await postgresTestUrl();
  if (url === undefined) throw new Error(`PostgreSQL on ${postgresTestHost()} went away`);
  return url;
}

/** Every table, children first. */
const TABLES = [
  'events',
  'downlink_queue',
  'dev_nonces',
  'device_sessions',
  'devices',
  'device_profiles',
  'gateways',
  'applications',
] as const;

async function clear(database: GaletDatabase): Promise<void> {
  for (const table of TABLES) await database.db.deleteFrom(table).execute();
}

describe('storage on PostgreSQL', () => {
  if (!reachable) {
    it('needs a PostgreSQL server', (t) => {
      skipOrFail(t, `PostgreSQL on ${postgresTestHost()} is not reachable`);
    });
    return;
  }

  // CREATE DATABASE costs 20 to 300 ms depending on the disk, so most tests share one database,
  // emptied before each test; the tests about migrations get a database of their own.
  let shared: Promise<string> | undefined;
  after(async () => {
    if (shared) await dropPostgresTestDatabase(await shared);
  });

  storageSuite({
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
