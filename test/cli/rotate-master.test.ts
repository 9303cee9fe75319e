/**
 * `galet keys rotate-master` as an operator runs it: the real CLI in a child process, on a data
 * directory (SQLite, and PostgreSQL when reachable) holding every kind of sealed secret.
 */
import assert from 'node:assert/strict';
import { spawn } from 'node:child_process';
import { randomBytes } from 'node:crypto';
import { mkdtemp, readdir, readFile, rm, stat, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, describe, it } from 'node:test';
import { applicationKek } from '../../src/server/provider.js';
import {
  APPLICATION_KEK_PENDING_FILE,
  createStorage,
  isStorageError,
  loadOrCreateMasterKey,
  MASTER_KEY_PENDING_FILE,
  openDatabase,
  readKeptApplicationKek,
  SecretBox,
  sealApplicationKek,
} from '../../src/storage/index.js';
import { rotateSealedValues } from '../../src/storage/master-key-rotation.js';
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
  type StoredSecrets,
  storeEverySecret,
} from '../storage/master-key-fixtures.js';
import { cliEntry } from './built-cli.js';
import { galetCli } from './run-cli.js';

const dirs: string[] = [];
after(async () => {
  for (const dir of dirs) await rm(dir, { recursive: true, force: true });
});

async function newDataDir(): Promise<string> {
  const dir = await mkdtemp(join(tmpdir(), 'galet-rotate-cli-'));
  dirs.push(dir);
  return dir;
}

/** A data directory as a stopped Galet leaves it: master key, database with every kind of secret. */
async function populatedDataDir(
  options: { databaseUrl?: string; env?: NodeJS.ProcessEnv } = {},
): Promise<{ dataDir: string; masterKey: Uint8Array; stored: StoredSecrets }> {
  const dataDir = await newDataDir();
  const masterKey = await loadOrCreateMasterKey({ dataDir, env: options.env ?? {} });
  const database = await openDatabase({ dataDir, ...urlOption(options.databaseUrl) });
  try {
    const stored = await storeEverySecret(createStorage(database, SecretBox.fromKey(masterKey)));
    return { dataDir, masterKey, stored };
  } finally {
    await database.close();
  }
}

function urlOption(databaseUrl: string | undefined): { url?: string } {
  return databaseUrl === undefined ? {} : { url: databaseUrl };
}

async function readsUnder(
  dataDir: string,
  key: Uint8Array,
  stored: StoredSecrets,
  databaseUrl?: string,
): Promise<void> {
  const database = await openDatabase({ dataDir, ...urlOption(databaseUrl) });
  try {
    await assertEverySecretReads(createStorage(database, SecretBox.fromKey(key)), stored);
  } finally {
    await database.close();
  }
}

async function readsNotUnder(
  dataDir: string,
  key: Uint8Array,
  stored: StoredSecrets,
  databaseUrl?: string,
): Promise<void> {
  const database = await openDatabase({ dataDir, ...urlOption(databaseUrl) });
  try {
    await assertNoSecretReads(database, SecretBox.fromKey(key), stored);
  } finally {
    await database.close();
  }
}

async function keyFile(path: string): Promise<Uint8Array> {
  return new Uint8Array(Buffer.from((await readFile(path, 'utf8')).trim(), 'hex'));
}

/** The .new files a rotation to `newKey` writes before its transaction, as a crash leaves them. */
async function writePendingFiles(dataDir: string, newKey: Uint8Array, kek: Uint8Array) {
  await writeFile(join(dataDir, MASTER_KEY_PENDING_FILE), Buffer.from(newKey).toString('hex'), {
    mode: 0o600,
  });
  await writeFile(
    join(dataDir, APPLICATION_KEK_PENDING_FILE),
    sealApplicationKek(SecretBox.fromKey(newKey), kek),
    { mode: 0o600 },
  );
}

function rotate(dataDir: string, extra: string[] = [], env: NodeJS.ProcessEnv = {}) {
  return galetCli(['keys', 'rotate-master', '--data-dir', dataDir, ...extra], {
    GALET_MASTER_KEY: '',
    GALET_NEW_MASTER_KEY: '',
    GALET_DATABASE_URL: '',
    GALET_CONFIG: undefined,
    ...env,
  });
}

describe('galet keys rotate-master (SQLite, master.key)', () => {
  it('checks in a dry run, refuses while the database is in use, then rotates and keeps the old key', async () => {
    const { dataDir, masterKey, stored } = await populatedDataDir();
    const oldKeyId = SecretBox.fromKey(masterKey).keyId;

    const dry = await rotate(dataDir, ['--dry-run']);
    assert.equal(dry.status, 0, dry.stderr);
    assert.match(dry.stdout, new RegExp(`current master key ${oldKeyId}`));
    assert.match(dry.stdout, /devices\.app_key_enc: 3 \(3 under [0-9a-f]{8}\)/);
    assert.match(dry.stdout, /dry run: 20 secrets open under master key [0-9a-f]{8}/);
    assert.deepEqual(await keyFile(join(dataDir, 'master.key')), masterKey);
    assert.deepEqual(
      (await readdir(dataDir)).filter((name) => name.includes('.new') || name.includes('.old')),
      [],
    );

    // A running Galet holds the database open: refused, nothing written.
    const running = await openDatabase({ dataDir });
    await running.db.selectFrom('devices').select('dev_eui').execute();
    const refused = await rotate(dataDir);
    await running.close();
    assert.equal(refused.status, 1);
    assert.match(refused.stderr, /in use by another process \(is Galet still running\?\)/);
    assert.deepEqual(await keyFile(join(dataDir, 'master.key')), masterKey);
    await readsUnder(dataDir, masterKey, stored);

    const rotated = await rotate(dataDir);
    assert.equal(rotated.status, 0, rotated.stderr);
    assert.match(rotated.stdout, /re-encrypting devices\.app_key_enc: 3\/3/);
    assert.match(rotated.stdout, /committed: 20 secrets re-encrypted in one transaction/);
    const newKey = await keyFile(join(dataDir, 'master.key'));
    assert.notDeepEqual(newKey, masterKey);
    assert.equal((await stat(join(dataDir, 'master.key'))).mode & 0o777, 0o600);
    const old = (await readdir(dataDir)).filter((name) => name.startsWith('master.key.old-'));
    assert.equal(old.length, 1);
    assert.match(old[0]!, /^master\.key\.old-\d{8}T\d{6}Z$/);
    assert.deepEqual(await keyFile(join(dataDir, old[0]!)), masterKey);
    assert.equal((await stat(join(dataDir, old[0]!))).mode & 0o777, 0o600);
    assert.ok(!rotated.stdout.includes(Buffer.from(newKey).toString('hex')), 'key not printed');
    assert.ok(!rotated.stdout.includes(Buffer.from(masterKey).toString('hex')));
    await readsUnder(dataDir, newKey, stored);
    await readsNotUnder(dataDir, masterKey, stored);

    // The provider's application KEK outlives the rotation: envelopes the network holds still open.
    const kek = applicationKek(masterKey).key;
    assert.deepEqual(await readKeptApplicationKek(dataDir, SecretBox.fromKey(newKey)), kek);
    assert.deepEqual(await loadOrCreateMasterKey({ dataDir, env: {} }), newKey);

    // A second rotation moves the kept KEK along.
    const again = await rotate(dataDir);
    assert.equal(again.status, 0, again.stderr);
    const third = await keyFile(join(dataDir, 'master.key'));
    await readsUnder(dataDir, third, stored);
    assert.deepEqual(await readKeptApplicationKek(dataDir, SecretBox.fromKey(third)), kek);
    assert.equal(
      (await readdir(dataDir)).filter((name) => name.startsWith('master.key.old-')).length,
      2,
    );
  });

  it('finishes a rotation that stopped after its commit, and undoes one that stopped before', async () => {
    // Stopped after the commit: the database is on the new key, the files are still .new.
    const committed = await populatedDataDir();
    const newKey = new Uint8Array(randomBytes(32));
    const kek = applicationKek(committed.masterKey).key;
    await writePendingFiles(committed.dataDir, newKey, kek);
    const database = await openDatabase({ dataDir: committed.dataDir });
    await rotateSealedValues(database, {
      from: SecretBox.fromKey(committed.masterKey),
      to: SecretBox.fromKey(newKey),
    });
    await database.close();
    await assert.rejects(
      loadOrCreateMasterKey({ dataDir: committed.dataDir, env: {} }),
      (error: unknown) =>
        isStorageError(error, 'INVALID_MASTER_KEY') && /unfinished/.test(error.message),
    );
    const finished = await rotate(committed.dataDir);
    assert.equal(finished.status, 0, finished.stderr);
    assert.match(finished.stdout, /an earlier rotation did not finish/);
    assert.match(finished.stdout, /finishing that rotation/);
    assert.deepEqual(await keyFile(join(committed.dataDir, 'master.key')), newKey);
    await readsUnder(committed.dataDir, newKey, committed.stored);
    assert.deepEqual(
      await readKeptApplicationKek(committed.dataDir, SecretBox.fromKey(newKey)),
      kek,
    );

    // Stopped before the commit: the database is still on the old key.
    const uncommitted = await populatedDataDir();
    const abandoned = new Uint8Array(randomBytes(32));
    await writePendingFiles(
      uncommitted.dataDir,
      abandoned,
      applicationKek(uncommitted.masterKey).key,
    );
    const redone = await rotate(uncommitted.dataDir);
    assert.equal(redone.status, 0, redone.stderr);
    assert.match(redone.stdout, /it did not commit .*: its \.new files were deleted/);
    assert.match(redone.stdout, /committed: 20 secrets/);
    const rotatedKey = await keyFile(join(uncommitted.dataDir, 'master.key'));
    assert.notDeepEqual(rotatedKey, abandoned);
    assert.notDeepEqual(rotatedKey, uncommitted.masterKey);
    await readsUnder(uncommitted.dataDir, rotatedKey, uncommitted.stored);
  });
});

describe('galet keys rotate-master killed in the middle of its transaction', () => {
  it('leaves every secret under the old key; the next run undoes the .new files and rotates', async () => {
    const dataDir = await newDataDir();
    const masterKey = await loadOrCreateMasterKey({ dataDir, env: {} });
    const database = await openDatabase({ dataDir });
    const storage = createStorage(database, SecretBox.fromKey(masterKey));
    const application = await storage.applications.create({ name: 'crash' });
    const devices = Array.from({ length: 6000 }, (_, index) => ({
      devEui: (0x0a00_0000_0000_0000n + BigInt(index)).toString(16).padStart(16, '0'),
      joinEui: '70b3d57ed0000000',
      name: `meter ${index}`,
      applicationId: application.id,
      macVersion: '1.0.4' as const,
      deviceClass: 'A' as const,
      activation: 'otaa' as const,
      appKey: new Uint8Array(randomBytes(16)),
    }));
    await storage.devices.createMany(devices);
    await database.close();
    const stored: StoredSecrets = {
      devices: devices.map(({ devEui, appKey }) => ({ devEui, appKey })),
      sessions: [],
      users: [],
      linkTokens: [],
      webhooks: [],
    };

    // Killed (SIGKILL: no clean-up of any kind) once it reports its first rewritten rows.
    const child = spawn(
      process.execPath,
      [cliEntry, 'keys', 'rotate-master', '--data-dir', dataDir],
      {
        env: {
          ...process.env,
          GALET_MASTER_KEY: '',
          GALET_NEW_MASTER_KEY: '',
          GALET_DATABASE_URL: '',
        },
      },
    );
    let output = '';
    const killedAt = await new Promise<string>((resolve, reject) => {
      child.stdout.on('data', (chunk: Buffer) => {
        output += chunk.toString();
        const progress = /re-encrypting devices\.app_key_enc: (\d+)\/6000/.exec(output);
        if (progress !== null && child.exitCode === null) {
          child.kill('SIGKILL');
          resolve(progress[0]);
        }
      });
      child.on('exit', () => reject(new Error(`exited before the kill: ${output}`)));
    });
    await new Promise((resolve) => child.once('close', resolve));
    assert.match(killedAt, /: [1-5]\d\d\d\/6000$/);
    assert.doesNotMatch(output, /committed/);

    // Every secret is still under the old key, and Galet refuses to start until it is settled.
    await readsUnder(dataDir, masterKey, stored);
    assert.deepEqual(await keyFile(join(dataDir, 'master.key')), masterKey);
    await assert.rejects(loadOrCreateMasterKey({ dataDir, env: {} }), /rotation is unfinished/);
    const abandoned = await keyFile(join(dataDir, MASTER_KEY_PENDING_FILE));
    await readsNotUnder(dataDir, abandoned, { ...stored, devices: stored.devices.slice(0, 3) });

    const again = await rotate(dataDir);
    assert.equal(again.status, 0, again.stderr);
    assert.match(again.stdout, /it did not commit .*: its \.new files were deleted/);
    assert.match(again.stdout, /committed: 6000 secrets/);
    await readsUnder(dataDir, await keyFile(join(dataDir, 'master.key')), stored);
  });
});

describe('galet keys rotate-master (GALET_MASTER_KEY)', () => {
  it('prints the new key, or takes it from GALET_NEW_MASTER_KEY without printing it', async () => {
    const oldHex = randomBytes(32).toString('hex');
    const { dataDir, masterKey, stored } = await populatedDataDir({
      env: { GALET_MASTER_KEY: oldHex },
    });
    const printed = await rotate(dataDir, [], { GALET_MASTER_KEY: oldHex });
    assert.equal(printed.status, 0, printed.stderr);
    const shown = /^ {2}([0-9a-f]{64})$/m.exec(printed.stdout)?.[1];
    assert.ok(shown, printed.stdout);
    assert.match(
      printed.stdout,
      /set GALET_MASTER_KEY to the new master key [0-9a-f]{8} printed above/,
    );
    const newKey = new Uint8Array(Buffer.from(shown, 'hex'));
    await readsUnder(dataDir, newKey, stored);
    await readsNotUnder(dataDir, masterKey, stored);
    assert.equal((await readdir(dataDir)).includes('master.key'), false, 'no key file written');

    const chosen = randomBytes(32).toString('hex');
    const given = await rotate(dataDir, [], {
      GALET_MASTER_KEY: shown,
      GALET_NEW_MASTER_KEY: chosen,
    });
    assert.equal(given.status, 0, given.stderr);
    assert.ok(!given.stdout.includes(chosen) && !given.stdout.includes(shown));
    await readsUnder(dataDir, new Uint8Array(Buffer.from(chosen, 'hex')), stored);

    // The old key no longer reads the database: a clear error, nothing changed.
    const stale = await rotate(dataDir, [], { GALET_MASTER_KEY: shown });
    assert.equal(stale.status, 1);
    assert.match(stale.stderr, /20 stored secrets do not open under the current master key/);
    assert.match(
      stale.stderr,
      /\(20 under [0-9a-f]{8}\): is GALET_MASTER_KEY or master.key the key/,
    );
  });
});

const reachable = await postgresReachable();

describe('galet keys rotate-master (PostgreSQL)', () => {
  if (!reachable) {
    it('needs a PostgreSQL server', (t) => {
      skipOrFail(t, `PostgreSQL on ${postgresTestHost()} is not reachable`);
    });
    return;
  }
  it('rotates the database named by --database-url', async () => {
    const url = await postgresTestUrl();
    if (url === undefined) throw new Error('PostgreSQL went away');
    try {
      const { dataDir, masterKey, stored } = await populatedDataDir({ databaseUrl: url });
      const rotated = await rotate(dataDir, ['--database-url', url]);
      assert.equal(rotated.status, 0, rotated.stderr);
      assert.match(rotated.stdout, /\(postgres\)/);
      assert.match(rotated.stdout, /committed: 20 secrets/);
      const newKey = await keyFile(join(dataDir, 'master.key'));
      await readsUnder(dataDir, newKey, stored, url);
      await readsNotUnder(dataDir, masterKey, stored, url);
    } finally {
      await dropPostgresTestDatabase(url);
    }
  });
});
