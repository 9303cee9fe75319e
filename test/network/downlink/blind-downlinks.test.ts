import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import {
  appSessionKeyId,
  MAX_SKIPPED_FCNT_DOWN,
  nextApplicationFCntDown,
  queuedItemFate,
} from '../../../src/network/downlink/blind-downlinks.js';
import type { SessionKeys } from '../../../src/network/session.js';

const key = (byte: number) => new Uint8Array(16).fill(byte);
const envelope = { kekLabel: 'galet-app:0011223344556677', aesKey: new Uint8Array(24).fill(9) };
const blind10: SessionKeys = { lorawan: '1.0', nwkSKey: key(1), appSKeyEnvelope: envelope };
const blind11: SessionKeys = {
  lorawan: '1.1',
  fNwkSIntKey: key(1),
  sNwkSIntKey: key(2),
  nwkSEncKey: key(3),
  appSKeyEnvelope: envelope,
};
const clear10: SessionKeys = { lorawan: '1.0', nwkSKey: key(1), appSKey: key(4) };
const sessionKeyId = appSessionKeyId(envelope);

describe('operator-blind downlinks: which item may go out', () => {
  it('names a session by its envelope, not by anything readable', () => {
    assert.match(sessionKeyId, /^[0-9a-f]{32}$/);
    assert.equal(appSessionKeyId({ ...envelope }), sessionKeyId);
    assert.notEqual(
      appSessionKeyId({ ...envelope, aesKey: new Uint8Array(24).fill(8) }),
      sessionKeyId,
    );
    assert.notEqual(appSessionKeyId({ ...envelope, kekLabel: 'galet-app:other' }), sessionKeyId);
  });

  it('counts application downlinks with FCntDown in 1.0 and AFCntDown in 1.1', () => {
    assert.equal(nextApplicationFCntDown({ keys: blind10, nFCntDown: 5, aFCntDown: 2 }), 5);
    assert.equal(nextApplicationFCntDown({ keys: blind11, nFCntDown: 5, aFCntDown: 2 }), 2);
  });

  it('sends an item encrypted for this session and the next counter or a later one', () => {
    const item = { encryptedFor: { fCntDown: 5, sessionKeyId } };
    assert.deepEqual(queuedItemFate(blind10, item, 5), { kind: 'send' });
    assert.equal(queuedItemFate(blind10, item, 6).kind, 'handBack');
    // Counter 4 is skipped (the provider used it for an item it withdrew, say)...
    assert.deepEqual(queuedItemFate(blind10, item, 4), { kind: 'send' });
    // ... but not more than MAX_SKIPPED_FCNT_DOWN of them.
    const far = { encryptedFor: { fCntDown: 5 + MAX_SKIPPED_FCNT_DOWN + 1, sessionKeyId } };
    assert.equal(queuedItemFate(blind10, far, 5).kind, 'handBack');
    assert.deepEqual(queuedItemFate(blind10, far, 6), { kind: 'send' });
    const earlier = { encryptedFor: { fCntDown: 5, sessionKeyId: 'ab'.repeat(16) } };
    assert.deepEqual(queuedItemFate(blind11, earlier, 5), {
      kind: 'handBack',
      reason: 'encrypted for an earlier session',
    });
  });

  it('refuses what the network could only send unreadable', () => {
    assert.equal(queuedItemFate(blind10, { encryptedFor: null }, 0).kind, 'refuse');
    assert.equal(queuedItemFate(blind10, {}, 0).kind, 'refuse');
    assert.equal(
      queuedItemFate(clear10, { encryptedFor: { fCntDown: 0, sessionKeyId } }, 0).kind,
      'refuse',
    );
    assert.deepEqual(queuedItemFate(clear10, { encryptedFor: null }, 0), { kind: 'send' });
  });
});
