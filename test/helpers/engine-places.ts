/**
 * Databases that outlive the process or connection that opened them, on either engine: for the
 * tests that restart something on the same data (a provider, two `galet start` processes).
 */
import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import type { TestContext } from 'node:test';
import { newPostgresTestDatabase } from './postgres-places.js';
import {
  dropPostgresTestDatabase,
  postgresReachable,
  postgresTestHost,
  skipOrFail,
} from './services.js';

export const ENGINE_NAMES = ['SQLite', 'PostgreSQL'] as const;
export type EngineName = (typeof ENGINE_NAMES)[number];

const reachable = await postgresReachable();

/**
 * Where `openDatabase` finds the same database again after a close: a new data directory, or a
 * new PostgreSQL database; both removed after the test. undefined: PostgreSQL is not reachable
 * (the test is skipped, or fails when CI requires the services).
 */
export async function reopenablePlace(
  t: TestContext,
  engine: EngineName,
  prefix = 'galet-reopen',
): Promise<{ dataDir: string } | { url: string } | undefined> {
  if (engine === 'SQLite') {
    const dataDir = await mkdtemp(join(tmpdir(), `${prefix}-`));
    t.after(() => rm(dataDir, { recursive: true, force: true }));
    return { dataDir };
  }
  const url = (await roleDatabases(t, engine, ['database']))?.database;
  return url === undefined ? undefined : { url };
}

/**
 * One new PostgreSQL database per role (as two organisations would each have their own),
 * dropped after the test: `{}` on SQLite (each role keeps the file in its data directory);
 * undefined when PostgreSQL is not reachable (skipped, or failed when CI requires it).
 */
export async function roleDatabases<Role extends string>(
  t: TestContext,
  engine: EngineName,
  roles: readonly Role[],
): Promise<Partial<Record<Role, string>> | undefined> {
  if (engine === 'SQLite') return {};
  if (!reachable) {
    skipOrFail(t, `PostgreSQL on ${postgresTestHost()} is not reachable`);
    return undefined;
  }
  const urls: Partial<Record<Role, string>> = {};
  for (const role of roles) {
    const url = await newPostgresTestDatabase();
    t.after(() => dropPostgresTestDatabase(url));
    urls[role] = url;
  }
  return urls;
}
