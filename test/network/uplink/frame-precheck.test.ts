/**
 * The data uplink's MIC check and decryption in the gateway worker (frame-precheck.ts): the
 * worker's table and check on their own, then a real Galet (UDP worker, real sockets) where the
 * network server must take the worker's word only for the session and counter it vouched for.
 */
import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import fc from 'fast-check';
import { buildDataFrame } from '../../../src/lorawan/data-frame.js';
import { SessionCache } from '../../../src/network/session-cache.js';
import type { DeviceSession } from '../../../src/network/store.js';
import {
  FramePrechecker,
  FramePrecheckMirror,
  framePrecheckOf,
  type PrecheckSession,
  type PrecheckUpdate,
  precheckSessionOf,
  precheckTableOf,
  precheckVersion,
} from '../../../src/network/uplink/frame-precheck.js';
import { deviceSession } from '../../helpers/device-session.js';
import { ScenarioNetwork } from '../../scenarios/helpers.js';

const key = (seed: number) => Uint8Array.from({ length: 16 }, (_, i) => (seed * 13 + i) & 0xff);

function precheckSession(
  devEui: string,
  devAddr: number,
  seed: number,
  fCntUp: number | null,
  maxGap = 16_384,
): PrecheckSession {
  return {
    devEui,
    devAddr,
    version: seed,
    keys: { lorawan: '1.0', nwkSKey: key(seed), appSKey: key(seed + 100) },
    fCntUp,
    maxGap,
  };
}

/** Loads sessions as the network server sends them after a (re)start: one compact table. */
function reset(checker: FramePrechecker, sessions: PrecheckSession[]): void {
  const { table, others } = precheckTableOf(sessions);
  assert.deepEqual(others, []);
  checker.apply({ kind: 'reset', table });
}

function frame(
  devAddr: number,
  seed: number,
  fCnt32: number,
  options: { fPort?: number; payload?: Uint8Array; confirmed?: boolean } = {},
): Uint8Array {
  return buildDataFrame(
    {
      mType: options.confirmed ? 'ConfirmedDataUp' : 'UnconfirmedDataUp',
      devAddr,
      fCtrl: { adr: false, adrAckReq: false, ack: false, classB: false, fPending: false },
      fCnt: fCnt32,
      fPort: options.fPort ?? 2,
      frmPayload: options.payload ?? Uint8Array.of(1, 2, 3),
    },
    { lorawan: '1.0', nwkSKey: key(seed), appSKey: key(seed + 100) },
  );
}

function session(devEui: string, devAddr: number, lorawan: '1.0' | '1.1'): DeviceSession {
  return deviceSession({
    devEui,
    devAddr,
    macVersion: lorawan === '1.0' ? '1.0.3' : '1.1.0',
    keys:
      lorawan === '1.0'
        ? { lorawan: '1.0', nwkSKey: key(1), appSKey: key(2) }
        : {
            lorawan: '1.1',
            fNwkSIntKey: key(1),
            sNwkSIntKey: key(2),
            nwkSEncKey: key(3),
            appSKey: key(4),
          },
  });
}

describe('frame precheck: the worker side', () => {
  it('vouches for a frame whose MIC verifies, with the 32-bit counter and the decrypted payload', () => {
    const checker = new FramePrechecker();
    reset(checker, [precheckSession('00000000000000a1', 0x2600_00a1, 7, null)]);
    const result = checker.check(frame(0x2600_00a1, 7, 0, { payload: Uint8Array.of(0x42, 0x43) }));
    assert.deepEqual(result && { ...result, frmPayload: [...(result.frmPayload ?? [])] }, {
      kind: 'framePrecheck',
      devEui: '00000000000000a1',
      version: 7,
      fCnt: 0,
      frmPayload: [0x42, 0x43],
    });
    // The worker follows the counter itself: the next frame is rebuilt from it.
    assert.equal(checker.check(frame(0x2600_00a1, 7, 1))?.fCnt, 1);
    // The same counter again (a retransmission) is still vouched for; an older one is not.
    assert.equal(checker.check(frame(0x2600_00a1, 7, 1))?.fCnt, 1);
    assert.equal(checker.check(frame(0x2600_00a1, 7, 0)), undefined);
  });

  it('rebuilds counters across the 16-bit roll-over and applies MAX_FCNT_GAP per session', () => {
    const checker = new FramePrechecker();
    reset(checker, [
      precheckSession('00000000000000b1', 0x2600_00b1, 8, 0xffff),
      precheckSession('00000000000000b2', 0x2600_00b2, 9, 10),
      precheckSession('00000000000000b3', 0x2600_00b3, 10, 10, Number.POSITIVE_INFINITY),
    ]);
    assert.equal(checker.check(frame(0x2600_00b1, 8, 0x1_0000))?.fCnt, 0x1_0000);
    // 1.0.2/1.0.3: a gap past 16,384 is not vouched for (the main thread drops it and counts it).
    assert.equal(checker.check(frame(0x2600_00b2, 9, 20_000)), undefined);
    // 1.0.4: no gap limit.
    assert.equal(checker.check(frame(0x2600_00b3, 10, 20_000))?.fCnt, 20_000);
  });

  it('picks, among sessions sharing a DevAddr, the one whose MIC verifies; wrong keys give nothing', () => {
    const checker = new FramePrechecker();
    reset(checker, [
      precheckSession('00000000000000c1', 0x2600_00c0, 11, null),
      precheckSession('00000000000000c2', 0x2600_00c0, 12, null),
    ]);
    assert.equal(checker.check(frame(0x2600_00c0, 12, 3))?.devEui, '00000000000000c2');
    assert.equal(checker.check(frame(0x2600_00c0, 13, 4)), undefined);
    assert.equal(checker.check(frame(0x2600_00c9, 11, 4)), undefined);
  });

  it('forgets and replaces sessions; an upsert with new keys is used at once', () => {
    const checker = new FramePrechecker();
    checker.apply({
      kind: 'upsert',
      sessions: [precheckSession('00000000000000d1', 0x2600_00d1, 14, null)],
    });
    assert.equal(checker.check(frame(0x2600_00d1, 14, 0))?.version, 14);
    checker.apply({
      kind: 'upsert',
      sessions: [precheckSession('00000000000000d1', 0x2600_00d1, 15, null)],
    });
    assert.equal(checker.check(frame(0x2600_00d1, 14, 1)), undefined);
    assert.equal(checker.check(frame(0x2600_00d1, 15, 0))?.version, 15);
    checker.apply({ kind: 'forget', devEuis: ['00000000000000d1'] });
    assert.equal(checker.check(frame(0x2600_00d1, 15, 1)), undefined);
    assert.equal(checker.size, 0);
  });

  it('reads sessions from the compact table: counters, gap rule, and blind sessions without AppSKey', () => {
    const checker = new FramePrechecker();
    const blind = precheckSession('00000000000000e2', 0x2600_00e2, 17, 41);
    blind.keys = { lorawan: '1.0', nwkSKey: blind.keys.nwkSKey };
    reset(checker, [blind, precheckSession('00000000000000e3', 0x2600_00e3, 18, null, Infinity)]);
    assert.equal(checker.size, 2);
    // The counter came through the table: 41 was the last, so 41 is a retransmission, 40 old.
    assert.equal(checker.check(frame(0x2600_00e2, 17, 40)), undefined);
    const up = checker.check(frame(0x2600_00e2, 17, 42, { fPort: 3 }));
    assert.equal(up?.fCnt, 42);
    assert.equal(up?.frmPayload, undefined, 'no AppSKey: the FRMPayload stays encrypted');
    const mac = checker.check(frame(0x2600_00e2, 17, 43, { fPort: 0, payload: Uint8Array.of(2) }));
    assert.deepEqual([...(mac?.frmPayload ?? [])], [2], 'FPort 0: decrypted with the NwkSKey');
    assert.equal(checker.check(frame(0x2600_00e3, 18, 50_000))?.fCnt, 50_000);
    checker.apply({ kind: 'forget', devEuis: ['00000000000000e2'] });
    assert.equal(checker.check(frame(0x2600_00e2, 17, 44)), undefined);
    assert.equal(checker.size, 1);
    assert.throws(() =>
      checker.apply({ kind: 'reset', table: { count: 2, devEuis: '', data: new Uint8Array(48) } }),
    );
  });

  it('replaces a table session by the one sent after it (new keys), and a reset replaces all', () => {
    const checker = new FramePrechecker();
    reset(checker, [
      precheckSession('00000000000000e4', 0x2600_00e4, 20, 5),
      precheckSession('00000000000000e5', 0x2600_00e4, 22, null),
    ]);
    assert.equal(checker.check(frame(0x2600_00e4, 20, 6))?.devEui, '00000000000000e4');
    checker.apply({
      kind: 'upsert',
      sessions: [precheckSession('00000000000000e4', 0x2600_00e4, 21, null)],
    });
    assert.equal(checker.size, 2);
    assert.equal(checker.check(frame(0x2600_00e4, 20, 7)), undefined, 'the old keys are gone');
    assert.equal(checker.check(frame(0x2600_00e4, 21, 0))?.version, 21);
    assert.equal(checker.check(frame(0x2600_00e4, 22, 0))?.devEui, '00000000000000e5');
    reset(checker, [precheckSession('00000000000000e6', 0x2600_00e6, 23, null)]);
    assert.equal(checker.size, 1);
    assert.equal(checker.check(frame(0x2600_00e4, 21, 1)), undefined);
    assert.equal(checker.check(frame(0x2600_00e6, 23, 0))?.devEui, '00000000000000e6');
  });

  it('never throws on arbitrary bytes, and vouches for none of them', () => {
    const checker = new FramePrechecker();
    reset(checker, [precheckSession('00000000000000e1', 0x2600_00e1, 16, null)]);
    fc.assert(
      fc.property(fc.uint8Array({ maxLength: 80 }), fc.boolean(), (bytes, aimed) => {
        const input = Uint8Array.from(bytes);
        if (aimed && input.length >= 5) {
          // A data-up header with the session's DevAddr: reaches the MIC check.
          input[0] = 0x40;
          input.set([0xe1, 0x00, 0x00, 0x26], 1);
        }
        assert.equal(checker.check(input), undefined);
      }),
      { numRuns: 2000 },
    );
  });
});

describe('frame precheck: the network server side', () => {
  it('sends a session once per keys object, forgets removed ones, and keeps 1.1 sessions out', () => {
    const sent: PrecheckUpdate[] = [];
    const mirror = new FramePrecheckMirror((update) => sent.push(update));
    // As the network server wires it: the cache hands each change over with what it replaces.
    const cache = new SessionCache();
    const s10 = session('00000000000000f1', 0x2600_00f1, '1.0');
    cache.load([s10, session('00000000000000f2', 0x2600_00f2, '1.1')]);
    mirror.reset(cache.all());
    cache.mirrorTo(mirror);
    assert.equal(sent.length, 1);
    const first = sent[0]!;
    assert.ok(first.kind === 'reset');
    assert.equal(first.table.count, 1);
    assert.equal(first.table.devEuis, '00000000000000f1');
    // A counter or MAC-state update keeps the keys object: nothing to send.
    cache.set({ ...s10, fCntUp: 5 });
    assert.equal(sent.length, 1);
    // New keys (a join): sent, with a new version.
    const rejoined = { ...s10, keys: { ...s10.keys }, fCntUp: null };
    cache.set(rejoined);
    assert.equal(sent.length, 2);
    const upsert = sent[1]!;
    assert.ok(upsert.kind === 'upsert');
    assert.notEqual(upsert.sessions[0]!.version, precheckVersion(s10.keys));
    assert.equal(upsert.sessions[0]!.version, precheckVersion(rejoined.keys));
    // A session that becomes 1.1 leaves the worker's table.
    cache.set(session('00000000000000f1', 0x2600_00f1, '1.1'));
    assert.deepEqual(sent[2], { kind: 'forget', devEuis: ['00000000000000f1'] });
    cache.delete('00000000000000f1');
    assert.equal(sent.length, 3);
    // Removing a 1.0 session forgets it.
    cache.set(rejoined);
    cache.delete('00000000000000f1');
    assert.deepEqual(sent[4], { kind: 'forget', devEuis: ['00000000000000f1'] });
    assert.equal(precheckSessionOf(session('00000000000000f3', 1, '1.1')), undefined);
  });

  it('reads only a well-formed annotation as a precheck', () => {
    assert.equal(framePrecheckOf(undefined), undefined);
    assert.equal(
      framePrecheckOf({ kind: 'framePrecheck', devEui: 'x', version: '1', fCnt: 0 }),
      undefined,
    );
    assert.equal(framePrecheckOf({ kind: 'other', devEui: 'x', version: 1, fCnt: 0 }), undefined);
    assert.ok(framePrecheckOf({ kind: 'framePrecheck', devEui: 'x', version: 1, fCnt: 0 }));
  });
});

describe('frame precheck in a running Galet (UDP worker, real sockets)', () => {
  const GW = 'aa555a00000000f1';
  const bytes = (...values: number[]) => Uint8Array.from(values);
  const base64 = (data: Uint8Array) => Buffer.from(data).toString('base64');

  it('checks 1.0.x uplinks in the worker, follows new session keys, and leaves 1.1 to the main thread', async () => {
    const net = await ScenarioNetwork.start([{ gatewayId: GW }]);
    try {
      const v103 = await net.addOtaaDevice('00000000000001a1', '1.0.3');
      await net.join(v103);
      for (const n of [1, 2, 3]) {
        const { event } = await net.uplink(v103, { fPort: 5, payload: bytes(0x10, n) });
        assert.equal(event.data, base64(bytes(0x10, n)));
      }
      assert.equal(await net.metric('galet_network_uplinks_prechecked_total'), 3);
      // An ABP device registered again with other keys under the same DevAddr: the worker
      // forgets the old session and gets the new one before the next uplink.
      const abp = await net.addAbpDevice('00000000000001a3', '1.0.3', 0x2600_01a3, { keySeed: 1 });
      await net.uplink(abp, { fPort: 5, payload: bytes(0x21) });
      assert.equal(
        (await net.galet.request('DELETE', '/api/v1/devices/00000000000001a3')).status,
        204,
      );
      const again = await net.addAbpDevice('00000000000001a3', '1.0.3', 0x2600_01a3, {
        keySeed: 2,
        fCntUp: 10,
      });
      const { event } = await net.uplink(again, { fPort: 5, payload: bytes(0x22) });
      assert.equal(event.fCnt, 10);
      assert.equal(event.data, base64(bytes(0x22)));
      assert.equal(await net.metric('galet_network_uplinks_prechecked_total'), 5);
      // 1.1: the main thread checks it (the worker does not hold 1.1 sessions).
      const v11 = await net.addAbpDevice('00000000000001a2', '1.1', 0x2600_01a2);
      const up11 = await net.uplink(v11, { fPort: 5, payload: bytes(0x30) });
      assert.equal(up11.event.data, base64(bytes(0x30)));
      assert.equal(await net.metric('galet_network_uplinks_prechecked_total'), 5);
      assert.equal(await net.metric('galet_network_uplinks_mic_failed_total'), 0);
      assert.equal(await net.metric('galet_network_uplinks_accepted_total'), 6);
    } finally {
      await net.close();
    }
  });

  it('with --frame-precheck false, the main thread checks every frame', async () => {
    const net = await ScenarioNetwork.start([{ gatewayId: GW }], undefined, {
      framePrecheck: false,
    });
    try {
      const abp = await net.addAbpDevice('00000000000001b1', '1.0.3', 0x2600_01b1);
      const { event } = await net.uplink(abp, { fPort: 5, payload: bytes(0x40) });
      assert.equal(event.data, base64(bytes(0x40)));
      assert.equal(await net.metric('galet_network_uplinks_prechecked_total'), 0);
      assert.equal(await net.metric('galet_network_uplinks_accepted_total'), 1);
    } finally {
      await net.close();
    }
  });
});
