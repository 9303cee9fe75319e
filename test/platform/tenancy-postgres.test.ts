import { after, describe, it } from 'node:test';
import { sql } from 'kysely';
import { openDatabase } from '../../src/storage/index.js';
import {
  dropPostgresTestDatabase,
  postgresReachable,
  postgresTestHost,
  postgresTestUrl,
  skipOrFail,
} from '../helpers/services.js';
import type { TestDatabasePlace } from '../storage/storage-suite.js';
import { tenancyStorageSuite } from './tenancy-suite.js';

const reachable = await postgresReachable();

describe('tenancy storage on PostgreSQL', () => {
  if (!reachable) {
    it('needs a PostgreSQL server', (t) => {
      skipOrFail(t, `PostgreSQL on ${postgresTestHost()} is not reachable`);
    });
    return;
  }

  // One database for the suite, emptied (every tenant-owned table and what refers to them)
  // before each test.
  let shared: Promise<string | undefined> | undefined;
  after(async () => {
    const url = shared && (await shared);
    if (url) await dropPostgresTestDatabase(url);
  });

  const place = async (): Promise<TestDatabasePlace> => {
    shared ??= postgresTestUrl();
    const url = await shared;
    if (url === undefined) throw new Error(`PostgreSQL on ${postgresTestHost()} went away`);
    let cleared = false;
    return {
      async open(logger) {
        const database = await openDatabase({ url, logger });
        if (!cleared) {
          await sql`truncate tenants, applications, gateways, device_profiles, devices cascade`.execute(
            database.db,
          );
          cleared = true;
        }
        return database;
      },
      dispose: async () => undefined,
    };
  };
  tenancyStorageSuite({ fresh: place, pristine: place });
});
