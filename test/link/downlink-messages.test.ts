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
  readWithdrawDownlinksAnswer,
  readWithdrawDownlinksRequest,
} from '../../src/link/index.js';

const ID = '0190f1e2-3a4b-7c5d-8e6f-0123456789ab';
const SECOND_ID = '0190f1e2-3a4b-7c5d-8e6f-0123456789ac';
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
    const later = { ...reencrypt, laterFCntDownAccepted: true };
    assert.deepEqual(readReencryptDownlinkRequest(later), later);
    assert.deepEqual(readReencryptDownlinkAnswer({ frmPayload: 'AAEC' }, reencrypt), {
      frmPayload: 'AAEC',
    });
    assert.deepEqual(readReencryptDownlinkAnswer({ frmPayload: 'AAEC', fCntDown: 4 }, reencrypt), {
      frmPayload: 'AAEC',
    });
    assert.deepEqual(readReencryptDownlinkAnswer({ frmPayload: 'AAEC', fCntDown: 6 }, later), {
      frmPayload: 'AAEC',
      fCntDown: 6,
    });
    const withdraw = { devEui: '0004a30b001c0530', ids: [ID, SECOND_ID] };
    assert.deepEqual(readWithdrawDownlinksRequest(withdraw), withdraw);
    const withdrawn = {
      items: [
        { id: ID, status: 'sent', fCntDown: 12 },
        { id: SECOND_ID, status: 'withdrawn' },
      ],
    };
    assert.deepEqual(readWithdrawDownlinksAnswer(withdrawn, withdraw), withdrawn);
    assert.deepEqual(
      readWithdrawDownlinksAnswer(
        { items: [{ id: ID, status: 'sent' }] },
        { ...withdraw, ids: [ID] },
      ),
      { items: [{ id: ID, status: 'sent', fCntDown: null }] },
    );
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
    for (const ids of [[], [ID, ID], ['x'], ID, Array.from({ length: 1001 }, () => ID)]) {
      assert.throws(
        () => readWithdrawDownlinksRequest({ devEui: '0004a30b001c0530', ids }),
        isAnswerError,
        JSON.stringify(ids).slice(0, 40),
      );
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
    const asked = { fCntDown: 4 };
    assert.throws(() => readReencryptDownlinkAnswer({ frmPayload: 7 }, asked), isProtocolError);
    // Another counter than the one asked, unless the request accepted a later one.
    assert.throws(
      () => readReencryptDownlinkAnswer({ frmPayload: 'AAEC', fCntDown: 5 }, asked),
      isProtocolError,
    );
    assert.throws(
      () =>
        readReencryptDownlinkAnswer(
          { frmPayload: 'AAEC', fCntDown: 3 },
          { ...asked, laterFCntDownAccepted: true },
        ),
      isProtocolError,
      'never an earlier one',
    );
    const withdraw = { devEui: '0004a30b001c0530', ids: [ID, SECOND_ID] };
    for (const items of [
      [{ id: ID, status: 'withdrawn' }],
      [
        { id: SECOND_ID, status: 'withdrawn' },
        { id: ID, status: 'withdrawn' },
      ],
      [
        { id: ID, status: 'gone' },
        { id: SECOND_ID, status: 'withdrawn' },
      ],
      [
        { id: ID, status: 'sent', fCntDown: -1 },
        { id: SECOND_ID, status: 'withdrawn' },
      ],
    ]) {
      assert.throws(
        () => readWithdrawDownlinksAnswer({ items }, withdraw),
        isProtocolError,
        JSON.stringify(items),
      );
    }
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
