import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import type { TestContext } from 'node:test';
import { type GaletDatabase, openDatabase } from '../../src/storage/index.js';
import { newPostgresTestDatabase } from './postgres-places.js';
import {
  dropPostgresTestDatabase,
  postgresReachable,
  postgresTestHost,
  skipOrFail,
} from './services.js';

/** A database engine a storage test runs on: a fresh database per test, removed after it. */
export interface TestEngine {
  name: 'SQLite' | 'PostgreSQL';
  /** undefined: PostgreSQL is not reachable (the test is skipped, or fails in CI). */
  open(t: TestContext): Promise<GaletDatabase | undefined>;
}

const reachable = await postgresReachable();

/** SQLite in a temporary directory (named after `prefix`) and a new PostgreSQL database. */
export function testEngines(prefix: string): TestEngine[] {
  return [
    {
      name: 'SQLite',
      async open(t) {
        const dataDir = await mkdtemp(join(tmpdir(), `${prefix}-`));
        const database = await openDatabase({ dataDir });
        t.after(async () => {
          await database.close();
          await rm(dataDir, { recursive: true, force: true });
        });
        return database;
      },
    },
    {
      name: 'PostgreSQL',
      async open(t) {
        if (!reachable) {
          skipOrFail(t, `PostgreSQL on ${postgresTestHost()} is not reachable`);
          return undefined;
        }
        const url = await newPostgresTestDatabase();
        const database = await openDatabase({ url });
        t.after(async () => {
          await database.close();
          await dropPostgresTestDatabase(url);
        });
        return database;
      },
    },
  ];
}
