/**
 * The `galet` CLI as a real child process against one real Galet: login (API key, and e-mail
 * with password and TOTP), tenants, users, API keys, the audit log, device import / export /
 * move, updates of applications, gateways, devices and profiles, and how API errors end a
 * command. Each command's `--json` output is checked against what the API holds.
 *
 * The cases run three at a time (each command is a Node start-up, mostly CPU: more at once only
 * made them compete for the two cores of a CI machine): none depends on another's writes, and
 * the two that log in keep their credentials in a home of their own.
 */
import assert from 'node:assert/strict';
import { mkdtemp, readFile, stat, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, before, describe, it } from 'node:test';
import { fromBase32, totp } from '../../src/platform/totp.js';
import { removeDir, startTestGalet, TEST_ADMIN_TOKEN, type TestGalet } from '../helpers/galet.js';
import { type CliRun, galetCli } from './run-cli.js';

const PASSWORD = 'correct horse battery staple';
const APP_KEY = '2b7e151628aed2a6abf7158809cf4f3c';

/**
 * The CLI in a user's environment (their own configuration directory under `home`, no token, no
 * admin.token); `ok` asserts that a command succeeded, `json` parses what it printed.
 */
function asUser(home: string) {
  const env: NodeJS.ProcessEnv = { XDG_CONFIG_HOME: join(home, 'config'), GALET_DATA_DIR: home };
  const cli = (args: string[], input?: string): Promise<CliRun> => galetCli(args, env, input);
  const ok = async (args: string[], input?: string): Promise<CliRun> => {
    const run = await cli(args, input);
    assert.equal(run.status, 0, `galet ${args.join(' ')}: ${run.stderr}`);
    return run;
  };
  // biome-ignore lint/suspicious/noExplicitAny: tests read the printed JSON's fields directly
  const json = async (args: string[], input?: string): Promise<any> =>
    JSON.parse((await ok(args, input)).stdout);
  return { home, env, cli, ok, json };
}

describe('galet CLI: the platform API', { concurrency: 3 }, () => {
  let galet: TestGalet;
  let home: string;
  let admin: string[];
  let tenantId: string;
  let otherTenantId: string;
  let ownerToken: string;

  // The commands given --url and --token; a test that logs in uses a home of its own (newUser).
  const cli = (args: string[], input?: string): Promise<CliRun> => asUser(home).cli(args, input);
  const ok = (args: string[], input?: string): Promise<CliRun> => asUser(home).ok(args, input);
  // biome-ignore lint/suspicious/noExplicitAny: tests read the printed JSON's fields directly
  const json = (args: string[], input?: string): Promise<any> => asUser(home).json(args, input);
  const newUser = async () => asUser(await mkdtemp(join(home, 'user-')));

  before(async () => {
    galet = await startTestGalet();
    home = await mkdtemp(join(tmpdir(), 'galet-cli-home-'));
    admin = ['--url', galet.baseUrl, '--token', TEST_ADMIN_TOKEN];
    const [feurs, roanne] = await Promise.all([
      json(['tenant', 'add', '--name', 'Feurs', '--max-devices', '10', ...admin]),
      json(['tenant', 'add', '--name', 'Roanne', '--kind', 'provider', ...admin]),
    ]);
    tenantId = feurs.id;
    otherTenantId = roanne.id;
    const key = await json([
      'api-key',
      'add',
      '--name',
      'mairie',
      '--tenant',
      tenantId,
      '--role',
      'owner',
      ...admin,
    ]);
    ownerToken = key.token;
  });

  after(async () => {
    await galet.stop();
    await removeDir(galet.dataDir);
    await removeDir(home);
  });

  it('manages tenants: add, list (table and JSON), show, update, rm', async () => {
    const shown = await json(['tenant', 'show', tenantId, ...admin]);
    assert.deepEqual([shown.name, shown.kind, shown.quotas.maxDevices], ['Feurs', 'commune', 10]);
    const [table, listed, updated] = await Promise.all([
      ok(['tenant', 'list', ...admin]),
      json(['tenant', 'list', '--json', '--kind', 'provider', ...admin]),
      json([
        'tenant',
        'update',
        tenantId,
        '--time-zone',
        'Europe/Paris',
        '--location',
        '45.74,4.22',
        '--max-gateways',
        'none',
        ...admin,
      ]),
    ]);
    assert.match(table.stdout, /^ID +NAME +KIND +MAXDEVICES/);
    assert.match(table.stdout, /Feurs +commune +10 /);
    assert.deepEqual(
      listed.tenants.map((t: { name: string }) => t.name),
      ['Roanne'],
    );
    assert.equal(listed.nextCursor, null);
    assert.equal(updated.settings.timeZone, 'Europe/Paris');
    assert.deepEqual(updated.settings.location, { latitude: 45.74, longitude: 4.22 });
    assert.equal(updated.quotas.maxGateways, null);
    const spare = await json(['tenant', 'add', '--name', 'Spare', ...admin]);
    assert.deepEqual(await json(['tenant', 'rm', spare.id, ...admin]), { deleted: spare.id });
    const gone = await cli(['tenant', 'show', spare.id, ...admin]);
    assert.equal(gone.status, 1);
    assert.equal(gone.stderr, `galet: tenant ${spare.id} not found (HTTP 404)\n`);
  });

  it('logs in with an API key into a 0600 file, and uses it without --url or --token', async () => {
    const { home, env, json } = await newUser();
    const login = await json(['login', '--url', galet.baseUrl, '--token', ownerToken]);
    assert.equal(login.kind, 'api-key');
    assert.equal(login.apiKey.tenantId, tenantId);
    const file = join(home, 'config', 'galet', 'credentials.json');
    assert.equal(login.credentialsFile, file);
    assert.equal((await stat(file)).mode & 0o777, 0o600);
    assert.equal((await stat(join(home, 'config', 'galet'))).mode & 0o777, 0o700);
    const stored = JSON.parse(await readFile(file, 'utf8'));
    assert.equal(stored.currentUrl, galet.baseUrl);
    assert.equal(stored.servers[galet.baseUrl].token, ownerToken);

    const me = await json(['whoami']);
    assert.equal(me.kind, 'api-key');
    // The owner key's tenant is implied: the application goes to Feurs.
    const application = await json(['application', 'add', '--name', 'Eau']);
    assert.equal(application.tenantId, tenantId);
    // The environment wins over the login file.
    const fromEnv = JSON.parse(
      (await galetCli(['whoami'], { ...env, GALET_TOKEN: TEST_ADMIN_TOKEN })).stdout,
    );
    assert.equal(fromEnv.kind, 'admin-token');
  });

  it('manages users and logs in with e-mail, password and a TOTP code', async () => {
    const { home, cli, json: asThem } = await newUser();
    const user = await json(
      [
        'user',
        'add',
        '--email',
        'Agent@Feurs.fr',
        '--tenant',
        tenantId,
        '--role',
        'admin',
        '--password-stdin',
        ...admin,
      ],
      `${PASSWORD}\n`,
    );
    assert.equal(user.email, 'agent@feurs.fr');
    assert.deepEqual(user.memberships, [{ tenantId, role: 'admin', applicationId: null }]);
    const [listed, table, wrong] = await Promise.all([
      json(['user', 'list', '--tenant', tenantId, '--json', ...admin]),
      ok(['user', 'list', '--search', 'agent', ...admin]),
      cli(
        ['login', '--url', galet.baseUrl, '--email', 'agent@feurs.fr', '--password-stdin'],
        'not the password\n',
      ),
    ]);
    assert.deepEqual(
      listed.users.map((u: { email: string }) => u.email),
      ['agent@feurs.fr'],
    );
    assert.match(table.stdout, new RegExp(`agent@feurs\\.fr .* ${tenantId}:admin`));

    assert.equal(wrong.status, 1);
    assert.equal(wrong.stderr, 'galet: invalid email or password (HTTP 401)\n');

    const login = await asThem(
      ['login', '--url', galet.baseUrl, '--email', 'agent@feurs.fr', '--password-stdin'],
      `${PASSWORD}\n`,
    );
    assert.equal(login.kind, 'session');
    assert.equal(login.user.id, user.id);
    assert.ok(Date.parse(login.expiresAt) > Date.now());
    const me = await asThem(['whoami']);
    assert.deepEqual([me.kind, me.user.email], ['user', 'agent@feurs.fr']);

    // A second factor, enrolled through the session the CLI keeps.
    const stored = JSON.parse(
      await readFile(join(home, 'config', 'galet', 'credentials.json'), 'utf8'),
    );
    const session = stored.servers[galet.baseUrl].token as string;
    const setup = await fetch(`${galet.baseUrl}/api/v1/auth/totp/setup`, {
      method: 'POST',
      headers: { authorization: `Bearer ${session}` },
    });
    const secret = fromBase32(((await setup.json()) as { secret: string }).secret) as Uint8Array;
    const enable = await fetch(`${galet.baseUrl}/api/v1/auth/totp/enable`, {
      method: 'POST',
      headers: { authorization: `Bearer ${session}`, 'content-type': 'application/json' },
      body: JSON.stringify({ code: totp(secret, Date.now()) }),
    });
    assert.equal(enable.status, 204);
    const loginArgs = ['login', '--url', galet.baseUrl, '--email', 'agent@feurs.fr'];
    const withoutCode = await cli([...loginArgs, '--password-stdin'], `${PASSWORD}\n`);
    assert.equal(withoutCode.status, 1);
    assert.match(withoutCode.stderr, /second factor: give its code with --totp <code>/);
    // The next period's code: the current one was used to enable the factor.
    const code = totp(secret, Date.now() + 30_000);
    const withCode = await asThem([...loginArgs, '--password-stdin', '--totp', code], PASSWORD);
    assert.equal(withCode.kind, 'session');

    const disabled = await json(['user', 'update', user.id, '--disable', ...admin]);
    assert.equal(disabled.disabled, true);
    // Disabling ended the session kept by the CLI.
    const ended = await cli(['whoami']);
    assert.equal(ended.status, 1);
    assert.match(ended.stderr, /\(HTTP 401\)/);
    const logout = await asThem(['logout']);
    assert.deepEqual([logout.loggedOut, logout.kind], [true, 'session']);
    const nothing = await cli(['whoami']);
    assert.equal(nothing.status, 1);
    assert.equal(
      nothing.stderr,
      'galet: no credential for http://127.0.0.1:8080: run galet login, give --token, or set GALET_TOKEN\n',
    );

    const granted = await json([
      'user',
      'grant',
      user.id,
      '--tenant',
      otherTenantId,
      '--role',
      'viewer',
      ...admin,
    ]);
    assert.equal(granted.memberships.length, 2);
    await ok(['user', 'revoke', user.id, '--tenant', otherTenantId, ...admin]);
    assert.equal((await json(['user', 'show', user.id, ...admin])).memberships.length, 1);
    assert.deepEqual(await json(['user', 'rm', user.id, ...admin]), { deleted: user.id });
  });

  it('manages API keys: the token once, list, revoke; then the key is refused', async () => {
    const owner = ['--url', galet.baseUrl, '--token', ownerToken];
    const added = await cli([
      'api-key',
      'add',
      '--name',
      'scada',
      '--role',
      'viewer',
      '--tenant',
      tenantId,
      ...owner,
    ]);
    assert.equal(added.status, 0, added.stderr);
    const key = JSON.parse(added.stdout);
    assert.match(key.token, /^galet_key_/);
    assert.match(added.stderr, /shown this once/);
    assert.equal(key.readOnly, true);
    const listed = await json(['api-key', 'list', '--tenant', tenantId, '--json', ...owner]);
    const found = listed.apiKeys.find((k: { id: string }) => k.id === key.id);
    assert.ok(found, 'listed');
    assert.equal(found.token, undefined, 'never the token again');
    assert.ok(!JSON.stringify(listed).includes(key.token));
    const shown = await json(['api-key', 'show', key.id, ...owner]);
    assert.equal(shown.name, 'scada');
    assert.deepEqual(await json(['api-key', 'rm', key.id, ...owner]), { revoked: key.id });
    const active = await json(['api-key', 'list', '--active', '--json', ...owner]);
    assert.ok(!active.apiKeys.some((k: { id: string }) => k.id === key.id));
    const refused = await cli([
      'application',
      'list',
      '--url',
      galet.baseUrl,
      '--token',
      key.token,
    ]);
    assert.equal(refused.status, 1);
    assert.equal(refused.stderr, `galet: API key ${key.id} has been revoked (HTTP 401)\n`);
  });

  it('answers 403 and 404 as the API does, with their message and exit code 1', async () => {
    const owner = ['--url', galet.baseUrl, '--token', ownerToken];
    // Another tenant is, for the owner of Feurs, a tenant that does not exist.
    const hidden = await cli(['tenant', 'show', otherTenantId, ...owner]);
    assert.equal(hidden.status, 1);
    assert.equal(hidden.stderr, `galet: tenant ${otherTenantId} not found (HTTP 404)\n`);
    const forbidden = await cli(['tenant', 'add', '--name', 'Mine', ...owner]);
    assert.equal(forbidden.status, 1);
    assert.match(
      forbidden.stderr,
      /^galet: this owner API key may not tenants write here \(HTTP 403\)\n$/,
    );
    const quota = await cli(['tenant', 'update', tenantId, '--max-devices', '99', ...owner]);
    assert.equal(quota.status, 1);
    assert.match(quota.stderr, /only the operator sets a tenant's kind and quotas \(HTTP 403\)/);
    const badLimit = await cli(['tenant', 'list', '--limit', '0', ...owner]);
    assert.equal(badLimit.status, 1);
    assert.equal(badLimit.stderr, 'galet: --limit must be between 1 and 1000, got 0\n');
  });

  it('reads the audit log with filters and follows cursors with --all', async () => {
    // Entries of Feurs of this test's own (the others write theirs meanwhile): with the tenant's
    // creation and its owner key, more than the two of one page.
    await Promise.all(
      ['Journal 1', 'Journal 2'].map((name) =>
        json(['application', 'add', '--name', name, '--tenant', tenantId, ...admin]),
      ),
    );
    const created = await json(['audit', '--action', 'tenant.create', '--json', ...admin]);
    assert.ok(created.entries.length >= 2);
    for (const entry of created.entries) assert.equal(entry.action, 'tenant.create');
    const [page, all] = await Promise.all([
      json(['audit', '--limit', '2', '--json', ...admin]),
      cli(['audit', '--limit', '2', '--all', '--json', '--tenant', tenantId, ...admin]),
    ]);
    assert.equal(page.entries.length, 2);
    assert.equal(typeof page.nextCursor, 'string');
    assert.equal(all.status, 0, all.stderr);
    const entries = JSON.parse(all.stdout).entries as { id: number; tenantId: string }[];
    assert.ok(entries.length > 2, 'more than one page');
    assert.equal(new Set(entries.map((e) => e.id)).size, entries.length, 'no entry twice');
    for (const entry of entries) assert.equal(entry.tenantId, tenantId);
    assert.match(all.stderr, /so far, reading on/);
    const table = await ok(['audit', '--limit', '3', ...admin]);
    assert.match(table.stdout, /^ID +TIME +ACTOR +ACTION +OBJECT/);
    assert.match(table.stderr, /more audit entries: --cursor \S+ \(or --all\)/);
  });

  it('imports devices from CSV and JSON (bad lines, dry run), exports them back, moves them', async () => {
    const work = await mkdtemp(join(tmpdir(), 'galet-cli-import-'));
    try {
      const meters = await json([
        'application',
        'add',
        '--name',
        'Compteurs',
        '--tenant',
        tenantId,
        ...admin,
      ]);
      const lights = await json([
        'application',
        'add',
        '--name',
        'Éclairage',
        '--tenant',
        tenantId,
        ...admin,
      ]);
      const header = 'devEui;joinEui;name;macVersion;appKey;tag.street';
      const good = [
        `70b3d57ed0001001;70b3d57ed0000000;Compteur 1;1.0.3;${APP_KEY};Rue Neuve`,
        `70b3d57ed0001002;70b3d57ed0000000;"Compteur 2; cave";1.0.3;${APP_KEY};Place`,
      ];
      const bad = `70b3d57ed0001003;70b3d57ed0000000;Compteur 3;1.0.3;00ff;Rue Haute`;
      const badFile = join(work, 'bad.csv');
      const goodFile = join(work, 'good.csv');
      await writeFile(badFile, `${[header, ...good, bad].join('\n')}\n`);
      await writeFile(goodFile, `${[header, ...good].join('\n')}\n`);
      const importArgs = ['--application', meters.id, ...admin];

      const rejected = await cli(['device', 'import', badFile, ...importArgs]);
      assert.equal(rejected.status, 1);
      assert.match(
        rejected.stdout,
        /^3 devices, 2 valid, 1 invalid, 0 created\nline 4 \(70b3d57ed0001003\): appKey must be 32 hex digits\n$/,
      );
      assert.match(rejected.stderr, /1 of 3 lines are invalid: nothing was written \(HTTP 422\)/);
      const dryRun = await cli(['device', 'import', badFile, '--dry-run', '--json', ...importArgs]);
      assert.equal(dryRun.status, 1);
      const report = JSON.parse(dryRun.stdout);
      assert.deepEqual(
        [report.dryRun, report.total, report.valid, report.invalid, report.created],
        [true, 3, 2, 1, 0],
      );
      assert.deepEqual(report.errors[0].line, 4);
      assert.match(dryRun.stderr, /dry run: nothing was written/);
      const none = await json(['device', 'list', '--application', meters.id, '--json', ...admin]);
      assert.deepEqual(none.devices, [], 'nothing written');

      const imported = await ok(['device', 'import', goodFile, ...importArgs]);
      assert.equal(imported.stdout, '2 devices, 2 valid, 0 invalid, 2 created\n');
      const jsonFile = join(work, 'more.json');
      await writeFile(
        jsonFile,
        JSON.stringify([
          {
            devEui: '70b3d57ed0001004',
            joinEui: '70b3d57ed0000000',
            name: 'Lampe',
            macVersion: '1.0.3',
            appKey: APP_KEY,
          },
        ]),
      );
      const fromJson = await json([
        'device',
        'import',
        jsonFile,
        '--json',
        '--application',
        lights.id,
        ...admin,
      ]);
      assert.equal(fromJson.created, 1);

      // Export, remove, import the export again (with the keys it never holds): the same devices.
      const exportFile = join(work, 'export.csv');
      await ok(['device', 'export', '--application', meters.id, '--out', exportFile, ...admin]);
      const exported = await readFile(exportFile, 'utf8');
      assert.ok(!exported.includes(APP_KEY), 'no key in an export');
      const exportedJson = await json([
        'device',
        'export',
        '--format',
        'json',
        '--application',
        meters.id,
        ...admin,
      ]);
      assert.deepEqual(
        exportedJson.devices.map((d: { devEui: string; name: string; tags: object }) => [
          d.devEui,
          d.name,
          d.tags,
        ]),
        [
          ['70b3d57ed0001001', 'Compteur 1', { street: 'Rue Neuve' }],
          ['70b3d57ed0001002', 'Compteur 2; cave', { street: 'Place' }],
        ],
      );
      await Promise.all(
        ['70b3d57ed0001001', '70b3d57ed0001002'].map((eui) => ok(['device', 'rm', eui, ...admin])),
      );
      const [exportHeader, ...rows] = exported.trimEnd().split(/\r?\n/);
      const withKeys = [`${exportHeader},appKey`, ...rows.map((row) => `${row},${APP_KEY}`)].join(
        '\n',
      );
      await writeFile(join(work, 'again.csv'), `${withKeys}\n`);
      await ok(['device', 'import', join(work, 'again.csv'), ...admin]);
      const again = await json([
        'device',
        'export',
        '--format',
        'json',
        '--application',
        meters.id,
        ...admin,
      ]);
      const identity = (devices: Record<string, unknown>[]) =>
        devices.map((d) => [
          d['devEui'],
          d['name'],
          d['applicationId'],
          d['macVersion'],
          d['tags'],
        ]);
      assert.deepEqual(identity(again.devices), identity(exportedJson.devices));

      // Move both to the other application; a device that does not exist is named, exit 1.
      const moved = await ok([
        'device',
        'move',
        '70b3d57ed0001001',
        '70b3d57ed0001002',
        '--application',
        lights.id,
        ...admin,
      ]);
      const lines = moved.stdout
        .trimEnd()
        .split('\n')
        .map((line) => JSON.parse(line));
      assert.deepEqual(
        lines.map((d) => [d.devEui, d.applicationId]),
        [
          ['70b3d57ed0001001', lights.id],
          ['70b3d57ed0001002', lights.id],
        ],
      );
      const partly = await cli([
        'device',
        'move',
        '70b3d57ed0001004',
        '70b3d57ed00010ff',
        '--application',
        meters.id,
        ...admin,
      ]);
      assert.equal(partly.status, 1);
      assert.match(
        partly.stderr,
        /^galet: 70b3d57ed00010ff: device 70b3d57ed00010ff not found \(HTTP 404\)\n/m,
      );
      assert.match(partly.stderr, /1 of 2 devices not moved: 70b3d57ed00010ff/);
      assert.equal(
        (await json(['device', 'show', '70b3d57ed0001004', ...admin])).applicationId,
        meters.id,
      );
    } finally {
      await removeDir(work);
    }
  });

  it('updates and removes applications, gateways, devices and device profiles', async () => {
    const application = await json([
      'application',
      'add',
      '--name',
      'Bâtiments',
      '--tenant',
      tenantId,
      ...admin,
    ]);
    const renamed = await json([
      'application',
      'update',
      application.id,
      '--name',
      'Patrimoine',
      ...admin,
    ]);
    assert.equal(renamed.name, 'Patrimoine');
    assert.equal(
      (await json(['application', 'show', application.id, ...admin])).name,
      'Patrimoine',
    );

    const gateway = await json([
      'gateway',
      'add',
      '--id',
      'aa555a0000000101',
      '--name',
      'Mairie',
      '--tenant',
      tenantId,
      '--tag',
      'site=mairie',
      ...admin,
    ]);
    assert.deepEqual(gateway.tags, { site: 'mairie' });
    const changed = await json([
      'gateway',
      'update',
      'aa555a0000000101',
      '--shared',
      '--location',
      '45.7,4.2,380',
      '--tag',
      'site=église',
      '--tag',
      'floor=3',
      ...admin,
    ]);
    assert.equal(changed.shared, true);
    assert.deepEqual(
      [changed.location.latitude, changed.location.longitude, changed.location.altitude],
      [45.7, 4.2, 380],
    );
    assert.deepEqual(changed.tags, { site: 'église', floor: '3' });
    const listed = await json(['gateway', 'list', '--shared', '--json', ...admin]);
    assert.deepEqual(
      listed.gateways.map((g: { gatewayId: string }) => g.gatewayId),
      ['aa555a0000000101'],
    );
    assert.equal((await json(['gateway', 'show', 'aa555a0000000101', ...admin])).name, 'Mairie');
    assert.deepEqual(await json(['gateway', 'rm', 'aa555a0000000101', ...admin]), {
      deleted: 'aa555a0000000101',
    });

    const profile = await json([
      'device-profile',
      'add',
      '--name',
      'Capteur',
      '--tenant',
      tenantId,
      ...admin,
    ]);
    const profileChanged = await json([
      'device-profile',
      'update',
      profile.id,
      '--max-dr',
      '4',
      '--rx2-dr',
      '3',
      ...admin,
    ]);
    assert.deepEqual(
      [profileChanged.adr.maxDr, profileChanged.adr.minDr, profileChanged.rx2Dr],
      [4, 0, 3],
    );

    await json([
      'device',
      'add',
      '--dev-eui',
      '70b3d57ed0002001',
      '--join-eui',
      '70b3d57ed0000000',
      '--name',
      'Salle',
      '--application',
      application.id,
      '--app-key',
      APP_KEY,
      '--tag',
      'room=101',
      ...admin,
    ]);
    const device = await json([
      'device',
      'update',
      '70b3d57ed0002001',
      '--name',
      'Salle des fêtes',
      '--device-profile',
      profile.id,
      '--class',
      'C',
      '--tag',
      'room=102',
      ...admin,
    ]);
    assert.deepEqual(
      [device.name, device.deviceProfileId, device.deviceClass, device.tags],
      ['Salle des fêtes', profile.id, 'C', { room: '102' }],
    );
    const cleared = await json([
      'device',
      'update',
      '70b3d57ed0002001',
      '--device-profile',
      'none',
      '--no-tags',
      ...admin,
    ]);
    assert.deepEqual([cleared.deviceProfileId, cleared.tags], [null, {}]);
    const table = await ok(['device', 'list', '--tenant', tenantId, '--search', 'salle', ...admin]);
    assert.match(table.stdout, /^DEVEUI +NAME +APPLICATION/);
    assert.match(table.stdout, /70b3d57ed0002001 +Salle des fêtes/);
    const stillUsed = await cli(['application', 'rm', application.id, ...admin]);
    assert.equal(stillUsed.status, 1);
    assert.match(stillUsed.stderr, /\(HTTP 409\)/);
    await ok(['device', 'rm', '70b3d57ed0002001', ...admin]);
    assert.deepEqual(await json(['application', 'rm', application.id, ...admin]), {
      deleted: application.id,
    });
  });
});
