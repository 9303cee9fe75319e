import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import fc from 'fast-check';
import { reconstructFCnt } from '../../../src/lorawan/fcnt.js';
import {
  ADR_HISTORY_LENGTH,
  appendUplink,
  packetLossRate,
  type UplinkHistory,
  type UplinkHistoryEntry,
  uplinkHistoryFromJson,
} from '../../../src/network/adr/index.js';

function entry(fCnt: number, maxSnrDb = 0, dr = 0, txPowerIndex = 0): UplinkHistoryEntry {
  return { fCnt, maxSnrDb, gatewayCount: 1, dr, txPowerIndex };
}

function historyOf(fCnts: readonly number[]): UplinkHistory {
  let history: UplinkHistory = [];
  for (const fCnt of fCnts) history = appendUplink(history, entry(fCnt));
  return history;
}

describe('ADR uplink history', () => {
  it('keeps uplinks oldest first and only the last 20', () => {
    const history = historyOf(Array.from({ length: 25 }, (_, i) => i));
    assert.equal(history.length, ADR_HISTORY_LENGTH);
    assert.deepEqual(
      history.map((e) => e.fCnt),
      Array.from({ length: 20 }, (_, i) => i + 5),
    );
  });

  it('does not change the history it is given', () => {
    const before = historyOf([1, 2]);
    const after = appendUplink(before, entry(3));
    assert.equal(before.length, 2);
    assert.equal(after.length, 3);
  });

  it('ignores a retransmission of the last frame counter, keeping the first reception', () => {
    const history = appendUplink(historyOf([1, 2]), entry(2, 9));
    assert.deepEqual(
      history.map((e) => [e.fCnt, e.maxSnrDb]),
      [
        [1, 0],
        [2, 0],
      ],
    );
  });

  it('ignores a late duplicate of an older frame counter', () => {
    assert.deepEqual(
      appendUplink(historyOf([1, 2, 3]), entry(2)).map((e) => e.fCnt),
      [1, 2, 3],
    );
  });

  it('restarts on a frame counter below the last one that it has not seen (a new session)', () => {
    assert.deepEqual(
      appendUplink(historyOf([10, 11, 13]), entry(12)).map((e) => e.fCnt),
      [12],
    );
    assert.deepEqual(
      appendUplink(historyOf([100, 101]), entry(0)).map((e) => e.fCnt),
      [0],
    );
  });

  it('keeps entries across data rate and TX power changes', () => {
    let history: UplinkHistory = [];
    history = appendUplink(history, entry(1, 5, 0, 0));
    history = appendUplink(history, entry(2, 3, 5, 2));
    assert.deepEqual(
      history.map((e) => [e.dr, e.txPowerIndex]),
      [
        [0, 0],
        [5, 2],
      ],
    );
  });

  it('refuses an entry out of range', () => {
    assert.throws(() => appendUplink([], entry(2 ** 32)), /fCnt/);
    assert.throws(() => appendUplink([], entry(-1)), /fCnt/);
    assert.throws(() => appendUplink([], entry(1, Number.NaN)), /maxSnrDb/);
    assert.throws(() => appendUplink([], entry(1), 0), /length/);
  });

  it('round-trips through JSON', () => {
    const history = historyOf([1, 2, 4, 7]);
    assert.deepEqual(uplinkHistoryFromJson(JSON.parse(JSON.stringify(history))), history);
  });

  it('reads anything that is not a valid history as an empty one', () => {
    assert.deepEqual(uplinkHistoryFromJson(null), []);
    assert.deepEqual(uplinkHistoryFromJson({ fCnt: 1 }), []);
    assert.deepEqual(uplinkHistoryFromJson([entry(1), { fCnt: 2 }]), []);
    assert.deepEqual(uplinkHistoryFromJson([entry(2), entry(1)]), []);
    assert.deepEqual(uplinkHistoryFromJson([entry(1), { ...entry(2), maxSnrDb: 'x' }]), []);
  });
});

describe('packet loss rate from frame counter gaps', () => {
  it('is 0 without gaps and with fewer than two uplinks', () => {
    assert.equal(packetLossRate([]), 0);
    assert.equal(packetLossRate(historyOf([7])), 0);
    assert.equal(packetLossRate(historyOf([1, 2, 3, 4])), 0);
  });

  it('counts the frames missing between the oldest and the newest uplink', () => {
    // 1..10 sent, 8 received.
    assert.equal(packetLossRate(historyOf([1, 2, 4, 5, 6, 8, 9, 10])), 2 / 10);
    // 0..19 sent, 10 received.
    assert.equal(packetLossRate(historyOf([0, 2, 4, 6, 8, 10, 12, 14, 16, 19])), 10 / 20);
  });

  it('does not count retransmissions as received frames', () => {
    let history = historyOf([1, 3]);
    history = appendUplink(history, entry(3));
    assert.equal(packetLossRate(history), 1 / 3);
  });

  it('counts across a 16-bit roll-over of the wire counter with 32-bit counters', () => {
    // Wire values 65534, 65535, 1, 2 after the counter passed 2^16: 65536 was lost.
    let last: number | undefined;
    let history: UplinkHistory = [];
    for (const wire of [65534, 65535, 1, 2]) {
      const fCnt = reconstructFCnt(wire, last)!;
      last = fCnt;
      history = appendUplink(history, entry(fCnt));
    }
    assert.deepEqual(
      history.map((e) => e.fCnt),
      [65534, 65535, 65537, 65538],
    );
    assert.equal(packetLossRate(history), 1 / 5);
  });

  it('works up to the end of the 32-bit counter space', () => {
    const top = 0xffff_ffff;
    assert.equal(packetLossRate(historyOf([top - 3, top])), 2 / 4);
  });

  it('stays between 0 and 1 and matches the count of missing counters', () => {
    fc.assert(
      fc.property(
        fc.uniqueArray(fc.integer({ min: 0, max: 2 ** 32 - 1 }), { minLength: 2, maxLength: 20 }),
        (counters) => {
          const sorted = [...counters].sort((a, b) => a - b);
          const rate = packetLossRate(historyOf(sorted));
          const sent = sorted[sorted.length - 1]! - sorted[0]! + 1;
          assert.ok(rate >= 0 && rate < 1);
          assert.ok(Math.abs(rate - (sent - sorted.length) / sent) < 1e-12);
        },
      ),
    );
  });
});
