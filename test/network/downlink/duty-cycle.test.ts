import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import fc from 'fast-check';
import { dataRateTimeOnAirMs, EU868, type Region } from '../../../src/lorawan/regions/index.js';
import { GatewayDutyCycle } from '../../../src/network/downlink/duty-cycle.js';

const HOUR_MS = 3_600_000;
const GATEWAY = '0102030405060708';
const OTHER_GATEWAY = 'aabbccddeeff0011';
/** In 868.0-868.6 MHz (1 %). */
const CHANNEL_1_HZ = 868_100_000;
const CHANNEL_3_HZ = 868_500_000;
/** In 869.4-869.65 MHz (10 %): the EU868 RX2 frequency. */
const RX2_HZ = 869_525_000;
/** In 868.7-869.2 MHz (0.1 %). */
const LOW_DUTY_HZ = 868_800_000;

function usedMs(
  dutyCycle: GatewayDutyCycle,
  gatewayId: string,
  frequencyHz: number,
  nowMs: number,
) {
  const subBand = EU868.subBandFor(frequencyHz);
  const found = dutyCycle.usage(gatewayId, nowMs).find((usage) => usage.subBand === subBand);
  assert.ok(found, `no usage for ${frequencyHz}`);
  return found.usedMs;
}

/** 36 one-second transmissions, one every 10 s from 0: the whole 1 % budget of an hour. */
function fillOnePercent(dutyCycle: GatewayDutyCycle, gatewayId = GATEWAY): void {
  for (let i = 0; i < 36; i += 1) dutyCycle.record(gatewayId, CHANNEL_1_HZ, i * 10_000, 1000);
}

/** A model that keeps every record and sums by brute force. */
interface Transmission {
  gatewayId: string;
  frequencyHz: number;
  startMs: number;
  airtimeMs: number;
}

function modelAirtime(
  records: readonly Transmission[],
  gatewayId: string,
  frequencyHz: number,
  fromMs: number,
  toMs: number,
): number {
  const subBand = EU868.subBandFor(frequencyHz);
  let total = 0;
  for (const record of records) {
    if (record.gatewayId !== gatewayId || EU868.subBandFor(record.frequencyHz) !== subBand) {
      continue;
    }
    const endMs = record.startMs + record.airtimeMs;
    total += Math.max(0, Math.min(endMs, toMs) - Math.max(record.startMs, fromMs));
  }
  return total;
}

describe('GatewayDutyCycle', () => {
  it('allows transmissions until the budget of the sub-band is used', () => {
    const dutyCycle = new GatewayDutyCycle({ region: EU868 });
    for (let i = 0; i < 36; i += 1) {
      const check = dutyCycle.check(GATEWAY, CHANNEL_1_HZ, i * 10_000, 1000);
      assert.equal(check.ok, true, `transmission ${i}`);
      assert.ok(check.ok);
      assert.equal(check.subBand?.name, '868.0-868.6 MHz');
      assert.equal(check.usedMs, i * 1000);
      assert.equal(check.budgetMs, 36_000);
      dutyCycle.record(GATEWAY, CHANNEL_1_HZ, i * 10_000, 1000);
    }
    const refused = dutyCycle.check(GATEWAY, CHANNEL_1_HZ, 400_000, 1000);
    assert.equal(refused.ok, false);
    assert.ok(!refused.ok && refused.code === 'DUTY_CYCLE');
    assert.equal(refused.usedMs, 36_000);
    assert.equal(refused.budgetMs, 36_000);
    assert.equal(refused.subBand.dutyCycle, 0.01);
  });

  it('refuses with a readable reason and the earliest start at which the frame fits', () => {
    const dutyCycle = new GatewayDutyCycle({ region: EU868 });
    fillOnePercent(dutyCycle);
    const refused = dutyCycle.check(GATEWAY, CHANNEL_3_HZ, 400_000, 1000);
    assert.ok(!refused.ok && refused.code === 'DUTY_CYCLE');
    assert.equal(
      refused.reason,
      'gateway 0102030405060708 cannot transmit 1 s on 868.5 MHz: sub-band 868.0-868.6 MHz ' +
        '(1 % duty cycle) already has 36 s of its 36 s per hour on air; it fits 53 min 20 s later',
    );
    // The frame fits once the first one [0, 1 s) has left the hour that ends with it.
    assert.equal(refused.retryAtMs, HOUR_MS);
    assert.equal(dutyCycle.check(GATEWAY, CHANNEL_3_HZ, HOUR_MS, 1000).ok, true);
    assert.equal(dutyCycle.check(GATEWAY, CHANNEL_3_HZ, HOUR_MS - 1, 1000).ok, false);

    // Two seconds need the first two frames gone: the second ends at 11 s.
    const longer = dutyCycle.check(GATEWAY, CHANNEL_1_HZ, 400_000, 2000);
    assert.ok(!longer.ok && longer.code === 'DUTY_CYCLE');
    assert.equal(longer.retryAtMs, HOUR_MS + 11_000 - 2000);
    assert.equal(dutyCycle.check(GATEWAY, CHANNEL_1_HZ, HOUR_MS + 9000, 2000).ok, true);
    assert.equal(dutyCycle.check(GATEWAY, CHANNEL_1_HZ, HOUR_MS + 8999, 2000).ok, false);

    // Half a frame is freed by the first frame being half out of the window.
    const partial = new GatewayDutyCycle({ region: EU868 });
    partial.record(GATEWAY, CHANNEL_1_HZ, 0, 36_000);
    const half = partial.check(GATEWAY, CHANNEL_1_HZ, 100_000, 500);
    assert.ok(!half.ok && half.code === 'DUTY_CYCLE');
    assert.equal(half.retryAtMs, HOUR_MS);
    assert.equal(partial.check(GATEWAY, CHANNEL_1_HZ, HOUR_MS, 500).ok, true);
  });

  it('has no retry time for a frame longer than the whole budget', () => {
    const dutyCycle = new GatewayDutyCycle({ region: EU868 });
    const refused = dutyCycle.check(GATEWAY, LOW_DUTY_HZ, 0, 3601);
    assert.ok(!refused.ok && refused.code === 'DUTY_CYCLE');
    assert.equal(refused.retryAtMs, undefined);
    assert.equal(refused.budgetMs, 3600);
    assert.match(refused.reason, /\(0\.1 % duty cycle\).*it is longer than the whole budget$/);
    assert.equal(dutyCycle.check(GATEWAY, LOW_DUTY_HZ, 0, 3600).ok, true);
  });

  it('counts a transmission recorded after check refused it: it was on air', () => {
    const dutyCycle = new GatewayDutyCycle({ region: EU868 });
    fillOnePercent(dutyCycle);
    assert.equal(dutyCycle.check(GATEWAY, CHANNEL_1_HZ, 400_000, 1000).ok, false);
    dutyCycle.record(GATEWAY, CHANNEL_1_HZ, 400_000, 1000);
    assert.equal(usedMs(dutyCycle, GATEWAY, CHANNEL_1_HZ, 500_000), 37_000);
    const refused = dutyCycle.check(GATEWAY, CHANNEL_1_HZ, 500_000, 1000);
    assert.ok(!refused.ok && refused.code === 'DUTY_CYCLE');
    assert.equal(refused.retryAtMs, HOUR_MS + 11_000 - 1000);
  });

  it('takes back a transmission the gateway did not make, and only that one', () => {
    const dutyCycle = new GatewayDutyCycle({ region: EU868 });
    fillOnePercent(dutyCycle);
    dutyCycle.record(GATEWAY, CHANNEL_1_HZ, 365_000, 1500);
    dutyCycle.record(GATEWAY, CHANNEL_1_HZ, 370_000, 500);
    assert.equal(usedMs(dutyCycle, GATEWAY, CHANNEL_1_HZ, 400_000), 38_000);
    // Released with the same arguments: the frames after it keep their place in the sums.
    assert.equal(dutyCycle.release(GATEWAY, CHANNEL_3_HZ, 365_000, 1500), true);
    assert.equal(usedMs(dutyCycle, GATEWAY, CHANNEL_1_HZ, 400_000), 36_500);
    // The window from 365.5 s would hold 1 s of it; the frame at 370 s still counts.
    assert.equal(usedMs(dutyCycle, GATEWAY, CHANNEL_1_HZ, HOUR_MS + 365_500), 500);
    assert.equal(usedMs(dutyCycle, GATEWAY, CHANNEL_1_HZ, HOUR_MS + 370_250), 250);
    // Nothing recorded like that (any more), another gateway, another sub-band: nothing changes.
    assert.equal(dutyCycle.release(GATEWAY, CHANNEL_1_HZ, 365_000, 1500), false);
    assert.equal(dutyCycle.release(GATEWAY, CHANNEL_1_HZ, 370_000, 400), false);
    assert.equal(dutyCycle.release(OTHER_GATEWAY, CHANNEL_1_HZ, 370_000, 500), false);
    assert.equal(dutyCycle.release(GATEWAY, RX2_HZ, 370_000, 500), false);
    assert.equal(usedMs(dutyCycle, GATEWAY, CHANNEL_1_HZ, 400_000), 36_500);
    const check = dutyCycle.check(GATEWAY, CHANNEL_1_HZ, 400_000, 1000);
    assert.ok(!check.ok && check.code === 'DUTY_CYCLE');
    assert.equal(check.usedMs, 36_500);
    // The last entry released: the ledger is empty again.
    for (let i = 0; i < 36; i += 1) dutyCycle.release(GATEWAY, CHANNEL_1_HZ, i * 10_000, 1000);
    assert.equal(dutyCycle.release(GATEWAY, CHANNEL_1_HZ, 370_000, 500), true);
    assert.equal(usedMs(dutyCycle, GATEWAY, CHANNEL_1_HZ, 400_000), 0);
    assert.equal(dutyCycle.check(GATEWAY, CHANNEL_1_HZ, 400_000, 36_000).ok, true);
  });

  it('lets transmissions leave the window an hour after they ended', () => {
    const dutyCycle = new GatewayDutyCycle({ region: EU868 });
    fillOnePercent(dutyCycle);
    assert.equal(usedMs(dutyCycle, GATEWAY, CHANNEL_1_HZ, 351_000), 36_000);
    // The first frame [0, 1 s) is half inside (0.5 s, 3600.5 s].
    assert.equal(usedMs(dutyCycle, GATEWAY, CHANNEL_1_HZ, HOUR_MS + 500), 35_500);
    assert.equal(usedMs(dutyCycle, GATEWAY, CHANNEL_1_HZ, HOUR_MS + 100_000), 26_000);
    assert.equal(usedMs(dutyCycle, GATEWAY, CHANNEL_1_HZ, HOUR_MS + 351_000), 0);
    const check = dutyCycle.check(GATEWAY, CHANNEL_1_HZ, 2 * HOUR_MS, 36_000);
    assert.ok(check.ok);
    assert.equal(check.usedMs, 0);
    // Recording much later prunes the old frames, and the accounting starts again.
    dutyCycle.record(GATEWAY, CHANNEL_1_HZ, 3 * HOUR_MS, 1000);
    assert.equal(usedMs(dutyCycle, GATEWAY, CHANNEL_1_HZ, 3 * HOUR_MS + 1000), 1000);
  });

  it('does not count a transmission before it is on air in the usage, but does in checks', () => {
    const dutyCycle = new GatewayDutyCycle({ region: EU868 });
    dutyCycle.record(GATEWAY, CHANNEL_1_HZ, 60_000, 30_000);
    assert.equal(usedMs(dutyCycle, GATEWAY, CHANNEL_1_HZ, 50_000), 0);
    assert.equal(usedMs(dutyCycle, GATEWAY, CHANNEL_1_HZ, 70_000), 10_000);
    // A frame earlier than one scheduled ahead still shares an hour with it.
    const earlier = dutyCycle.check(GATEWAY, CHANNEL_1_HZ, 10_000, 10_000);
    assert.ok(!earlier.ok && earlier.code === 'DUTY_CYCLE');
    assert.equal(earlier.usedMs, 30_000);
    assert.equal(dutyCycle.check(GATEWAY, CHANNEL_1_HZ, 10_000, 6000).ok, true);
  });

  it('keeps out-of-order records in order', () => {
    const dutyCycle = new GatewayDutyCycle({ region: EU868 });
    dutyCycle.record(GATEWAY, CHANNEL_1_HZ, 3000, 1000);
    dutyCycle.record(GATEWAY, CHANNEL_1_HZ, 1000, 1000);
    dutyCycle.record(GATEWAY, CHANNEL_1_HZ, 2000, 500);
    assert.equal(usedMs(dutyCycle, GATEWAY, CHANNEL_1_HZ, 10_000), 2500);
    assert.equal(usedMs(dutyCycle, GATEWAY, CHANNEL_1_HZ, HOUR_MS + 2200), 1300);
    assert.equal(usedMs(dutyCycle, GATEWAY, CHANNEL_1_HZ, 2200), 1200);
  });

  it('accounts the RX2 sub-band (10 %) apart from the 1 % sub-band', () => {
    const dutyCycle = new GatewayDutyCycle({ region: EU868 });
    fillOnePercent(dutyCycle);
    const rx2 = dutyCycle.check(GATEWAY, RX2_HZ, 400_000, 1000);
    assert.ok(rx2.ok);
    assert.equal(rx2.subBand?.name, '869.4-869.65 MHz');
    assert.equal(rx2.usedMs, 0);
    assert.equal(rx2.budgetMs, 360_000);
    for (let i = 0; i < 360; i += 1) dutyCycle.record(GATEWAY, RX2_HZ, 400_000 + i * 2000, 1000);
    assert.equal(dutyCycle.check(GATEWAY, RX2_HZ, 1_200_000, 1000).ok, false);
    assert.equal(usedMs(dutyCycle, GATEWAY, CHANNEL_1_HZ, 1_200_000), 36_000);
    assert.equal(usedMs(dutyCycle, GATEWAY, RX2_HZ, 1_200_000), 360_000);
    // The 1 % sub-band frees up on its own schedule, the RX2 one stays full.
    assert.equal(dutyCycle.check(GATEWAY, CHANNEL_1_HZ, HOUR_MS, 1000).ok, true);
    assert.equal(dutyCycle.check(GATEWAY, RX2_HZ, HOUR_MS, 1000).ok, false);
    const usage = dutyCycle.usage(GATEWAY, 1_200_000);
    assert.deepEqual(
      usage.map((entry) => [entry.subBand.name, entry.usedMs, entry.budgetMs]),
      [
        ['863.0-865.0 MHz', 0, 3600],
        ['865.0-868.0 MHz', 0, 36_000],
        ['868.0-868.6 MHz', 36_000, 36_000],
        ['868.7-869.2 MHz', 0, 3600],
        ['869.4-869.65 MHz', 360_000, 360_000],
        ['869.7-870.0 MHz', 0, 36_000],
      ],
    );
  });

  it('accounts each gateway apart, and forgets one on request', () => {
    const dutyCycle = new GatewayDutyCycle({ region: EU868 });
    fillOnePercent(dutyCycle);
    assert.equal(dutyCycle.check(GATEWAY, CHANNEL_1_HZ, 400_000, 1000).ok, false);
    const other = dutyCycle.check(OTHER_GATEWAY, CHANNEL_1_HZ, 400_000, 1000);
    assert.ok(other.ok);
    assert.equal(other.usedMs, 0);
    assert.equal(usedMs(dutyCycle, OTHER_GATEWAY, CHANNEL_1_HZ, 400_000), 0);
    dutyCycle.forget(GATEWAY);
    assert.equal(dutyCycle.check(GATEWAY, CHANNEL_1_HZ, 400_000, 1000).ok, true);
    assert.equal(dutyCycle.trackedGateways, 0);
  });

  it('forgets the least recently recorded gateway beyond maxTrackedGateways', () => {
    const dutyCycle = new GatewayDutyCycle({ region: EU868, maxTrackedGateways: 2 });
    dutyCycle.record('01', CHANNEL_1_HZ, 0, 1000);
    dutyCycle.record('02', CHANNEL_1_HZ, 0, 1000);
    dutyCycle.record('01', CHANNEL_1_HZ, 2000, 1000);
    dutyCycle.record('03', CHANNEL_1_HZ, 0, 1000);
    assert.equal(dutyCycle.trackedGateways, 2);
    assert.equal(usedMs(dutyCycle, '01', CHANNEL_1_HZ, 5000), 2000);
    assert.equal(usedMs(dutyCycle, '02', CHANNEL_1_HZ, 5000), 0);
    assert.equal(usedMs(dutyCycle, '03', CHANNEL_1_HZ, 5000), 1000);
  });

  it('refuses a frequency outside every sub-band, and records nothing for it', () => {
    const dutyCycle = new GatewayDutyCycle({ region: EU868 });
    for (const frequencyHz of [868_650_000, 869_300_000, 869_675_000, 870_000_000, 433_175_000]) {
      const check = dutyCycle.check(GATEWAY, frequencyHz, 0, 100);
      assert.ok(!check.ok && check.code === 'OUTSIDE_SUB_BANDS', String(frequencyHz));
      assert.equal(dutyCycle.record(GATEWAY, frequencyHz, 0, 100), undefined);
    }
    const check = dutyCycle.check(GATEWAY, 868_650_000, 0, 100);
    assert.ok(!check.ok);
    assert.equal(
      check.reason,
      'gateway 0102030405060708 cannot transmit on 868.65 MHz: the frequency is in no EU868 ' +
        'duty-cycle sub-band',
    );
    assert.equal(dutyCycle.trackedGateways, 0);
  });

  it('always allows in a region without duty-cycle sub-bands', () => {
    const noSubBands: Region = { ...EU868, subBands: [], subBandFor: () => undefined };
    const dutyCycle = new GatewayDutyCycle({ region: noSubBands });
    dutyCycle.record(GATEWAY, CHANNEL_1_HZ, 0, HOUR_MS);
    const check = dutyCycle.check(GATEWAY, CHANNEL_1_HZ, 0, HOUR_MS);
    assert.ok(check.ok);
    assert.equal(check.subBand, undefined);
    assert.equal(check.budgetMs, Number.POSITIVE_INFINITY);
    assert.deepEqual(dutyCycle.usage(GATEWAY, HOUR_MS), []);
  });

  it('fits 12 SF12 downlinks with a 51-byte FRMPayload in 1 % of an hour, 128 at 10 %', () => {
    // MHDR 1 + FHDR 7 + FPort 1 + FRMPayload 51 + MIC 4 = 64 bytes, the largest DR0 frame.
    const airtimeMs = dataRateTimeOnAirMs(EU868.dataRate(0), 64, 'downlink');
    assert.ok(Math.abs(airtimeMs - 2793.472) < 1e-9, `airtime ${airtimeMs}`);
    const sent = (frequencyHz: number) => {
      const dutyCycle = new GatewayDutyCycle({ region: EU868 });
      let count = 0;
      for (let startMs = 0; startMs < HOUR_MS; startMs += 5000) {
        if (!dutyCycle.check(GATEWAY, frequencyHz, startMs, airtimeMs).ok) break;
        dutyCycle.record(GATEWAY, frequencyHz, startMs, airtimeMs);
        count += 1;
      }
      return { count, dutyCycle };
    };
    const onePercent = sent(CHANNEL_1_HZ);
    assert.equal(onePercent.count, 12);
    assert.equal(onePercent.count, Math.floor(36_000 / airtimeMs));
    const refused = onePercent.dutyCycle.check(GATEWAY, CHANNEL_1_HZ, 60_000, airtimeMs);
    assert.ok(!refused.ok && refused.code === 'DUTY_CYCLE');
    // The 12 frames use 33.5 s: the 13th needs the first one's 2.793 s minus 2.479 s left.
    assert.match(refused.reason, /already has 33\.522 s of its 36 s per hour on air/);
    assert.ok(refused.retryAtMs !== undefined);
    assert.equal(
      onePercent.dutyCycle.check(GATEWAY, CHANNEL_1_HZ, refused.retryAtMs, airtimeMs).ok,
      true,
    );
    assert.equal(
      onePercent.dutyCycle.check(GATEWAY, CHANNEL_1_HZ, refused.retryAtMs - 1, airtimeMs).ok,
      false,
    );
    assert.equal(sent(RX2_HZ).count, Math.floor(360_000 / airtimeMs));
    assert.equal(sent(RX2_HZ).count, 128);
  });

  it('merges entries beyond maxEntriesPerSubBand without ever counting less', () => {
    const exact = new GatewayDutyCycle({ region: EU868 });
    const merged = new GatewayDutyCycle({ region: EU868, maxEntriesPerSubBand: 4 });
    for (let i = 0; i < 200; i += 1) {
      exact.record(GATEWAY, CHANNEL_1_HZ, i * 1000, 100);
      merged.record(GATEWAY, CHANNEL_1_HZ, i * 1000, 100);
    }
    for (const nowMs of [50_000, 199_100, HOUR_MS, HOUR_MS + 50_050, HOUR_MS + 150_000]) {
      const exactUsed = usedMs(exact, GATEWAY, CHANNEL_1_HZ, nowMs);
      const mergedUsed = usedMs(merged, GATEWAY, CHANNEL_1_HZ, nowMs);
      assert.ok(mergedUsed >= exactUsed, `at ${nowMs}: ${mergedUsed} < ${exactUsed}`);
    }
    assert.equal(usedMs(merged, GATEWAY, CHANNEL_1_HZ, 200_000), 20_000);
  });

  it('stays exact over hours of traffic recorded slightly out of order', () => {
    const dutyCycle = new GatewayDutyCycle({ region: EU868 });
    const records: Transmission[] = [];
    // Every 700 ms for six hours, each pair recorded in reverse order.
    for (let i = 0; i < 30_000; i += 2) {
      for (const k of [i + 1, i]) {
        const record = { gatewayId: GATEWAY, frequencyHz: RX2_HZ, startMs: k * 700, airtimeMs: 50 };
        dutyCycle.record(GATEWAY, RX2_HZ, record.startMs, record.airtimeMs);
        records.push(record);
      }
      if (i % 2000 === 0) {
        const nowMs = i * 700 + 725;
        const expected = modelAirtime(records, GATEWAY, RX2_HZ, nowMs - HOUR_MS, nowMs);
        assert.ok(Math.abs(usedMs(dutyCycle, GATEWAY, RX2_HZ, nowMs) - expected) < 1e-6);
        const check = dutyCycle.check(GATEWAY, RX2_HZ, nowMs + 700, 50);
        assert.ok(check.ok);
        const inWindow = modelAirtime(records, GATEWAY, RX2_HZ, nowMs + 750 - HOUR_MS, Infinity);
        assert.ok(Math.abs(check.usedMs - inWindow) < 1e-6);
      }
    }
  });

  it('throws on arguments that are programming errors', () => {
    assert.throws(() => new GatewayDutyCycle({ region: EU868, windowMs: 0 }), RangeError);
    assert.throws(() => new GatewayDutyCycle({ region: EU868, maxTrackedGateways: 0 }), RangeError);
    assert.throws(
      () => new GatewayDutyCycle({ region: EU868, maxEntriesPerSubBand: 1 }),
      RangeError,
    );
    const dutyCycle = new GatewayDutyCycle({ region: EU868 });
    assert.throws(() => dutyCycle.check(GATEWAY, CHANNEL_1_HZ, 0, Number.NaN), RangeError);
    assert.throws(() => dutyCycle.record(GATEWAY, CHANNEL_1_HZ, Number.NaN, 10), RangeError);
    assert.throws(() => dutyCycle.record(GATEWAY, CHANNEL_1_HZ, 0, -1), RangeError);
    assert.throws(() => dutyCycle.usage(GATEWAY, Number.POSITIVE_INFINITY), RangeError);
  });
});

describe('GatewayDutyCycle properties', () => {
  const WINDOW_MS = 100_000;
  const frequencies = [CHANNEL_1_HZ, CHANNEL_3_HZ, RX2_HZ, LOW_DUTY_HZ];
  // A clock that moves forward, and operations a quarter window around it either way (late
  // records, transmissions scheduled ahead), as a scheduler produces them.
  const operation = fc.record({
    kind: fc.constantFrom('record', 'check', 'usage'),
    gatewayId: fc.constantFrom('01', '02'),
    frequencyHz: fc.constantFrom(...frequencies),
    advanceMs: fc.integer({ min: 0, max: 20_000 }),
    offsetMs: fc.integer({ min: -WINDOW_MS / 4, max: WINDOW_MS / 4 }),
    // Budgets are 100 ms, 1 s and 10 s: mostly frames that fit, some longer than a budget.
    airtimeMs: fc.oneof(
      fc.integer({ min: 1, max: 400 }),
      fc.integer({ min: 1, max: 4000 }),
      fc.integer({ min: 1, max: WINDOW_MS / 4 }),
    ),
  });

  it('usage equals the airtime recorded inside the window; check allows exactly what fits', () => {
    // How often the interesting branches ran, so that a generator change cannot hollow the test.
    let refusedWithRetry = 0;
    let allowedAfterUse = 0;
    fc.assert(
      fc.property(fc.array(operation, { maxLength: 120, size: 'max' }), (operations) => {
        const dutyCycle = new GatewayDutyCycle({ region: EU868, windowMs: WINDOW_MS });
        const records: Transmission[] = [];
        let clockMs = 0;
        for (const op of operations) {
          clockMs += op.advanceMs;
          const timeMs = clockMs + op.offsetMs;
          const budgetMs = EU868.subBandFor(op.frequencyHz)!.dutyCycle * WINDOW_MS;
          if (op.kind === 'record') {
            dutyCycle.record(op.gatewayId, op.frequencyHz, timeMs, op.airtimeMs);
            records.push({ ...op, startMs: timeMs });
          } else if (op.kind === 'usage') {
            const used = usedMs(dutyCycle, op.gatewayId, op.frequencyHz, timeMs);
            const expected = modelAirtime(
              records,
              op.gatewayId,
              op.frequencyHz,
              timeMs - WINDOW_MS,
              timeMs,
            );
            assert.ok(Math.abs(used - expected) < 1e-6, `usage ${used}, recorded ${expected}`);
          } else {
            const usedAfter = (startMs: number) =>
              modelAirtime(
                records,
                op.gatewayId,
                op.frequencyHz,
                startMs + op.airtimeMs - WINDOW_MS,
                Number.POSITIVE_INFINITY,
              );
            const fits = (startMs: number) => usedAfter(startMs) + op.airtimeMs <= budgetMs;
            const check = dutyCycle.check(op.gatewayId, op.frequencyHz, timeMs, op.airtimeMs);
            assert.equal(check.ok, fits(timeMs));
            if (check.ok) {
              if (check.usedMs > 0) allowedAfterUse += 1;
              assert.equal(check.usedMs, usedAfter(timeMs));
              assert.ok(check.usedMs + op.airtimeMs <= check.budgetMs);
            } else {
              assert.equal(check.code, 'DUTY_CYCLE');
              if (check.code !== 'DUTY_CYCLE') return;
              assert.ok(check.usedMs + op.airtimeMs > check.budgetMs);
              if (op.airtimeMs > budgetMs) {
                assert.equal(check.retryAtMs, undefined);
              } else {
                assert.ok(check.retryAtMs !== undefined && check.retryAtMs > timeMs);
                assert.ok(fits(check.retryAtMs), 'fits at retryAtMs');
                assert.ok(!fits(check.retryAtMs - 1), 'retryAtMs is the earliest');
                refusedWithRetry += 1;
              }
            }
          }
        }
      }),
      { numRuns: 300 },
    );
    assert.ok(refusedWithRetry > 100, `only ${refusedWithRetry} refusals with a retry time`);
    assert.ok(allowedAfterUse > 100, `only ${allowedAfterUse} checks allowed with airtime used`);
  });

  it('with merged entries, never counts less than was on air', () => {
    fc.assert(
      fc.property(
        fc.array(
          fc.record({
            gapMs: fc.integer({ min: 0, max: 5000 }),
            airtimeMs: fc.integer({ min: 1, max: 3000 }),
            probeOffsetMs: fc.integer({ min: -WINDOW_MS, max: WINDOW_MS / 4 }),
          }),
          { maxLength: 150, size: 'max' },
        ),
        fc.integer({ min: 2, max: 8 }),
        (transmissions, maxEntriesPerSubBand) => {
          const dutyCycle = new GatewayDutyCycle({
            region: EU868,
            windowMs: WINDOW_MS,
            maxEntriesPerSubBand,
          });
          const records: Transmission[] = [];
          let startMs = 0;
          for (const { gapMs, airtimeMs, probeOffsetMs } of transmissions) {
            startMs += gapMs;
            const probeMs = startMs + probeOffsetMs;
            const budgetMs = WINDOW_MS * 0.1;
            const check = dutyCycle.check(GATEWAY, RX2_HZ, probeMs, airtimeMs);
            const onAir = modelAirtime(
              records,
              GATEWAY,
              RX2_HZ,
              probeMs + airtimeMs - WINDOW_MS,
              Number.POSITIVE_INFINITY,
            );
            if (check.ok) assert.ok(onAir + airtimeMs <= budgetMs);
            const used = usedMs(dutyCycle, GATEWAY, RX2_HZ, probeMs);
            const expected = modelAirtime(records, GATEWAY, RX2_HZ, probeMs - WINDOW_MS, probeMs);
            assert.ok(used >= expected - 1e-6, `usage ${used} < ${expected}`);
            dutyCycle.record(GATEWAY, RX2_HZ, startMs, airtimeMs);
            records.push({ gatewayId: GATEWAY, frequencyHz: RX2_HZ, startMs, airtimeMs });
            startMs += airtimeMs;
          }
        },
      ),
      { numRuns: 300 },
    );
  });
});
