/**
 * Join servers chosen by JoinEUI (issue 5), with two servers on 127.0.0.1: a Galet whose
 * `joinServers` table sends one JoinEUI prefix to a join server answering Backend Interfaces
 * JoinReq over HTTP (its own database, root keys and KEKs), and one JoinEUI range to a port
 * nobody listens on. Simulated devices join through a simulated Semtech UDP gateway.
 */
import assert from 'node:assert/strict';
import { randomBytes } from 'node:crypto';
import { mkdtemp, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { describe, it } from 'node:test';
import { listenHttpJoinServer } from '../../src/join/http-join-server.js';
import { LocalJoinServer } from '../../src/join/join-server.js';
import type { Logger } from '../../src/logger.js';
import { unwrapKey } from '../../src/lorawan/crypto/key-wrap.js';
import { bytesToHex } from '../../src/lorawan/index.js';
import { StorageJoinServerStore } from '../../src/server/stores.js';
import { SimulatedDevice } from '../../src/sim/device.js';
import { createStorage, openDatabase, SecretBox } from '../../src/storage/index.js';
import { removeDir, startTestGalet, TEST_ADMIN_TOKEN } from '../helpers/galet.js';
import { freePort } from '../helpers/sockets.js';
import { ScenarioNetwork } from '../scenarios/helpers.js';

const GW = 'aa555a0000000c01';
const ROUTED_JOIN_EUI = '70b3d57ed0000042'; // in 70b3d57ed0000000/36
const UNREACHABLE_JOIN_EUI = '70b3d57ef0000010'; // in the range 70b3d57ef0000000..70b3d57ef00000ff
const LOCAL_JOIN_EUI = '0000000000000001'; // in no entry: the fallback

/** A logger that keeps every line (level, fields, message). */
function recordingLogger(lines: { level: string; fields: object; message: string }[]): Logger {
  const at =
    (level: string) =>
    (fields: object, message?: string): void => {
      lines.push({ level, fields, message: message ?? '' });
    };
  const logger: Logger = {
    debug: at('debug'),
    info: at('info'),
    warn: at('warn'),
    error: at('error'),
    child: () => logger,
  };
  return logger;
}

function otaaDevice(devEui: string, joinEui: string, appKey: Uint8Array): SimulatedDevice {
  return new SimulatedDevice({
    devEui,
    lorawanVersion: '1.0.4',
    activation: { mode: 'otaa', joinEui, appKey },
  });
}

describe('join servers chosen by JoinEUI', () => {
  it('joins through the configured join server, falls back to the local one, survives an unreachable one', async () => {
    const dir = await mkdtemp(join(tmpdir(), 'galet-join-servers-'));
    const networkKek = new Uint8Array(randomBytes(16));
    const applicationKek = new Uint8Array(randomBytes(16));
    const kekFile = join(dir, 'js.kek');
    await writeFile(kekFile, `${bytesToHex(networkKek)}\n`, { mode: 0o600 });
    const unreachableKekFile = join(dir, 'other.kek');
    await writeFile(unreachableKekFile, `${randomBytes(16).toString('hex')}\n`, { mode: 0o600 });

    // The join server: its own database with the routed device's AppKey.
    const jsDatabase = await openDatabase({ dataDir: join(dir, 'js') });
    const jsStorage = createStorage(jsDatabase, SecretBox.fromKey(randomBytes(32)));
    const routedAppKey = new Uint8Array(randomBytes(16));
    const routedDevEui = '00000000000c0001';
    const jsApplication = await jsStorage.applications.create({ name: 'vendor join server' });
    await jsStorage.devices.create({
      devEui: routedDevEui,
      joinEui: ROUTED_JOIN_EUI,
      name: 'routed',
      applicationId: jsApplication.id,
      macVersion: '1.0.4',
      deviceClass: 'A',
      activation: 'otaa',
      appKey: routedAppKey,
    });
    const jsLog: { level: string; fields: object; message: string }[] = [];
    const joinServer = await listenHttpJoinServer({
      host: '127.0.0.1',
      port: 0,
      joinServer: new LocalJoinServer(new StorageJoinServerStore(jsStorage)),
      keks: {
        network: { label: 'network.example', key: networkKek },
        application: { label: 'application.example', key: applicationKek },
      },
      logger: recordingLogger(jsLog),
    });

    const networkLog: { level: string; fields: object; message: string }[] = [];
    const unreachableUrl = `http://127.0.0.1:${await freePort()}/bi`;
    const galet = await startTestGalet({
      dataDir: join(dir, 'network'),
      logger: recordingLogger(networkLog),
      joinServers: [
        {
          joinEuiPrefix: '70b3d57ed0000000/36',
          url: joinServer.url,
          kekLabel: 'network.example',
          kekFile,
          name: 'vendor-js',
        },
        {
          joinEuiRange: { first: '70b3d57ef0000000', last: '70b3d57ef00000ff' },
          url: unreachableUrl,
          kekLabel: 'other.example',
          kekFile: unreachableKekFile,
          name: 'offline-js',
        },
      ],
    });
    const net = await ScenarioNetwork.attach(
      {
        baseUrl: galet.baseUrl,
        udpPort: galet.udpPort,
        adminToken: TEST_ADMIN_TOKEN,
        dataDir: galet.dataDir,
      },
      [{ gatewayId: GW }],
    );
    try {
      // The routed device is known to the network without keys: they are the join server's.
      for (const [devEui, joinEui] of [
        [routedDevEui, ROUTED_JOIN_EUI],
        ['00000000000c0003', UNREACHABLE_JOIN_EUI],
      ] as const) {
        await galet.storage.devices.create({
          devEui,
          joinEui,
          name: devEui,
          applicationId: net.applicationId,
          macVersion: '1.0.4',
          deviceClass: 'A',
          activation: 'otaa',
          rootKeysElsewhere: true,
        });
        galet.network.deviceChanged(devEui);
      }
      const localAppKey = new Uint8Array(randomBytes(16));
      const localDevEui = '00000000000c0002';
      const created = await galet.request('POST', '/api/v1/devices', {
        devEui: localDevEui,
        joinEui: LOCAL_JOIN_EUI,
        name: 'local',
        applicationId: net.applicationId,
        macVersion: '1.0.4',
        appKey: bytesToHex(localAppKey),
      });
      assert.equal(created.status, 201, JSON.stringify(created.json));

      // 1. The JoinEUI in the prefix: joined through the join server over HTTP.
      const routed = otaaDevice(routedDevEui, ROUTED_JOIN_EUI, routedAppKey);
      await net.join(routed);
      // The join server answered (the network holds no AppKey to answer with itself).
      assert.deepEqual(
        jsLog.filter((line) => line.message === 'device joined through Backend Interfaces'),
        [
          {
            level: 'info',
            fields: { network: 'unauthenticated', devEui: routedDevEui, messageType: 'JoinAns' },
            message: 'device joined through Backend Interfaces',
          },
        ],
      );
      const session = await galet.storage.deviceSessions.get(routedDevEui);
      const deviceKeys = routed.sessionKeys();
      assert.ok(session !== undefined && deviceKeys !== undefined && 'nwkSKey' in deviceKeys);
      assert.equal(session.keys.lorawan, '1.0');
      // The network got the NwkSKey (unwrapped with the shared KEK) and the AppSKey wrapped only.
      assert.deepEqual(session.keys.lorawan === '1.0' && session.keys.nwkSKey, deviceKeys.nwkSKey);
      assert.equal(session.keys.appSKey, undefined);
      assert.equal(session.keys.appSKeyEnvelope?.kekLabel, 'application.example');
      assert.deepEqual(
        unwrapKey(applicationKek, session.keys.appSKeyEnvelope!.aesKey),
        deviceKeys.appSKey,
      );
      // Its uplinks pass the network's MIC check with those keys.
      const { event } = await net.uplink(routed, { fPort: 3, payload: Buffer.from('routed') });
      assert.equal(event.deviceInfo.devEui, routedDevEui);
      assert.equal(
        await net.metric('galet_join_servers_joins_accepted_total{kind="vendor-js"}'),
        1,
      );

      // 2. A JoinEUI in no entry: the local join server, as before.
      const local = otaaDevice(localDevEui, LOCAL_JOIN_EUI, localAppKey);
      await net.join(local);
      assert.ok(await galet.storage.deviceSessions.get(localDevEui));
      assert.equal(await net.metric('galet_join_servers_join_requests_total{kind="vendor-js"}'), 1);

      // 3. A JoinEUI whose join server does not answer: refused with a reason, counted, logged.
      const stranded = otaaDevice('00000000000c0003', UNREACHABLE_JOIN_EUI, new Uint8Array(16));
      net.transmit(stranded, stranded.joinRequest());
      await net.waitForMetric(
        'galet_join_servers_join_requests_unanswered_total{kind="offline-js"}',
        1,
      );
      const logEvent = await net.waitForEvent(
        '00000000000c0003',
        (e) => e.event === 'log' && /offline-js .*unreachable: ECONNREFUSED/.test(e.description),
        'log event naming the unreachable join server',
      );
      assert.equal(logEvent.level, 'ERROR');
      const warned = networkLog.find(
        (line) => line.message === 'join server did not answer the JoinReq',
      );
      assert.deepEqual(
        { level: warned?.level, fields: warned?.fields },
        {
          level: 'warn',
          fields: {
            joinServer: 'offline-js',
            devEui: '00000000000c0003',
            messageType: 'JoinReq',
            error: `join server offline-js (${unreachableUrl}) unreachable: ECONNREFUSED`,
          },
        },
      );
      assert.equal(stranded.activated, false);
      assert.equal(await galet.storage.deviceSessions.get('00000000000c0003'), undefined);
      assert.equal(
        await net.metric('galet_join_servers_joins_refused_total{kind="offline-js"}'),
        0,
      );

      // The network carries on: the other devices still send.
      await net.uplink(local, { fPort: 1, payload: Buffer.from('still here') });
      await net.uplink(routed, { fPort: 3, payload: Buffer.from('routed again') });
      // No key of the join server's ever reached the network's logs.
      const logged = JSON.stringify(networkLog);
      for (const secret of [routedAppKey, deviceKeys.appSKey, networkKek, applicationKek]) {
        assert.equal(logged.includes(bytesToHex(secret)), false);
      }
    } finally {
      await net.close();
      await galet.stop();
      await joinServer.close();
      await jsDatabase.close();
      await removeDir(dir);
    }
  });

  it('refuses to start with overlapping JoinEUI entries or an unreadable KEK, naming the entry', async () => {
    const dir = await mkdtemp(join(tmpdir(), 'galet-join-servers-bad-'));
    try {
      const kekFile = join(dir, 'js.kek');
      await writeFile(kekFile, `${randomBytes(16).toString('hex')}\n`, { mode: 0o600 });
      const entry = { url: 'http://127.0.0.1:1/bi', kekLabel: 'js', kekFile };
      await assert.rejects(
        startTestGalet({
          dataDir: join(dir, 'overlap'),
          joinServers: [
            { ...entry, joinEuiPrefix: '70b3d57ed0000000/36' },
            { ...entry, joinEuiRange: { first: '70b3d57ed00000f0', last: '70b3d57ee0000000' } },
          ],
        }),
        /joinServers\[1\] \(70b3d57ed00000f0\.\.70b3d57ee0000000\) overlaps joinServers\[0\] \(70b3d57ed0000000\/36\)/,
      );
      await assert.rejects(
        startTestGalet({
          dataDir: join(dir, 'missing'),
          joinServers: [
            { ...entry, kekFile: join(dir, 'none.kek'), joinEuiPrefix: '7000000000000000/4' },
          ],
        }),
        /joinServers\[0\]: cannot read kekFile .*none\.kek/,
      );
    } finally {
      await rm(dir, { recursive: true, force: true });
    }
  });
});
