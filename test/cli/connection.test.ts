import assert from 'node:assert/strict';
import { mkdtemp, readFile, stat, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, before, describe, it } from 'node:test';
import { resolveConnection } from '../../src/cli/connection.js';
import { credentialsPath, removeCredential, saveCredential } from '../../src/cli/credentials.js';
import { removeDir } from '../helpers/galet.js';

describe('the CLI connection: which server, which credential', () => {
  let home: string;
  let env: NodeJS.ProcessEnv;

  before(async () => {
    home = await mkdtemp(join(tmpdir(), 'galet-connection-'));
    env = { XDG_CONFIG_HOME: join(home, 'config'), GALET_DATA_DIR: join(home, 'data') };
  });
  after(() => removeDir(home));

  it('takes the option, then the environment, then the login, then admin.token', async () => {
    assert.deepEqual(resolveConnection({}, env), {
      url: 'http://127.0.0.1:8080',
      token: undefined,
      source: 'none',
    });
    const saved = { kind: 'api-key' as const, token: 'galet_key_a_b', savedAt: 'now' };
    saveCredential('https://galet.example.org', saved, env);
    assert.equal(credentialsPath(env), join(home, 'config', 'galet', 'credentials.json'));
    assert.equal((await stat(credentialsPath(env))).mode & 0o777, 0o600);
    assert.deepEqual(resolveConnection({}, env), {
      url: 'https://galet.example.org',
      token: 'galet_key_a_b',
      source: 'login',
      kind: 'api-key',
    });
    const other = { ...env, GALET_URL: 'http://10.0.0.1:8080/', GALET_TOKEN: 'from-env' };
    assert.deepEqual(resolveConnection({}, other), {
      url: 'http://10.0.0.1:8080',
      token: 'from-env',
      source: 'environment',
    });
    assert.deepEqual(
      resolveConnection({ token: 'given', url: 'https://galet.example.org/' }, other),
      {
        url: 'https://galet.example.org',
        token: 'given',
        source: 'option',
      },
    );
    // Another server than the one logged in to: no credential but the local admin token.
    await writeFile(join(home, 'admin.token'), 'local-admin\n');
    assert.deepEqual(resolveConnection({ url: 'http://127.0.0.1:9', dataDir: home }, env), {
      url: 'http://127.0.0.1:9',
      token: 'local-admin',
      source: 'admin.token',
    });
    assert.throws(() => resolveConnection({ url: 'ftp://x' }, env), /must be an http or https URL/);
  });

  it('refuses an ended session and forgets a server on logout', async () => {
    saveCredential(
      'https://galet.example.org',
      {
        kind: 'session',
        token: 'galet_session_x',
        expiresAt: '2020-01-01T00:00:00.000Z',
        savedAt: 'then',
      },
      env,
    );
    assert.throws(
      () => resolveConnection({}, env),
      /your session on https:\/\/galet\.example\.org ended at 2020-01-01T00:00:00\.000Z: run galet login again/,
    );
    assert.equal(removeCredential('https://galet.example.org', env)?.kind, 'session');
    const file = JSON.parse(await readFile(credentialsPath(env), 'utf8'));
    assert.deepEqual(file, { version: 1, servers: {} });
    assert.equal(removeCredential('https://galet.example.org', env), undefined);
  });

  it('says what is wrong with a credentials file that is not one', async () => {
    await writeFile(credentialsPath(env), '{"servers": 3}');
    assert.throws(
      () => resolveConnection({}, env),
      /is not a galet credentials file .*: remove it and log in again/,
    );
    // An explicit server and token need no file.
    assert.equal(resolveConnection({ url: 'http://127.0.0.1:1', token: 't' }, env).token, 't');
  });
});
