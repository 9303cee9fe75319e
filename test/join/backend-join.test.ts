/**
 * The join server in another process (operator-blind split): the network's BackendJoinServerClient
 * and the provider's answerJoinReq, talking Backend Interfaces JSON through a function that
 * stands for the link. Checks the keys each side ends up with, and that a wrong KEK gives a
 * clear refusal with no key or plaintext anywhere in what the network keeps.
 */
import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { answerJoinReq, BackendJoinServerClient } from '../../src/join/backend-join.js';
import { LocalJoinServer } from '../../src/join/join-server.js';
import { unwrapKey } from '../../src/lorawan/crypto/key-wrap.js';
import { APP_KEY, JOIN_EUI, joinRequest, MemoryJoinStore, NWK_KEY, session } from './helpers.js';

const NETWORK_KEK = {
  label: 'galet-link:0123456789abcdef',
  key: Uint8Array.from({ length: 16 }, (_, i) => 0x40 + i),
};
const APPLICATION_KEK = {
  label: 'galet-app:fedcba9876543210',
  key: Uint8Array.from({ length: 16 }, (_, i) => 0x90 + i),
};

/** A provider's join server and the network's client, wired through `transport` (the link). */
function split(options: { networkKekOnNetwork?: Uint8Array; macVersion?: '1.0.3' | '1.1.0' } = {}) {
  const store = new MemoryJoinStore();
  const devEui = '0000000000000a01';
  store.devices.set(devEui, {
    devEui,
    joinEui: JOIN_EUI,
    macVersion: options.macVersion ?? '1.0.3',
    appKey: APP_KEY,
    ...(options.macVersion === '1.1.0' ? { nwkKey: NWK_KEY } : {}),
  });
  const provider = new LocalJoinServer(store);
  const accepted: Uint8Array[] = [];
  const wire: string[] = [];
  const client = new BackendJoinServerClient({
    send: async (message) => {
      wire.push(JSON.stringify(message));
      const { answer, accepted: keys } = await answerJoinReq(
        provider,
        JSON.parse(JSON.stringify(message)),
        {
          network: NETWORK_KEK,
          application: APPLICATION_KEK,
        },
      );
      if (keys !== undefined) accepted.push(keys.appSKey);
      wire.push(JSON.stringify(answer));
      return JSON.parse(JSON.stringify(answer));
    },
    networkKeks: (label) =>
      label === NETWORK_KEK.label ? (options.networkKekOnNetwork ?? NETWORK_KEK.key) : undefined,
    device: async (eui) =>
      eui === devEui ? { macVersion: options.macVersion ?? '1.0.3', joinEui: JOIN_EUI } : undefined,
  });
  return { client, devEui, accepted, wire };
}

describe('join server across processes (Backend Interfaces JoinReq/JoinAns)', () => {
  it('gives the network its session keys and only an envelope of the AppSKey (1.0.x)', async () => {
    const { client, devEui, accepted, wire } = split();
    const answer = await client.handleJoinRequest({
      ...session,
      phyPayload: joinRequest(devEui, 1, APP_KEY),
    });
    assert.equal(answer.result, 'Success', JSON.stringify(answer));
    if (answer.result !== 'Success') return;
    assert.equal(answer.sessionKeys.lorawan, '1.0');
    assert.equal(answer.sessionKeys.appSKey, undefined, 'no AppSKey in clear on the network side');
    const envelope = answer.sessionKeys.appSKeyEnvelope!;
    assert.equal(envelope.kekLabel, APPLICATION_KEK.label);
    // The envelope opens, with the application KEK only, to the AppSKey the provider kept.
    assert.deepEqual(unwrapKey(APPLICATION_KEK.key, envelope.aesKey), accepted[0]);
    const appSKeyHex = Buffer.from(accepted[0]!).toString('hex');
    assert.equal(
      wire.join('').toLowerCase().includes(appSKeyHex),
      false,
      'the AppSKey never travels in clear',
    );
    assert.equal(wire.join('').toLowerCase().includes(Buffer.from(APP_KEY).toString('hex')), false);
  });

  it('carries the three network keys of a 1.1 device', async () => {
    const { client, devEui } = split({ macVersion: '1.1.0' });
    const answer = await client.handleJoinRequest({
      ...session,
      phyPayload: joinRequest(devEui, 1, NWK_KEY),
    });
    assert.equal(answer.result, 'Success', JSON.stringify(answer));
    if (answer.result !== 'Success' || answer.sessionKeys.lorawan !== '1.1')
      return assert.fail('1.1 keys');
    for (const key of [
      answer.sessionKeys.fNwkSIntKey,
      answer.sessionKeys.sNwkSIntKey,
      answer.sessionKeys.nwkSEncKey,
    ]) {
      assert.equal(key.length, 16);
    }
    assert.equal(answer.sessionKeys.appSKey, undefined);
  });

  it('refuses the join with a clear reason when the network holds another KEK under that label', async () => {
    const wrong = Uint8Array.from({ length: 16 }, () => 0x55);
    const { client, devEui } = split({ networkKekOnNetwork: wrong });
    const answer = await client.handleJoinRequest({
      ...session,
      phyPayload: joinRequest(devEui, 1, APP_KEY),
    });
    if (answer.result === 'Success') return assert.fail('the join must be refused');
    assert.equal(answer.result, 'JoinReqFailed');
    assert.match(answer.message, /KeyUnwrapFailed|integrity/);
    assert.equal('sessionKeys' in answer, false, 'no key of any kind comes out');
  });

  it('passes the join server refusals on (MIC failure, unknown device)', async () => {
    const { client, devEui } = split();
    const badMic = await client.handleJoinRequest({
      ...session,
      phyPayload: joinRequest(devEui, 2, NWK_KEY),
    });
    assert.equal(badMic.result, 'MICFailed');
    const unknown = await client.handleJoinRequest({
      ...session,
      phyPayload: joinRequest('0000000000000bad', 3, APP_KEY),
    });
    assert.equal(unknown.result, 'UnknownDevEUI');
  });

  it('answers garbage with a failed JoinAns, never an exception', async () => {
    const { answer } = await answerJoinReq(
      new LocalJoinServer(new MemoryJoinStore()),
      { MessageType: 'JoinReq', nonsense: true },
      {
        network: NETWORK_KEK,
        application: APPLICATION_KEK,
      },
    );
    assert.equal(answer['MessageType'], 'JoinAns');
    assert.notEqual((answer['Result'] as { ResultCode: string }).ResultCode, 'Success');
  });
});
