import { mkdir } from 'node:fs/promises';
import { loadOrCreateAdminToken } from '../api/auth.js';
import type { Logger } from '../logger.js';
import { type GaletDatabase, loadOrCreateMasterKey, openDatabase } from '../storage/index.js';

export type AdminToken = Awaited<ReturnType<typeof loadOrCreateAdminToken>>;

/**
 * What every role's process opens first in its data directory (created mode 0700): the admin
 * token, the master key that seals its keys at rest, and its database (migrated).
 */
export async function openDataDir(options: {
  dataDir: string;
  databaseUrl?: string | undefined;
  env: NodeJS.ProcessEnv;
  logger: Logger;
  /** SQLite: checkpoint the WAL on a thread of its own (default true). */
  sqliteCheckpointThread?: boolean | undefined;
}): Promise<{ adminToken: AdminToken; masterKey: Uint8Array; database: GaletDatabase }> {
  await mkdir(options.dataDir, { recursive: true, mode: 0o700 });
  const adminToken = await loadOrCreateAdminToken(options.dataDir, options.env);
  const masterKey = await loadOrCreateMasterKey({ dataDir: options.dataDir, env: options.env });
  const database = await openDatabase({
    ...(options.databaseUrl === undefined ? {} : { url: options.databaseUrl }),
    dataDir: options.dataDir,
    logger: options.logger.child({ component: 'storage' }),
    walCheckpointThread: options.sqliteCheckpointThread ?? true,
  });
  return { adminToken, masterKey, database };
}
