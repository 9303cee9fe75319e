import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import {
  LinkAnswerError,
  LinkProtocolError,
  readDownlinkEventDelivery,
  readDownlinkSessionAnswer,
  readDownlinkSessionRequest,
  readQueueDownlinkAnswer,
  readQueueDownlinkRequest,
  readReencryptDownlinkAnswer,
  readReencryptDownlinkRequest,
} from '../../src/link/index.js';

const ID = '0190f1e2-3a4b-7c5d-8e6f-0123456789ab';
const SESSION_KEY_ID = 'ab'.repeat(16);
const APP_S_KEY = { kekLabel: 'galet-app:0011223344556677', aesKey: 'cd'.repeat(24) };

const queueRequest = {
  devEui: '0004a30b001c0530',
  id: ID,
  fPort: 10,
  confirmed: true,
  sessionKeyId: SESSION_KEY_ID,
  fCntDown: 7,
  frmPayload: Buffer.from('ciphertext').toString('base64'),
};

const isAnswerError = (error: unknown) =>
  error instanceof LinkAnswerError && error.code === 'INVALID_INPUT';
const isProtocolError = (error: unknown) =>
  error instanceof LinkProtocolError && error.code === 'INVALID_FIELD';

describe('downlink messages of the provider link', () => {
  it('reads well-formed requests, answers and deliveries', () => {
    assert.deepEqual(readDownlinkSessionRequest({ devEui: '0004a30b001c0530' }), {
      devEui: '0004a30b001c0530',
    });
    assert.deepEqual(readQueueDownlinkRequest({ ...queueRequest, extra: 1 }), queueRequest);
    const session = {
      devAddr: '26011bda',
      sessionKeyId: SESSION_KEY_ID,
      fCntDown: 3,
      appSKey: APP_S_KEY,
      queuedIds: [ID],
    };
    assert.deepEqual(readDownlinkSessionAnswer(session), session);
    assert.deepEqual(readQueueDownlinkAnswer({ queued: false }), { queued: false });
    const reencrypt = {
      devEui: '0004a30b001c0530',
      id: ID,
      devAddr: '26011bda',
      sessionKeyId: SESSION_KEY_ID,
      fCntDown: 4,
      appSKey: APP_S_KEY,
    };
    assert.deepEqual(readReencryptDownlinkRequest(reencrypt), reencrypt);
    assert.deepEqual(readReencryptDownlinkAnswer({ frmPayload: 'AAEC' }), { frmPayload: 'AAEC' });
    const event = {
      type: 'ack',
      devEui: '0004a30b001c0530',
      time: '2026-11-29T20:00:00.000Z',
      body: { queueItemId: ID, acknowledged: true },
    };
    assert.deepEqual(readDownlinkEventDelivery(event), event);
  });

  it('answers INVALID_INPUT to a malformed request, naming the field', () => {
    for (const [field, value] of [
      ['devEui', '0004A30B001C0530'],
      ['id', 'not-a-uuid'],
      ['fPort', 0],
      ['fPort', 224],
      ['confirmed', 'yes'],
      ['sessionKeyId', 'ab'],
      ['fCntDown', -1],
      ['fCntDown', 2 ** 32],
      ['fCntDown', 1.5],
      ['frmPayload', Buffer.alloc(243).toString('base64')],
      ['frmPayload', 'not base64!'],
    ] as const) {
      assert.throws(
        () => readQueueDownlinkRequest({ ...queueRequest, [field]: value }),
        (error: unknown) => isAnswerError(error) && (error as Error).message.includes(field),
        `${field} = ${String(value)}`,
      );
    }
    for (const body of [null, [], 'text', 3]) {
      assert.throws(() => readDownlinkSessionRequest(body), isAnswerError);
    }
    assert.throws(
      () =>
        readReencryptDownlinkRequest({
          devEui: '0004a30b001c0530',
          id: ID,
          devAddr: '26011bda',
          sessionKeyId: SESSION_KEY_ID,
          fCntDown: 4,
          appSKey: { kekLabel: 'k', aesKey: 'cd'.repeat(16) },
        }),
      isAnswerError,
      'a wrapped AppSKey is 24 bytes',
    );
  });

  it('refuses a malformed answer or delivery as a protocol error', () => {
    assert.throws(() => readQueueDownlinkAnswer({}), isProtocolError);
    assert.throws(() => readReencryptDownlinkAnswer({ frmPayload: 7 }), isProtocolError);
    assert.throws(
      () =>
        readDownlinkSessionAnswer({
          devAddr: '26011bda',
          sessionKeyId: SESSION_KEY_ID,
          fCntDown: 3,
          appSKey: APP_S_KEY,
          queuedIds: ['x'],
        }),
      isProtocolError,
    );
    assert.throws(
      () =>
        readDownlinkEventDelivery({
          type: 'up',
          devEui: '0004a30b001c0530',
          time: '2026-11-29T20:00:00.000Z',
          body: {},
        }),
      isProtocolError,
      'only txack and ack events travel back',
    );
  });
});
