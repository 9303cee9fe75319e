import assert from 'node:assert/strict';
import { mkdtemp, stat } from 'node:fs/promises';
import { type AddressInfo, createServer } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, before, describe, it } from 'node:test';
import { startGalet } from '../../src/server/galet.js';
import { removeDir, startTestGalet, TEST_ADMIN_TOKEN, type TestGalet } from '../helpers/galet.js';
import { type CliRun, galetCli as runCli } from './run-cli.js';

/** The CLI with an empty configuration directory and data directory: no stored credential. */
function galetCli(args: string[]): Promise<CliRun> {
  return runCli(args, { XDG_CONFIG_HOME: isolatedDir, GALET_DATA_DIR: isolatedDir });
}
const isolatedDir = await mkdtemp(join(tmpdir(), 'galet-cli-config-'));
after(() => removeDir(isolatedDir));

describe('galet CLI against a running server', () => {
  let galet: TestGalet;
  let connection: string[];

  before(async () => {
    galet = await startTestGalet();
    connection = ['--url', galet.baseUrl, '--token', TEST_ADMIN_TOKEN];
  });

  after(async () => {
    await galet.stop();
    await removeDir(galet.dataDir);
  });

  // The commands run side by side (each is a Node start-up, mostly CPU), with the admin token's
  // own Galets; the simulation, which checks downlink timing, then runs alone.
  describe('commands side by side', { concurrency: true }, () => {
    it('adds and lists applications, gateways and devices, queues a downlink and removes a device', async () => {
      const [app, gateway] = await Promise.all([
        galetCli(['application', 'add', '--name', 'Commune', ...connection]),
        galetCli([
          'gateway',
          'add',
          '--id',
          'aa555a0000000009',
          '--name',
          'Église',
          '--latitude',
          '45.5',
          '--longitude',
          '4.3',
          ...connection,
        ]),
      ]);
      assert.equal(app.status, 0, app.stderr);
      const applicationId = JSON.parse(app.stdout).id as string;
      assert.equal(gateway.status, 0, gateway.stderr);
      assert.equal(JSON.parse(gateway.stdout).location.latitude, 45.5);
      const device = await galetCli([
        'device',
        'add',
        '--dev-eui',
        '70b3d57ed0000101',
        '--join-eui',
        '70b3d57ed0000000',
        '--name',
        'frost-9',
        '--application',
        applicationId,
        '--app-key',
        '2b7e151628aed2a6abf7158809cf4f3c',
        ...connection,
      ]);
      assert.equal(device.status, 0, device.stderr);
      const [shown, listed] = (
        await Promise.all([
          galetCli(['device', 'show', '70b3d57ed0000101', ...connection]),
          galetCli(['device', 'list', '--application', applicationId, '--json', ...connection]),
        ])
      ).map((run) => JSON.parse(run.stdout));
      assert.equal(shown.name, 'frost-9');
      assert.equal(shown.macVersion, '1.0.3');
      assert.deepEqual(
        listed.devices.map((d: { devEui: string }) => d.devEui),
        ['70b3d57ed0000101'],
      );
      // ForceRejoinReq: refused by the API for a device that has no 1.1 session, bad type by the CLI.
      const [queued, notJoined, badType] = await Promise.all([
        galetCli(['downlink', '70b3d57ed0000101', '--fport', '5', '--hex', '0150', ...connection]),
        galetCli(['device', 'force-rejoin', '70b3d57ed0000101', ...connection]),
        galetCli(['device', 'force-rejoin', '70b3d57ed0000101', '--type', '1', ...connection]),
      ]);
      assert.equal(queued.status, 0, queued.stderr);
      assert.match(JSON.parse(queued.stdout).id, /^[0-9a-f-]{36}$/);
      assert.equal(notJoined.status, 1);
      assert.match(notJoined.stderr, /has no session \(not joined\) \(HTTP 409\)/);
      assert.equal(badType.status, 1);
      assert.match(badType.stderr, /--type must be 0 or 2/);
      assert.equal((await galetCli(['device', 'rm', '70b3d57ed0000101', ...connection])).status, 0);
      const gone = await galetCli(['device', 'show', '70b3d57ed0000101', ...connection]);
      assert.equal(gone.status, 1);
      assert.match(gone.stderr, /^galet: device 70b3d57ed0000101 not found \(HTTP 404\)\n$/);
    });

    it('adds, lists, shows and removes device profiles, and gives a device one', async () => {
      const added = await galetCli([
        'device-profile',
        'add',
        '--name',
        'Water meters',
        '--no-adr',
        '--min-dr',
        '1',
        '--max-dr',
        '4',
        '--margin-db',
        '7.5',
        '--rx1-delay',
        '2',
        '--rx2-dr',
        '3',
        '--rx2-frequency',
        '869525000',
        '--dev-status-interval',
        '3600',
        '--json-settings',
        '{"adr": {"maxDr": 5}, "uplinkIntervalSeconds": 900, "extraChannels": [{"frequencyHz": 867100000}]}',
        ...connection,
      ]);
      assert.equal(added.status, 0, added.stderr);
      const profile = JSON.parse(added.stdout);
      assert.equal(profile.name, 'Water meters');
      assert.deepEqual(profile.adr, {
        enabled: false,
        minDr: 1,
        maxDr: 4,
        installationMarginDb: 7.5,
      });
      assert.equal(profile.rx1DelaySeconds, 2);
      assert.equal(profile.rx2Dr, 3);
      assert.equal(profile.rx2FrequencyHz, 869_525_000);
      assert.equal(profile.devStatusIntervalSeconds, 3600);
      assert.equal(profile.uplinkIntervalSeconds, 900);
      assert.deepEqual(profile.extraChannels, [{ frequencyHz: 867_100_000, minDr: 0, maxDr: 5 }]);

      const shown = await galetCli(['device-profile', 'show', profile.id, ...connection]);
      assert.deepEqual(JSON.parse(shown.stdout), profile);
      const listed = JSON.parse(
        (await galetCli(['device-profile', 'list', '--json', ...connection])).stdout,
      );
      assert.ok(listed.deviceProfiles.some((p: { id: string }) => p.id === profile.id));

      const app = JSON.parse(
        (await galetCli(['application', 'add', '--name', 'Régie des eaux', ...connection])).stdout,
      );
      const device = await galetCli([
        'device',
        'add',
        '--dev-eui',
        '70b3d57ed0000102',
        '--join-eui',
        '70b3d57ed0000000',
        '--name',
        'meter-2',
        '--application',
        app.id,
        '--app-key',
        '2b7e151628aed2a6abf7158809cf4f3c',
        '--device-profile',
        profile.id,
        ...connection,
      ]);
      assert.equal(device.status, 0, device.stderr);
      assert.equal(JSON.parse(device.stdout).deviceProfileId, profile.id);

      const inUse = await galetCli(['device-profile', 'rm', profile.id, ...connection]);
      assert.equal(inUse.status, 1);
      assert.match(
        inUse.stderr,
        /^galet: device profile .* is still used by 1 device: .*\(HTTP 409\)\n$/,
      );
      assert.equal((await galetCli(['device', 'rm', '70b3d57ed0000102', ...connection])).status, 0);
      const removed = await galetCli(['device-profile', 'rm', profile.id, ...connection]);
      assert.equal(removed.status, 0, removed.stderr);
      assert.deepEqual(JSON.parse(removed.stdout), { deleted: profile.id });
      const gone = await galetCli(['device-profile', 'show', profile.id, ...connection]);
      assert.equal(gone.status, 1);
      assert.match(gone.stderr, /not found \(HTTP 404\)/);
    });

    it('refuses bad device profile options in one line', async () => {
      const badJson = await galetCli([
        'device-profile',
        'add',
        '--name',
        'x',
        '--json-settings',
        '[1]',
        ...connection,
      ]);
      assert.equal(badJson.status, 1);
      assert.match(badJson.stderr, /^galet: --json-settings must be a JSON object, got \[1\]\n$/);
      const badNumber = await galetCli([
        'device-profile',
        'add',
        '--name',
        'x',
        '--min-dr',
        'two',
        ...connection,
      ]);
      assert.equal(badNumber.status, 1);
      assert.match(badNumber.stderr, /^galet: --min-dr must be an integer/);
      const outOfRange = await galetCli([
        'device-profile',
        'add',
        '--name',
        'x',
        '--rx1-delay',
        '20',
        ...connection,
      ]);
      assert.equal(outOfRange.status, 1);
      assert.match(
        outOfRange.stderr,
        /^galet: body\.rx1DelaySeconds must be <= 15 \(HTTP 400\)\n$/,
      );
    });

    it('says in one line when the server cannot be reached or the token is wrong', async () => {
      // A port that was free a moment ago: nothing listens there.
      const probe = createServer();
      await new Promise<void>((resolve) => probe.listen(0, '127.0.0.1', resolve));
      const closedPort = (probe.address() as AddressInfo).port;
      await new Promise((resolve) => probe.close(resolve));
      const unreachable = await galetCli([
        'application',
        'list',
        '--url',
        `http://127.0.0.1:${closedPort}`,
        '--token',
        'x'.repeat(20),
      ]);
      assert.equal(unreachable.status, 1);
      assert.match(
        unreachable.stderr,
        new RegExp(
          `^galet: cannot reach Galet at http://127\\.0\\.0\\.1:${closedPort}: ECONNREFUSED\n$`,
        ),
      );
      const wrongToken = await galetCli([
        'application',
        'list',
        '--url',
        galet.baseUrl,
        '--token',
        'wrong-token-000000',
      ]);
      assert.equal(wrongToken.status, 1);
      assert.match(wrongToken.stderr, /missing or invalid bearer token \(HTTP 401\)/);
    });

    describe('admin token', () => {
      it('is generated on first start in <data-dir>/admin.token (mode 0600) and kept across restarts', async () => {
        const dataDir = join(tmpdir(), `galet-token-test-${process.pid}`);
        const options = {
          dataDir,
          host: '127.0.0.1',
          udpPort: 0,
          httpPort: 0,
          region: 'EU868',
          netId: 0,
          deduplicationWindowMs: 100,
          allowUnknownGateways: false,
          env: {},
        };
        try {
          const first = await startGalet(options);
          await first.close();
          assert.equal(first.adminToken.created, true);
          assert.equal(first.adminToken.source, 'file');
          const mode = (await stat(join(dataDir, 'admin.token'))).mode & 0o777;
          assert.equal(mode, 0o600);
          assert.equal((await stat(dataDir)).mode & 0o777, 0o700);
          const second = await startGalet(options);
          await second.close();
          assert.equal(second.adminToken.created, false);
          assert.equal(second.adminToken.token, first.adminToken.token);
          const fromEnv = await startGalet({
            ...options,
            env: { GALET_ADMIN_TOKEN: 'an-operator-chosen-token' },
          });
          await fromEnv.close();
          assert.equal(fromEnv.adminToken.token, 'an-operator-chosen-token');
          assert.equal(fromEnv.adminToken.source, 'environment');
        } finally {
          await removeDir(dataDir);
        }
      });
    });
  });

  it('simulate --provision registers a fleet and drives it against the server', async () => {
    const run = await galetCli([
      'simulate',
      '--provision',
      ...connection,
      '--server',
      `127.0.0.1:${galet.udpPort}`,
      '--devices',
      '3',
      '--gateways',
      '2',
      '--interval-ms',
      '400',
      '--duration-s',
      '2',
      '--prefix',
      'c1',
    ]);
    assert.equal(run.status, 0, run.stderr);
    const stats = JSON.parse(run.stdout) as Record<string, number>;
    assert.equal(stats['joins'], 3, run.stdout);
    assert.ok(stats['uplinksSent']! >= 3, run.stdout);
    assert.equal(stats['downlinksBadMic'], 0);
    assert.equal(stats['timingErrors'], 0);
    const devices = await galet.request('GET', '/api/v1/devices?limit=1000');
    assert.equal(
      devices.json.devices.filter((d: { devEui: string }) => d.devEui.startsWith('70b3d5c1'))
        .length,
      3,
    );
  });
});
