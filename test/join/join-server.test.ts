import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { type JoinAnswer, LocalJoinServer } from '../../src/join/join-server.js';
import {
  deriveJoinServerKeys,
  deriveSessionKeys10,
  deriveSessionKeys11,
} from '../../src/lorawan/crypto/session-keys.js';
import { openJoinAccept, verifyJoinAcceptMic } from '../../src/lorawan/join-accept.js';
import { buildRejoinRequest, joinRequestTypeOfRejoin } from '../../src/lorawan/rejoin-request.js';
import { APP_KEY, JOIN_EUI, joinRequest, MemoryJoinStore, NWK_KEY, session } from './helpers.js';

/** The in-memory RJcount1 record the storage engineer's store will implement for real. */
class MemoryJoinStoreWithRjCount1 extends MemoryJoinStore {
  readonly rjCount1 = new Map<string, number>();

  async lastRjCount1(devEui: string) {
    return this.rjCount1.get(devEui) ?? null;
  }
  async recordRjCount1(devEui: string, rjCount1: number) {
    const last = this.rjCount1.get(devEui);
    if (last !== undefined && rjCount1 <= last) return 'replayed' as const;
    this.rjCount1.set(devEui, rjCount1);
    return 'new' as const;
  }
}

describe('join server', () => {
  it('accepts a 1.0 JoinRequest: JoinAccept MIC and keys match the device side', async () => {
    const store = new MemoryJoinStore();
    store.devices.set('0000000000000001', {
      devEui: '0000000000000001',
      joinEui: JOIN_EUI,
      macVersion: '1.0.3',
      appKey: APP_KEY,
    });
    const answer = await new LocalJoinServer(store).handleJoinRequest({
      ...session,
      phyPayload: joinRequest('0000000000000001', 7, APP_KEY),
    });
    assert.equal(answer.result, 'Success');
    if (answer.result !== 'Success') return;
    const opened = openJoinAccept(answer.phyPayload, APP_KEY);
    assert.equal(verifyJoinAcceptMic(opened, { optNeg: false, key: APP_KEY }), true);
    assert.equal(opened.fields.devAddr, 0x26000001);
    assert.equal(opened.fields.dlSettings.optNeg, false);
    const expected = deriveSessionKeys10(APP_KEY, opened.fields.joinNonce, 0x13, 7);
    assert.deepEqual(answer.sessionKeys, { lorawan: '1.0', ...expected });
  });

  it('refuses unknown devices, a wrong JoinEUI, a bad MIC and malformed requests with their result codes', async () => {
    const store = new MemoryJoinStore();
    store.devices.set('0000000000000002', {
      devEui: '0000000000000002',
      joinEui: JOIN_EUI,
      macVersion: '1.0.4',
      appKey: APP_KEY,
    });
    const server = new LocalJoinServer(store);
    const ask = (phyPayload: Uint8Array) => server.handleJoinRequest({ ...session, phyPayload });
    assert.equal((await ask(joinRequest('0000000000000009', 1, APP_KEY))).result, 'UnknownDevEUI');
    assert.equal(
      (await ask(joinRequest('0000000000000002', 1, APP_KEY, '70b3d57ed0000001'))).result,
      'UnknownDevEUI',
    );
    assert.equal((await ask(joinRequest('0000000000000002', 1, NWK_KEY))).result, 'MICFailed');
    assert.equal((await ask(Uint8Array.from([0x00, 1, 2]))).result, 'MalformedRequest');
    assert.equal(
      (await ask(Uint8Array.from([0x40, 1, 2, 3, 4, 0, 0, 0, 1, 2, 3, 4]))).result,
      'MalformedRequest',
    );
    // A refused MIC must not burn the DevNonce: the real device can still use it.
    assert.equal((await ask(joinRequest('0000000000000002', 1, APP_KEY))).result, 'Success');
    assert.equal((await ask(joinRequest('0000000000000002', 1, APP_KEY))).result, 'JoinReqFailed');
  });

  it('needs a NwkKey for a 1.1 device and signs its JoinAccept with OptNeg', async () => {
    const store = new MemoryJoinStore();
    store.devices.set('0000000000000003', {
      devEui: '0000000000000003',
      joinEui: JOIN_EUI,
      macVersion: '1.1.0',
      appKey: APP_KEY,
    });
    const server = new LocalJoinServer(store);
    const withoutNwkKey = await server.handleJoinRequest({
      ...session,
      phyPayload: joinRequest('0000000000000003', 0, APP_KEY),
    });
    assert.equal(withoutNwkKey.result, 'JoinReqFailed');
    store.devices.set('0000000000000003', {
      ...store.devices.get('0000000000000003')!,
      nwkKey: NWK_KEY,
    });
    const answer = await server.handleJoinRequest({
      ...session,
      phyPayload: joinRequest('0000000000000003', 1, NWK_KEY),
    });
    assert.equal(answer.result, 'Success');
    if (answer.result !== 'Success') return;
    assert.equal(answer.sessionKeys.lorawan, '1.1');
    assert.equal(openJoinAccept(answer.phyPayload, NWK_KEY).fields.dlSettings.optNeg, true);
  });
});

// ---------------------------------------------------------------------------------------------
// LoRaWAN 1.1 rejoin.

const DEV_EUI_11 = '0000000000000011';
const S_NWK_S_INT_KEY = Uint8Array.from({ length: 16 }, (_, i) => 0x30 + i);

function store11(store = new MemoryJoinStoreWithRjCount1()) {
  store.devices.set(DEV_EUI_11, {
    devEui: DEV_EUI_11,
    joinEui: JOIN_EUI,
    macVersion: '1.1.0',
    appKey: APP_KEY,
    nwkKey: NWK_KEY,
  });
  return store;
}

function rejoin02(rejoinType: 0 | 2, rjCount0: number, devEui = DEV_EUI_11): Uint8Array {
  return buildRejoinRequest(
    { mType: 'RejoinRequest', rejoinType, netId: 0x13, devEui, rjCount0 },
    S_NWK_S_INT_KEY,
  );
}

function rejoin1(rjCount1: number, key?: Uint8Array, joinEui = JOIN_EUI): Uint8Array {
  const jsIntKey = key ?? deriveJoinServerKeys(NWK_KEY, DEV_EUI_11).jsIntKey;
  return buildRejoinRequest(
    { mType: 'RejoinRequest', rejoinType: 1, joinEui, devEui: DEV_EUI_11, rjCount1 },
    jsIntKey,
  );
}

function messageOf(answer: JoinAnswer): string {
  return answer.result === 'Success' ? '' : answer.message;
}

const newSession = { ...session, devAddr: 0x26000077, dlSettings: { rx1DrOffset: 2, rx2Dr: 3 } };

describe('join server: LoRaWAN 1.1 RejoinRequest', () => {
  for (const rejoinType of [0, 1, 2] as const) {
    it(`answers a type-${rejoinType} rejoin with a JoinAccept under JSEncKey/JSIntKey and keys derived from the RJcount`, async () => {
      const store = store11();
      const server = new LocalJoinServer(store);
      const joined = await server.handleJoinRequest({
        ...session,
        phyPayload: joinRequest(DEV_EUI_11, 4, NWK_KEY),
      });
      assert.equal(joined.result, 'Success');
      const rjCount = 9;
      const phyPayload = rejoinType === 1 ? rejoin1(rjCount) : rejoin02(rejoinType, rjCount);
      const answer = await server.handleRejoinRequest({ ...newSession, phyPayload });
      assert.equal(answer.result, 'Success');
      if (answer.result !== 'Success' || joined.result !== 'Success') return;
      assert.equal(answer.rejoinType, rejoinType);
      assert.equal(answer.devEui, DEV_EUI_11);
      assert.equal(answer.joinEui, JOIN_EUI);
      assert.ok(answer.joinNonce > joined.joinNonce, 'JoinNonce keeps increasing');

      const { jsIntKey, jsEncKey } = deriveJoinServerKeys(NWK_KEY, DEV_EUI_11);
      const opened = openJoinAccept(answer.phyPayload, jsEncKey);
      assert.deepEqual(opened.fields, {
        joinNonce: answer.joinNonce,
        netId: 0x13,
        devAddr: 0x26000077,
        dlSettings: { optNeg: true, rx1DrOffset: 2, rx2Dr: 3 },
        rxDelay: 1,
        cfList: undefined,
      });
      const joinRequestType = joinRequestTypeOfRejoin(rejoinType);
      const micKeys = {
        optNeg: true as const,
        jsIntKey,
        joinRequestType,
        joinEui: JOIN_EUI,
        devNonce: rjCount,
      };
      assert.equal(verifyJoinAcceptMic(opened, micKeys), true);
      // Not readable as the answer to a JoinRequest: NwkKey does not open it.
      assert.equal(
        verifyJoinAcceptMic(openJoinAccept(answer.phyPayload, NWK_KEY), {
          ...micKeys,
          joinRequestType: 'join',
        }),
        false,
      );
      assert.deepEqual(answer.sessionKeys, {
        lorawan: '1.1',
        ...deriveSessionKeys11(NWK_KEY, APP_KEY, answer.joinNonce, JOIN_EUI, rjCount),
      });
    });
  }

  it('type 1: checks the JSIntKey MIC without burning the RJcount1, then refuses replays', async () => {
    const store = store11();
    const server = new LocalJoinServer(store);
    const ask = (phyPayload: Uint8Array) =>
      server.handleRejoinRequest({ ...newSession, phyPayload });
    const badMic = await ask(rejoin1(5, S_NWK_S_INT_KEY));
    assert.equal(badMic.result, 'MICFailed');
    assert.equal(store.rjCount1.size, 0);
    assert.equal((await ask(rejoin1(5))).result, 'Success');
    assert.equal(store.rjCount1.get(DEV_EUI_11), 5);
    const replay = await ask(rejoin1(5));
    assert.equal(replay.result, 'JoinReqFailed');
    assert.match(messageOf(replay), /RJcount1 5 .* not above/);
    assert.equal((await ask(rejoin1(4))).result, 'JoinReqFailed');
    assert.equal((await ask(rejoin1(6))).result, 'Success');
    assert.equal(
      (await ask(rejoin1(7, undefined, '70b3d57ed0000009'))).result,
      'UnknownDevEUI',
      "type 1 names its JoinEUI, which must be the device's",
    );
  });

  it('type 1: refuses when the store keeps no RJcount1 (a replay could not be told)', async () => {
    const server = new LocalJoinServer(
      store11(new MemoryJoinStore() as MemoryJoinStoreWithRjCount1),
    );
    const answer = await server.handleRejoinRequest({ ...newSession, phyPayload: rejoin1(1) });
    assert.equal(answer.result, 'JoinReqFailed');
    assert.match(messageOf(answer), /keeps no RJcount1/);
  });

  it('types 0 and 2: leaves the SNwkSIntKey MIC and RJcount0 to the network server', async () => {
    const server = new LocalJoinServer(store11());
    const forged = rejoin02(2, 3);
    forged[forged.length - 1]! ^= 0xff;
    // The join server cannot check it (no SNwkSIntKey): it answers what the network forwarded.
    assert.equal(
      (await server.handleRejoinRequest({ ...newSession, phyPayload: forged })).result,
      'Success',
    );
    assert.equal(
      (await server.handleRejoinRequest({ ...newSession, phyPayload: rejoin02(0, 3) })).result,
      'Success',
    );
  });

  it('refuses unknown devices, 1.0 devices, devices without NwkKey and frames that are not rejoins', async () => {
    const store = store11();
    store.devices.set('0000000000000012', {
      devEui: '0000000000000012',
      joinEui: JOIN_EUI,
      macVersion: '1.0.4',
      appKey: APP_KEY,
      nwkKey: NWK_KEY,
    });
    store.devices.set('0000000000000013', {
      devEui: '0000000000000013',
      joinEui: JOIN_EUI,
      macVersion: '1.1.0',
      appKey: APP_KEY,
    });
    const server = new LocalJoinServer(store);
    const ask = (phyPayload: Uint8Array) =>
      server.handleRejoinRequest({ ...newSession, phyPayload });
    assert.equal((await ask(rejoin02(0, 1, '00000000000000ff'))).result, 'UnknownDevEUI');
    const old = await ask(rejoin02(0, 1, '0000000000000012'));
    assert.equal(old.result, 'JoinReqFailed');
    assert.match(messageOf(old), /LoRaWAN 1\.1 only/);
    assert.equal((await ask(rejoin02(2, 1, '0000000000000013'))).result, 'JoinReqFailed');
    assert.equal((await ask(joinRequest(DEV_EUI_11, 1, NWK_KEY))).result, 'MalformedRequest');
    assert.equal((await ask(Uint8Array.from([0xc0, 0x03]))).result, 'MalformedRequest');
    // And the other way round: a RejoinRequest is not a JoinRequest.
    assert.equal(
      (await server.handleJoinRequest({ ...session, phyPayload: rejoin1(1) })).result,
      'MalformedRequest',
    );
  });
});
