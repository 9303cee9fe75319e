import { randomBytes } from 'node:crypto';
import { readFile, unlink } from 'node:fs/promises';
import { join } from 'node:path';
import { applicationKek } from '../server/provider.js';
import {
  APPLICATION_KEK_FILE,
  APPLICATION_KEK_PENDING_FILE,
  type GaletDatabase,
  isStorageError,
  linkDurably,
  MASTER_KEY_ENV,
  MASTER_KEY_FILE,
  MASTER_KEY_PENDING_FILE,
  type MasterKeySource,
  openApplicationKek,
  openDatabase,
  parseMasterKeyHex,
  readKeptApplicationKek,
  readMasterKey,
  readMasterKeyAt,
  renameDurably,
  SecretBox,
  sealApplicationKek,
  unfinishedRotationFiles,
  writePrivateFile,
} from '../storage/index.js';
import {
  censusSealedValues,
  claimDatabaseForRotation,
  rotateSealedValues,
  type SealedCensus,
} from '../storage/master-key-rotation.js';
import { CliInputError } from './fail.js';

/** The variable a new master key may come from (else a random one is made). */
export const NEW_MASTER_KEY_ENV = 'GALET_NEW_MASTER_KEY';

export interface RotateMasterKeyOptions {
  dataDir: string;
  databaseUrl?: string | undefined;
  env: NodeJS.ProcessEnv;
  /** Check and count, write nothing. */
  dryRun?: boolean;
  /** One line of progress or outcome (no newline). */
  out: (line: string) => void;
  now?: () => Date;
}

export type RotateMasterKeyOutcome =
  | { outcome: 'rotated'; fromKeyId: string; toKeyId: string; rewritten: number }
  | { outcome: 'dry-run'; keyId: string; secrets: number }
  | { outcome: 'finished-earlier'; keyId: string };

/**
 * `galet keys rotate-master`: moves every secret sealed under the master key (and the
 * application role's KEK file) to a new master key, with Galet stopped.
 *
 * Crash safety: the new key (master.key.new, or printed for GALET_MASTER_KEY users) and the
 * re-sealed application KEK (application-kek.sealed.new) are written before the database
 * transaction; only after its commit do they replace master.key (kept as master.key.old-<time>)
 * and application-kek.sealed. While a `.new` file exists Galet refuses to start, and the next run
 * looks at which key the database is on: it finishes the renames (committed) or deletes the
 * `.new` files (not committed) before rotating.
 */
export async function rotateMasterKey(
  options: RotateMasterKeyOptions,
): Promise<RotateMasterKeyOutcome> {
  const { dataDir, env, out } = options;
  const current = await readMasterKey({ dataDir, env });
  if (current === undefined) {
    throw new CliInputError(
      `no master key: ${MASTER_KEY_ENV} is not set and ${join(dataDir, MASTER_KEY_FILE)} does not exist (nothing to rotate)`,
    );
  }
  const from = SecretBox.fromKey(current.key);
  const newFromEnv = env[NEW_MASTER_KEY_ENV];
  const given =
    newFromEnv === undefined || newFromEnv === ''
      ? undefined
      : parseMasterKeyHex(newFromEnv, NEW_MASTER_KEY_ENV);
  const database = await openDatabase({
    ...(options.databaseUrl === undefined ? {} : { url: options.databaseUrl }),
    dataDir,
    // One connection: on PostgreSQL, any other Galet connection means a Galet is running.
    poolSize: 1,
    logger: {
      info: (fields, message) =>
        out(`${message}${fields['migration'] ? ` ${fields['migration']}` : ''}`),
      warn: (_fields, message) => out(`warning: ${message}`),
    },
  });
  try {
    await claimDatabaseForRotation(database);
    out(
      `database: ${database.location} (${database.dialect}); current master key ${from.keyId} from ${describeSource(current.source)}`,
    );
    if ((await unfinishedRotationFiles(dataDir)).length > 0) {
      const settled = await settleUnfinishedRotation(database, {
        dataDir,
        current: from,
        source: current.source,
        given,
        dryRun: options.dryRun === true,
        out,
        now: options.now,
      });
      if (settled !== undefined) return settled;
    }

    const census = await censusSealedValues(database, [from]);
    printCensus(census, out);
    if (census.unreadable.length > 0) throw unreadableError(census, from);
    if (options.dryRun === true) {
      out(
        `dry run: ${census.total} secret${census.total === 1 ? '' : 's'} open under master key ${from.keyId} and would be re-encrypted under a new key in one transaction; nothing was written`,
      );
      return { outcome: 'dry-run', keyId: from.keyId, secrets: census.total };
    }

    const newKey = given ?? new Uint8Array(randomBytes(32));
    const to = SecretBox.fromKey(newKey);
    if (to.keyId === from.keyId) {
      throw new CliInputError(`${NEW_MASTER_KEY_ENV} is the current master key (${from.keyId})`);
    }
    const kek = (await readKeptApplicationKek(dataDir, from)) ?? applicationKek(current.key).key;
    const pendingKey = join(dataDir, MASTER_KEY_PENDING_FILE);
    const pendingKek = join(dataDir, APPLICATION_KEK_PENDING_FILE);
    // What must survive a crash right after the commit is written before it.
    if (current.source.kind === 'file') {
      await writePrivateFile(pendingKey, `${Buffer.from(newKey).toString('hex')}\n`);
      out(`new master key ${to.keyId} written to ${pendingKey} (mode 0600)`);
    } else if (given === undefined) {
      out(
        `new master key ${to.keyId} (keep it now: once the rotation commits, the database is readable with it only):`,
      );
      out(`  ${Buffer.from(newKey).toString('hex')}`);
    } else {
      out(`new master key ${to.keyId} from ${NEW_MASTER_KEY_ENV}`);
    }
    await writePrivateFile(pendingKek, sealApplicationKek(to, kek));
    kek.fill(0);

    let rewritten: number;
    let shown = 0;
    try {
      const result = await rotateSealedValues(database, {
        from,
        to,
        // About every tenth of a column, and its end.
        onProgress: ({ column, done, total }) => {
          if (done === 0) shown = 0;
          if (total === 0 || (done < total && done - shown < Math.max(500, total / 10))) return;
          shown = done;
          out(`re-encrypting ${column}: ${done}/${total}`);
        },
      });
      rewritten = result.rewritten;
    } catch (error) {
      const reason = error instanceof Error ? error.message : String(error);
      // A failed commit (a lost connection) may still have committed: the new key is deleted
      // only when the database is seen on the old one.
      const onOldKey = await censusSealedValues(database, [from, to]).then(
        (after) =>
          after.unreadable.length === 0 &&
          Object.keys(after.byKeyId).every((keyId) => keyId === from.keyId),
        () => false,
      );
      if (!onOldKey) {
        throw new CliInputError(
          `master key rotation failed and may have committed (${reason}): the new key stays in ${current.source.kind === 'file' ? pendingKey : given === undefined ? 'the line printed above' : NEW_MASTER_KEY_ENV}; run galet keys rotate-master again to finish or undo it`,
        );
      }
      await unlink(pendingKek).catch(() => undefined);
      if (current.source.kind === 'file') await unlink(pendingKey).catch(() => undefined);
      throw new CliInputError(
        `master key rotation failed, nothing changed (the database stays on master key ${from.keyId}): ${reason}`,
      );
    }
    out(
      `committed: ${rewritten} secret${rewritten === 1 ? '' : 's'} re-encrypted in one transaction`,
    );
    await finishFiles({
      dataDir,
      source: current.source,
      toKeyId: to.keyId,
      given: given !== undefined,
      out,
      now: options.now,
    });
    return { outcome: 'rotated', fromKeyId: from.keyId, toKeyId: to.keyId, rewritten };
  } catch (error) {
    if (isStorageError(error)) throw new CliInputError(error.message);
    throw error;
  } finally {
    await database.close();
  }
}

function describeSource(source: MasterKeySource): string {
  return source.kind === 'environment' ? MASTER_KEY_ENV : source.path;
}

function printCensus(census: SealedCensus, out: (line: string) => void): void {
  for (const column of census.columns) {
    if (column.total === 0) continue;
    const keys = Object.entries(column.byKeyId)
      .map(([keyId, count]) => `${count} under ${keyId}`)
      .join(', ');
    out(`  ${column.column}: ${column.total} (${keys})`);
  }
  out(`${census.total} sealed secret${census.total === 1 ? '' : 's'} in the database`);
}

function unreadableError(census: SealedCensus, from: SecretBox): CliInputError {
  const count = census.unreadable.length;
  const byKey = new Map<string, number>();
  for (const entry of census.unreadable) {
    byKey.set(entry.sealedUnder, (byKey.get(entry.sealedUnder) ?? 0) + 1);
  }
  const under = [...byKey].map(([keyId, n]) => `${n} under ${keyId}`).join(', ');
  const first = census.unreadable[0]!;
  return new CliInputError(
    `${count} stored secret${count === 1 ? ' does' : 's do'} not open under the current master key ${from.keyId} (${under}): ` +
      `is ${MASTER_KEY_ENV} or master.key the key this database was sealed with? Nothing changed. ` +
      `First: ${first.column} of ${first.key}: ${first.reason}`,
  );
}

/**
 * Puts the pending files of a committed rotation in place: the application KEK, then (file
 * source) master.key, the previous one kept as master.key.old-<time>.
 */
async function finishFiles(options: {
  dataDir: string;
  source: MasterKeySource;
  toKeyId: string;
  given: boolean;
  out: (line: string) => void;
  now?: (() => Date) | undefined;
}): Promise<void> {
  const { dataDir, out } = options;
  const pendingKek = join(dataDir, APPLICATION_KEK_PENDING_FILE);
  if (await exists(pendingKek))
    await renameDurably(pendingKek, join(dataDir, APPLICATION_KEK_FILE));
  if (options.source.kind === 'file') {
    const path = options.source.path;
    const pendingKey = join(dataDir, MASTER_KEY_PENDING_FILE);
    if (await exists(pendingKey)) {
      const old = await keepOldKey(path, (options.now ?? (() => new Date()))());
      await renameDurably(pendingKey, path);
      out(`${path} now holds master key ${options.toKeyId}; the previous key is kept as ${old}`);
      out('back up the new master.key; delete the old one once no backup needs it');
    }
  } else {
    out(
      `set ${MASTER_KEY_ENV} to the new master key ${options.toKeyId}${options.given ? ` (${NEW_MASTER_KEY_ENV})` : ' printed above'} for every Galet using this database, then start Galet`,
    );
  }
}

/** Hard-links master.key as master.key.old-<UTC time> (a suffix when taken); returns its path. */
async function keepOldKey(path: string, now: Date): Promise<string> {
  const stamp = now
    .toISOString()
    .replace(/[-:]/g, '')
    .replace(/\.\d+Z$/, 'Z');
  for (let attempt = 1; ; attempt++) {
    const old = `${path}.old-${stamp}${attempt === 1 ? '' : `-${attempt}`}`;
    try {
      await linkDurably(path, old);
      return old;
    } catch (error) {
      if ((error as NodeJS.ErrnoException).code !== 'EEXIST' || attempt >= 100) throw error;
    }
  }
}

async function exists(path: string): Promise<boolean> {
  try {
    await readFile(path);
    return true;
  } catch (error) {
    if ((error as NodeJS.ErrnoException).code === 'ENOENT') return false;
    throw error;
  }
}

/**
 * An earlier run stopped between writing its `.new` files and putting them in place. The key
 * the database is on decides: the new one (it committed) finishes the renames and ends this run;
 * the current one (it did not) deletes the `.new` files and lets this run rotate. An empty
 * database follows the pending files when this run can tell their key, else undoes them.
 */
async function settleUnfinishedRotation(
  database: GaletDatabase,
  options: {
    dataDir: string;
    current: SecretBox;
    source: MasterKeySource;
    given: Uint8Array | undefined;
    dryRun: boolean;
    out: (line: string) => void;
    now?: (() => Date) | undefined;
  },
): Promise<RotateMasterKeyOutcome | undefined> {
  const { dataDir, current, out } = options;
  const pendingKeyPath = join(dataDir, MASTER_KEY_PENDING_FILE);
  const pendingKekPath = join(dataDir, APPLICATION_KEK_PENDING_FILE);
  const pendingKey =
    options.source.kind === 'file' ? await readMasterKeyAt(pendingKeyPath) : undefined;
  const pending =
    pendingKey !== undefined
      ? SecretBox.fromKey(pendingKey)
      : options.given !== undefined
        ? SecretBox.fromKey(options.given)
        : undefined;
  // The key the pending files were made for: master.key.new, else the re-sealed KEK's key id.
  let pendingKeyId = pending?.keyId;
  if (pendingKey === undefined && (await exists(pendingKekPath))) {
    const sealed = Buffer.from((await readFile(pendingKekPath, 'utf8')).trim(), 'hex');
    pendingKeyId = SecretBox.keyIdOf(sealed) ?? undefined;
  }
  out(
    `an earlier rotation did not finish (${(await unfinishedRotationFiles(dataDir)).join(', ')}, for master key ${pendingKeyId ?? 'unknown'})`,
  );
  const boxes = pending === undefined ? [current] : [current, pending];
  const census = await censusSealedValues(database, boxes);
  printCensus(census, out);
  if (census.unreadable.length > 0) {
    const sealedUnder = new Set(census.columns.flatMap((column) => Object.keys(column.byKeyId)));
    if (pending === undefined && pendingKeyId !== undefined && sealedUnder.has(pendingKeyId)) {
      throw new CliInputError(
        `the database is on master key ${pendingKeyId}, not on ${MASTER_KEY_ENV}'s ${current.keyId}: the rotation committed; set ${MASTER_KEY_ENV} (or ${NEW_MASTER_KEY_ENV}) to its new key and run this again to finish`,
      );
    }
    throw new CliInputError(
      `the database is on neither the current master key ${current.keyId} nor the pending one ${pendingKeyId ?? '(unknown)'}: ${census.unreadable
        .slice(0, 3)
        .map((entry) => `${entry.column} ${entry.key}: ${entry.reason}`)
        .join('; ')}`,
    );
  }
  const onKeys = Object.keys(census.byKeyId);
  if (onKeys.length > 1) {
    throw new CliInputError(
      `the database holds secrets under two master keys (${onKeys.join(', ')}): was a Galet running during the rotation? Nothing changed`,
    );
  }
  const databaseKeyId = onKeys[0];
  let committed: boolean;
  if (databaseKeyId !== undefined) {
    committed = databaseKeyId === pendingKeyId;
  } else {
    // Empty database: finishing is safe when the new key is at hand (or already in use).
    committed =
      pendingKeyId !== undefined && (pendingKeyId === current.keyId || pending !== undefined);
  }
  if (committed && pendingKeyId !== undefined) {
    if (options.dryRun) {
      out(`dry run: the rotation to master key ${pendingKeyId} committed; a run would finish it`);
      return { outcome: 'dry-run', keyId: pendingKeyId, secrets: census.total };
    }
    if (
      options.source.kind === 'file' &&
      pendingKey !== undefined &&
      (await exists(pendingKekPath))
    ) {
      // Check before moving it in place that the re-sealed KEK opens under the new key.
      openApplicationKek(
        SecretBox.fromKey(pendingKey),
        await readFile(pendingKekPath, 'utf8'),
        pendingKekPath,
      ).fill(0);
    }
    out(`the database is on master key ${pendingKeyId}: finishing that rotation`);
    await finishFiles({
      dataDir,
      source: options.source,
      toKeyId: pendingKeyId,
      given: options.given !== undefined,
      out,
      now: options.now,
    });
    if (options.source.kind === 'environment' && pendingKeyId === current.keyId) {
      out(`${MASTER_KEY_ENV} already holds it`);
    }
    return { outcome: 'finished-earlier', keyId: pendingKeyId };
  }
  if (databaseKeyId !== undefined && databaseKeyId !== current.keyId) {
    throw new CliInputError(
      `the database is on master key ${databaseKeyId}, not on ${MASTER_KEY_ENV}'s ${current.keyId}: a rotation committed; set ${MASTER_KEY_ENV} to its new key and run this again to finish`,
    );
  }
  if (options.dryRun) {
    out(
      `dry run: that rotation did not commit (the database is on ${current.keyId}); a run would delete its .new files first`,
    );
    return undefined;
  }
  await unlink(pendingKekPath).catch(() => undefined);
  if (options.source.kind === 'file') await unlink(pendingKeyPath).catch(() => undefined);
  out(`it did not commit (the database is on ${current.keyId}): its .new files were deleted`);
  return undefined;
}
