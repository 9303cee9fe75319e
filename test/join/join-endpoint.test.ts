/**
 * The join role serving Backend Interfaces over HTTP (issue 5), with two Galets on 127.0.0.1:
 * the operator's (roles network) routes JoinEUI prefixes to the `joinEndpoint` of a provider's
 * Galet (roles join,application, linked to it), with a bearer token or a client certificate.
 * Simulated devices join and rejoin through a simulated gateway; their uplinks are decrypted
 * on the provider only. Wrong or missing credentials are refused and counted on both sides.
 */
import assert from 'node:assert/strict';
import { randomBytes } from 'node:crypto';
import { mkdtemp, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { describe, it } from 'node:test';
import { encodeValue, type JoinReq } from '../../src/join/backend-interfaces/index.js';
import type { JoinEndpointSetting } from '../../src/join/join-endpoint.js';
import type { JoinServerSetting } from '../../src/join/join-server-directory.js';
import { bytesToHex } from '../../src/lorawan/index.js';
import { type RunningProvider, startProvider } from '../../src/server/start-provider.js';
import { SimulatedDevice } from '../../src/sim/device.js';
import { apiRequest } from '../helpers/api.js';
import { attachNetwork } from '../helpers/attach-network.js';
import { capturingLogger, type LogEntry, metricSample } from '../helpers/capture.js';
import { removeDir, startTestGalet, TEST_ADMIN_TOKEN, type TestGalet } from '../helpers/galet.js';
import { freePort } from '../helpers/sockets.js';
import { APP_KEY, JOIN_EUI, NWK_KEY, type ScenarioNetwork, waitFor } from '../scenarios/helpers.js';
import { findOpenssl, makeCertificates } from './certificates.js';
import { joinRequest } from './helpers.js';

const GW = 'aa555a0000000d01';
const KEK_LABEL = 'syndicate.provider-js';
const OTHER_JOIN_EUI = '70b3d57ef0000001'; // in 70b3d57ef0000000/36
const THIRD_JOIN_EUI = '70b3d57ee0000001'; // in 70b3d57ee0000000/36
const hex = (value: number | undefined) => (value ?? -1).toString(16).padStart(8, '0');

interface Pair {
  dir: string;
  galet: TestGalet;
  net: ScenarioNetwork;
  provider: RunningProvider;
  providerUrl: string;
  networkLog: LogEntry[];
  providerLog: LogEntry[];
  files: { kek: string; token: string; wrongToken: string };
  token: string;
  wrongToken: string;
  /** deduplicationIds of the uplinks checked already. */
  uplinksSeen: Set<string>;
  close(): Promise<void>;
}

/**
 * The operator's Galet with `joinServers` (made from the provider's ports and the files), its
 * simulated gateway, and a provider linked to its application with `joinEndpoint`.
 */
async function startPair(options: {
  joinServers: (ports: { http: number; tls: number }, files: Pair['files']) => JoinServerSetting[];
  joinEndpoint: (ports: { http: number; tls: number }, files: Pair['files']) => JoinEndpointSetting;
}): Promise<Pair> {
  const dir = await mkdtemp(join(tmpdir(), 'galet-join-endpoint-'));
  const files = {
    kek: join(dir, 'provider-js.kek'),
    token: join(dir, 'provider-js.token'),
    wrongToken: join(dir, 'wrong.token'),
  };
  const token = `bi_${randomBytes(24).toString('hex')}`;
  const wrongToken = `bi_${randomBytes(24).toString('hex')}`;
  await writeFile(files.kek, `${randomBytes(16).toString('hex')}\n`, { mode: 0o600 });
  await writeFile(files.token, `${token}\n`, { mode: 0o600 });
  await writeFile(files.wrongToken, `${wrongToken}\n`, { mode: 0o600 });
  const ports = { http: await freePort(), tls: await freePort() };
  const networkLog: LogEntry[] = [];
  const providerLog: LogEntry[] = [];
  const galet = await startTestGalet({
    dataDir: join(dir, 'network'),
    roles: ['network'],
    logger: capturingLogger(networkLog),
    joinServers: options.joinServers(ports, files),
  });
  let net: ScenarioNetwork | undefined;
  try {
    net = await attachNetwork(galet, [{ gatewayId: GW }]);
    const link = await galet.request(
      'POST',
      `/api/v1/applications/${net.applicationId}/link-tokens`,
      { name: 'provider' },
    );
    assert.equal(link.status, 201);
    const provider = await startProvider({
      dataDir: join(dir, 'provider'),
      host: '127.0.0.1',
      httpPort: ports.http,
      region: 'EU868',
      networkUrl: galet.baseUrl,
      networkToken: link.json.token,
      joinEndpoint: options.joinEndpoint(ports, files),
      logger: capturingLogger(providerLog),
      env: { GALET_ADMIN_TOKEN: TEST_ADMIN_TOKEN },
    });
    assert.equal(await provider.link.ready(), net.applicationId);
    const attached = net;
    return {
      dir,
      galet,
      net,
      provider,
      providerUrl: `http://127.0.0.1:${provider.httpPort}`,
      networkLog,
      providerLog,
      files,
      token,
      wrongToken,
      uplinksSeen: new Set(),
      async close() {
        await attached.close();
        await provider.close();
        await galet.stop();
        await removeDir(dir);
      },
    };
  } catch (error) {
    await net?.close();
    await galet.stop();
    await removeDir(dir);
    throw error;
  }
}

/** Registers a device on the provider (root keys there only; the link registers it on the network). */
async function providerDevice(
  pair: Pair,
  devEui: string,
  joinEui: string,
  lorawanVersion: '1.0.4' | '1.1',
): Promise<SimulatedDevice> {
  const is11 = lorawanVersion === '1.1';
  const created = await apiRequest(pair.providerUrl, TEST_ADMIN_TOKEN, 'POST', '/api/v1/devices', {
    devEui,
    joinEui,
    name: `device ${devEui}`,
    applicationId: pair.net.applicationId,
    macVersion: is11 ? '1.1.0' : '1.0.4',
    appKey: bytesToHex(APP_KEY),
    ...(is11 ? { nwkKey: bytesToHex(NWK_KEY) } : {}),
  });
  assert.equal(created.status, 201, JSON.stringify(created.json));
  return new SimulatedDevice({
    devEui,
    lorawanVersion,
    activation: { mode: 'otaa', joinEui, appKey: APP_KEY, ...(is11 ? { nwkKey: NWK_KEY } : {}) },
  });
}

/** An uplink in the device's current session, seen by the network and decrypted by the provider. */
async function uplinkDecryptedByProvider(
  pair: Pair,
  device: SimulatedDevice,
  fPort: number,
  text: string,
): Promise<void> {
  const payload = Buffer.from(text);
  const transmission = device.uplink({ fPort, payload });
  pair.net.transmit(device, transmission);
  // A type 2 rejoin keeps the DevAddr and restarts FCnt: the events of earlier uplinks are skipped.
  const seen = await pair.net.waitForEvent(
    device.devEui,
    (e) =>
      e.event === 'up' &&
      e.fCnt === transmission.counter &&
      e.devAddr === hex(device.devAddr) &&
      !pair.uplinksSeen.has(e.deduplicationId),
    `up event ${transmission.counter}`,
  );
  pair.uplinksSeen.add(seen.deduplicationId);
  // The operator holds the payload encrypted only.
  assert.equal(seen.data, undefined);
  assert.notDeepEqual(Buffer.from(seen.frmPayload, 'base64'), payload);
  const decrypted = await waitFor(`the provider decrypts uplink ${text}`, async () => {
    const events = await apiRequest(
      pair.providerUrl,
      TEST_ADMIN_TOKEN,
      'GET',
      `/api/v1/devices/${device.devEui}/events?limit=100`,
    );
    return (
      events.json.events as { event: string; deduplicationId?: string; data?: string }[]
    ).find((e) => e.event === 'up' && e.deduplicationId === seen.deduplicationId);
  });
  assert.deepEqual(Buffer.from(decrypted.data!, 'base64'), payload);
}

/** The fields of a Backend Interfaces answer the tests read. */
interface BackendAnswer {
  MessageType: string;
  TransactionID: number;
  Result: { ResultCode: string; Description?: string };
}

/** A POST to the provider's Backend Interfaces endpoint; the answer's status, header and body. */
async function postJoinReq(
  pair: Pair,
  body: string | Buffer,
  authorization?: string,
): Promise<{ status: number; authenticate: string | null; json: BackendAnswer }> {
  const response = await fetch(`${pair.providerUrl}/api/v1/backend-interfaces`, {
    method: 'POST',
    headers: {
      'content-type': 'application/json',
      ...(authorization === undefined ? {} : { authorization }),
    },
    body,
  });
  return {
    status: response.status,
    authenticate: response.headers.get('www-authenticate'),
    json: (await response.json()) as BackendAnswer,
  };
}

function logged(entries: LogEntry[], message: string): LogEntry[] {
  return entries.filter((entry) => entry.message === message);
}

describe('joins served over HTTP by the join role (joinEndpoint)', () => {
  it('joins and rejoins devices routed by JoinEUI with a bearer token; a wrong one is refused and counted', async () => {
    const pair = await startPair({
      joinServers: (ports, files) => {
        const url = `http://127.0.0.1:${ports.http}/api/v1/backend-interfaces`;
        return [
          { joinEuiPrefix: '70b3d57ed0000000/36', url, kekLabel: KEK_LABEL, kekFile: files.kek },
          { joinEuiPrefix: '70b3d57ef0000000/36', url, kekLabel: KEK_LABEL, kekFile: files.kek },
        ].map((entry, index) => ({
          ...entry,
          name: index === 0 ? 'provider-js' : 'wrong-token-js',
          tokenFile: index === 0 ? files.token : files.wrongToken,
        }));
      },
      joinEndpoint: (_ports, files) => ({
        networks: [
          { name: 'syndicate', kekLabel: KEK_LABEL, kekFile: files.kek, tokenFile: files.token },
        ],
      }),
    });
    const { net, galet } = pair;
    try {
      const meter = await providerDevice(pair, '00000000000d0001', JOIN_EUI, '1.0.4');
      const sensor = await providerDevice(pair, '00000000000d0011', JOIN_EUI, '1.1');
      const stranded = await providerDevice(pair, '00000000000d0002', OTHER_JOIN_EUI, '1.0.4');

      // 1. Joined over HTTP: the network's NwkSKey came wrapped under the shared KEK; the
      //    AppSKey stays an envelope under the provider's application KEK.
      await net.join(meter);
      const session = await galet.storage.deviceSessions.get(meter.devEui);
      const deviceKeys = meter.sessionKeys();
      assert.ok(session !== undefined && deviceKeys !== undefined && 'nwkSKey' in deviceKeys);
      assert.deepEqual(session.keys.lorawan === '1.0' && session.keys.nwkSKey, deviceKeys.nwkSKey);
      assert.equal(session.keys.appSKey, undefined);
      assert.match(session.keys.appSKeyEnvelope?.kekLabel ?? '', /^galet-app:/);
      assert.deepEqual(
        logged(pair.providerLog, 'device joined through Backend Interfaces').map((e) => ({
          network: e.fields['network'],
          devEui: e.fields['devEui'],
          messageType: e.fields['messageType'],
        })),
        [{ network: 'syndicate', devEui: meter.devEui, messageType: 'JoinAns' }],
      );
      await uplinkDecryptedByProvider(pair, meter, 2, 'index=004217 m3');

      // 2. A LoRaWAN 1.1 device joins, then rejoins (types 0, 2 and 1) through the same server.
      await net.join(sensor);
      await uplinkDecryptedByProvider(pair, sensor, 1, 'first session');
      const firstAddr = sensor.devAddr;
      net.transmit(sensor, sensor.rejoinRequest(0));
      await waitFor('rejoin type 0 accepted', () => sensor.devAddr !== firstAddr);
      await uplinkDecryptedByProvider(pair, sensor, 1, 'after a type 0 rejoin');
      const keysBefore2 = JSON.stringify(sensor.sessionKeys());
      net.transmit(sensor, sensor.rejoinRequest(2));
      await waitFor(
        'rejoin type 2 accepted',
        () => JSON.stringify(sensor.sessionKeys()) !== keysBefore2,
      );
      await uplinkDecryptedByProvider(pair, sensor, 1, 'after a type 2 rejoin');
      const addrBefore1 = sensor.devAddr;
      net.transmit(sensor, sensor.rejoinRequest(1));
      await waitFor('rejoin type 1 accepted', () => sensor.devAddr !== addrBefore1);
      await uplinkDecryptedByProvider(pair, sensor, 1, 'after a type 1 rejoin');
      assert.deepEqual(
        logged(pair.providerLog, 'device joined through Backend Interfaces')
          .filter((e) => e.fields['devEui'] === sensor.devEui)
          .map((e) => e.fields['messageType']),
        ['JoinAns', 'RejoinAns', 'RejoinAns', 'RejoinAns'],
      );
      assert.equal(await net.metric('galet_network_rejoins_accepted_total'), 3);

      // 3. The route with the wrong token: refused by the provider, counted and logged on both
      //    sides; the device stays out.
      net.transmit(stranded, stranded.joinRequest());
      await net.waitForMetric(
        'galet_join_servers_join_requests_unauthorized_total{kind="wrong-token-js"}',
        1,
      );
      assert.equal(stranded.activated, false);
      assert.equal(
        await net.metric(
          'galet_join_servers_join_requests_unanswered_total{kind="wrong-token-js"}',
        ),
        0,
      );
      const networkWarning = logged(
        pair.networkLog,
        "join server refused the network's credentials",
      );
      assert.equal(networkWarning.length, 1);
      assert.equal(networkWarning[0]!.fields['joinServer'], 'wrong-token-js');
      assert.match(
        String(networkWarning[0]!.fields['error']),
        /join server wrong-token-js refused the network's credentials \(HTTP 401, UnknownSender: /,
      );
      await net.waitForEvent(
        stranded.devEui,
        (e) => e.event === 'log' && /refused the network's credentials/.test(e.description),
        'log event of the refused join',
      );
      const providerMetric = (name: string) => metricSample(pair.providerUrl, name);
      assert.equal(
        await providerMetric('galet_join_endpoint_requests_unauthorized_total{kind="wrong-token"}'),
        1,
      );
      const refusedLine = logged(
        pair.providerLog,
        'Backend Interfaces request refused: no credential this join server accepts',
      );
      assert.deepEqual(
        refusedLine.map((e) => e.fields['reason']),
        ['wrong-token'],
      );
      assert.equal(await galet.storage.deviceSessions.get(stranded.devEui), undefined);

      // 4. The endpoint itself: each refusal answered in Backend Interfaces form and counted.
      const bearer = `Bearer ${pair.token}`;
      const joinReq = (devEui: string) =>
        JSON.stringify(
          encodeValue({
            protocolVersion: '1.1',
            messageType: 'JoinReq',
            senderId: '000013',
            receiverId: JOIN_EUI,
            transactionId: 77,
            macVersion: '1.0.4',
            phyPayload: joinRequest(devEui, 1, APP_KEY, JOIN_EUI),
            devEui,
            devAddr: 0x26000042,
            dlSettings: { optNeg: false, rx1DrOffset: 0, rx2Dr: 0 },
            rxDelay: 1,
          } satisfies JoinReq),
        );
      const anonymous = await postJoinReq(pair, joinReq('00000000000d0fff'));
      assert.equal(anonymous.status, 401);
      assert.equal(anonymous.authenticate, 'Bearer realm="galet-backend-interfaces"');
      assert.equal(anonymous.json.MessageType, 'JoinAns');
      assert.equal(anonymous.json.TransactionID, 77);
      assert.equal(anonymous.json.Result.ResultCode, 'UnknownSender');
      const unknown = await postJoinReq(pair, joinReq('00000000000d0fff'), bearer);
      assert.equal(unknown.status, 200);
      assert.equal(unknown.json.Result.ResultCode, 'UnknownDevEUI');
      assert.equal(unknown.json.TransactionID, 77);
      const notJson = await postJoinReq(pair, '{"MessageType": "JoinReq",', bearer);
      assert.equal(notJson.status, 400);
      assert.equal(notJson.json.Result.ResultCode, 'MalformedRequest');
      const tooLarge = await postJoinReq(pair, Buffer.alloc(70 * 1024, 0x20), bearer);
      assert.equal(tooLarge.status, 413);
      assert.equal(tooLarge.json.Result.ResultCode, 'MalformedRequest');
      const malformedHeader = await postJoinReq(pair, joinReq('00000000000d0fff'), 'Basic abc');
      assert.equal(malformedHeader.status, 401);
      const expected: [string, number][] = [
        ['galet_join_endpoint_requests_unauthorized_total{kind="no-credentials"}', 1],
        ['galet_join_endpoint_requests_unauthorized_total{kind="malformed-authorization"}', 1],
        ['galet_join_endpoint_requests_malformed_total{kind="not-json"}', 1],
        ['galet_join_endpoint_requests_malformed_total{kind="too-large"}', 1],
        // meter, sensor (join and 3 rejoins), the unknown device
        ['galet_join_endpoint_join_requests_total{kind="syndicate"}', 6],
        ['galet_join_endpoint_joins_accepted_total{kind="syndicate"}', 5],
        ['galet_join_endpoint_joins_refused_total{kind="syndicate"}', 1],
      ];
      for (const [name, value] of expected) assert.equal(await providerMetric(name), value, name);
      assert.equal(
        await net.metric('galet_join_servers_joins_accepted_total{kind="provider-js"}'),
        5,
      );
      assert.equal(
        await net.metric('galet_join_servers_join_requests_total{kind="provider-js"}'),
        5,
      );

      // No token and no root key in either Galet's log.
      for (const log of [pair.networkLog, pair.providerLog]) {
        const text = JSON.stringify(log);
        for (const secret of [pair.token, pair.wrongToken, bytesToHex(APP_KEY)]) {
          assert.equal(text.includes(secret), false);
        }
      }
    } finally {
      await pair.close();
    }
  });

  it('accepts a network by its client certificate (mutual TLS), refuses one without or with a foreign one', async (t) => {
    const openssl = await findOpenssl();
    if (openssl === undefined) return t.skip('openssl is not installed');
    const certificateDir = await mkdtemp(join(tmpdir(), 'galet-join-certs-'));
    const certs = await makeCertificates(openssl, certificateDir);
    const pair = await startPair({
      joinServers: (ports, files) => {
        const url = `https://127.0.0.1:${ports.tls}/api/v1/backend-interfaces`;
        const entry = { url, kekLabel: KEK_LABEL, kekFile: files.kek };
        return [
          {
            ...entry,
            joinEuiPrefix: '70b3d57ed0000000/36',
            name: 'mtls-js',
            tls: { caFile: certs.ca, certFile: certs.clientCert, keyFile: certs.clientKey },
          },
          {
            ...entry,
            joinEuiPrefix: '70b3d57ef0000000/36',
            name: 'no-cert-js',
            tls: { caFile: certs.ca },
          },
          {
            ...entry,
            joinEuiPrefix: '70b3d57ee0000000/36',
            name: 'stranger-js',
            tls: { caFile: certs.ca, certFile: certs.strangerCert, keyFile: certs.strangerKey },
          },
        ];
      },
      joinEndpoint: (ports, files) => ({
        networks: [
          { name: 'syndicate', kekLabel: KEK_LABEL, kekFile: files.kek, clientCaFile: certs.ca },
        ],
        tls: { port: ports.tls, certFile: certs.serverCert, keyFile: certs.serverKey },
      }),
    });
    const { net } = pair;
    try {
      assert.equal(typeof pair.provider.joinEndpointTlsPort, 'number');
      const meter = await providerDevice(pair, '00000000000e0001', JOIN_EUI, '1.0.4');
      const noCert = await providerDevice(pair, '00000000000e0002', OTHER_JOIN_EUI, '1.0.4');
      const stranger = await providerDevice(pair, '00000000000e0003', THIRD_JOIN_EUI, '1.0.4');

      await net.join(meter);
      await uplinkDecryptedByProvider(pair, meter, 5, 'mutual TLS');
      assert.equal(await net.metric('galet_join_servers_joins_accepted_total{kind="mtls-js"}'), 1);

      for (const [device, route] of [
        [noCert, 'no-cert-js'],
        [stranger, 'stranger-js'],
      ] as const) {
        net.transmit(device, device.joinRequest());
        await net.waitForMetric(
          `galet_join_servers_join_requests_unauthorized_total{kind="${route}"}`,
          1,
        );
        assert.equal(device.activated, false);
      }
      const providerMetric = (name: string) => metricSample(pair.providerUrl, name);
      assert.equal(
        await providerMetric(
          'galet_join_endpoint_requests_unauthorized_total{kind="no-credentials"}',
        ),
        1,
      );
      assert.equal(
        await providerMetric(
          'galet_join_endpoint_requests_unauthorized_total{kind="untrusted-certificate"}',
        ),
        1,
      );
      assert.equal(
        await providerMetric('galet_join_endpoint_joins_accepted_total{kind="syndicate"}'),
        1,
      );
      // The API port does not take this network: its requests need the certificate.
      const plain = await postJoinReq(pair, '{}', `Bearer ${pair.token}`);
      assert.equal(plain.status, 401);
    } finally {
      await pair.close();
      await removeDir(certificateDir);
    }
  });
});
