/**
 * LoRaWAN 1.1 RejoinRequest and the JoinAccept that answers it: round trips, the key each
 * part uses, cross-checks with lora-packet 0.9.3 (see lora-packet-crosscheck.test.ts for its
 * quirks: big-endian getters, RJcount1 read from the wrong bytes, JoinReqType 0 passed as a
 * Buffer), and fuzzing (only LorawanError may come out).
 *
 * /work/shared/lorawan/vectors.json has no rejoin vector, so there is no known-answer test here:
 * lora-packet is the independent oracle.
 */
import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import fc from 'fast-check';
import loraPacketModule from 'lora-packet';
import { bytesToHex, uint24ToHex } from '../../src/lorawan/bytes.js';
import { joinRequestTypeCode } from '../../src/lorawan/crypto/join.js';
import {
  deriveJoinServerKeys,
  deriveSessionKeys11,
} from '../../src/lorawan/crypto/session-keys.js';
import { isLorawanError } from '../../src/lorawan/errors.js';
import {
  buildJoinAccept,
  type JoinAcceptFields,
  openJoinAccept,
  verifyJoinAcceptMic,
} from '../../src/lorawan/join-accept.js';
import {
  decodePhyPayload,
  decodePhyPayloadWithMicInput,
  type RejoinRequest,
} from '../../src/lorawan/phy-payload.js';
import {
  buildRejoinRequest,
  computeRejoinRequestMic,
  joinRequestTypeOfRejoin,
  optNegJoinAcceptKeys,
  rejoinCounter,
  rejoinRequestMicKey,
  type UnsignedRejoinRequest,
  verifyRejoinRequestMic,
} from '../../src/lorawan/rejoin-request.js';

const loraPacket = loraPacketModule as unknown as typeof loraPacketModule.default;

const RUNS = 300;
const PLAIN = { noNullPrototype: true } as const;

const uint = (bits: number) => fc.integer({ min: 0, max: 2 ** bits - 1 });
const fixedBytes = (length: number) => fc.uint8Array({ minLength: length, maxLength: length });
const aesKey = fixedBytes(16);
const eui = fixedBytes(8).map(bytesToHex);

const unsignedRejoin: fc.Arbitrary<UnsignedRejoinRequest> = fc.oneof(
  fc.record(
    {
      mType: fc.constant('RejoinRequest' as const),
      rejoinType: fc.constantFrom(0 as const, 2 as const),
      netId: uint(24),
      devEui: eui,
      rjCount0: uint(16),
    },
    PLAIN,
  ),
  fc.record(
    {
      mType: fc.constant('RejoinRequest' as const),
      rejoinType: fc.constant(1 as const),
      joinEui: eui,
      devEui: eui,
      rjCount1: uint(16),
    },
    PLAIN,
  ),
);

const joinAcceptFields: fc.Arbitrary<JoinAcceptFields> = fc.record(
  {
    joinNonce: uint(24),
    netId: uint(24),
    devAddr: uint(32),
    dlSettings: fc.record(
      { optNeg: fc.constant(true), rx1DrOffset: uint(3), rx2Dr: uint(4) },
      PLAIN,
    ),
    rxDelay: uint(4),
    cfList: fc.option(fixedBytes(16), { nil: undefined }),
  },
  PLAIN,
);

function bigEndian(value: number, length: number): Buffer {
  const out = Buffer.alloc(length);
  out.writeUIntBE(value, 0, length);
  return out;
}

function flipBit(bytes: Uint8Array, bit: number): Uint8Array {
  const out = Uint8Array.from(bytes);
  out[bit >>> 3]! ^= 1 << (bit & 7);
  return out;
}

describe('RejoinRequest MIC', () => {
  it('builds frames that decode to the same fields and verify with the key that signed them', () => {
    fc.assert(
      fc.property(unsignedRejoin, aesKey, aesKey, (request, key, otherKey) => {
        fc.pre(bytesToHex(key) !== bytesToHex(otherKey));
        const phy = buildRejoinRequest(request, key);
        assert.equal(phy.length, request.rejoinType === 1 ? 24 : 19);
        const decoded = decodePhyPayload(phy) as RejoinRequest;
        const { mic, ...fields } = decoded;
        assert.deepEqual(fields, request);
        assert.deepEqual(mic, computeRejoinRequestMic(request, key));
        assert.equal(verifyRejoinRequestMic(decoded, key), true);
        assert.equal(verifyRejoinRequestMic(decoded, otherKey), false);
        assert.equal(rejoinCounter(decoded), rejoinCounter(request));
      }),
      { numRuns: RUNS },
    );
  });

  it('fails the MIC check over the received bytes for any flipped bit', () => {
    fc.assert(
      fc.property(unsignedRejoin, aesKey, fc.nat(), (request, key, bit) => {
        const phy = buildRejoinRequest(request, key);
        const flipped = flipBit(phy, bit % (phy.length * 8));
        let decoded: ReturnType<typeof decodePhyPayloadWithMicInput>;
        try {
          decoded = decodePhyPayloadWithMicInput(flipped);
        } catch (error) {
          assert.ok(isLorawanError(error));
          return;
        }
        const { payload, micInput } = decoded;
        if (payload.mType !== 'RejoinRequest') return;
        // Checked over the bytes as received: a flip in an RFU bit of MHDR fails too.
        assert.equal(verifyRejoinRequestMic(payload, key, micInput), false);
      }),
      { numRuns: RUNS },
    );
  });

  it('is signed with SNwkSIntKey for types 0 and 2, JSIntKey for type 1, as lora-packet checks it', () => {
    fc.assert(
      fc.property(unsignedRejoin, aesKey, aesKey, (request, sNwkSIntKey, nwkKey) => {
        const { jsIntKey } = deriveJoinServerKeys(nwkKey, request.devEui);
        const key = rejoinRequestMicKey(request.rejoinType, { sNwkSIntKey, jsIntKey })!;
        assert.deepEqual(key, request.rejoinType === 1 ? jsIntKey : sNwkSIntKey);
        const phy = buildRejoinRequest(request, key);
        const packet = loraPacket.fromWire(Buffer.from(phy));
        assert.equal(packet.getMType(), 'Rejoin Request');
        assert.equal(packet.DevEUI?.toString('hex'), request.devEui);
        // lora-packet: SNwkSIntKey in its NwkSKey place, JSIntKey in its AppKey place.
        const [first, second] =
          request.rejoinType === 1
            ? [undefined, Buffer.from(jsIntKey)]
            : [Buffer.from(sNwkSIntKey), undefined];
        assert.equal(loraPacket.verifyMIC(packet, first, second), true);
        assert.equal(
          loraPacket.calculateMIC(packet, first, second).toString('hex'),
          bytesToHex(phy.subarray(-4)),
        );
        if (request.rejoinType === 1) {
          assert.equal(packet.AppEUI?.toString('hex'), request.joinEui);
        } else {
          assert.equal(packet.NetID?.toString('hex'), uint24ToHex(request.netId));
          assert.equal(
            packet.RJCount0?.toString('hex'),
            bigEndian(request.rjCount0, 2).toString('hex'),
          );
        }
      }),
      { numRuns: RUNS },
    );
  });

  it('names the JoinReqType of each rejoin type as the JoinAccept MIC encodes it', () => {
    assert.deepEqual(
      ([0, 1, 2] as const).map((type) => joinRequestTypeCode(joinRequestTypeOfRejoin(type))),
      [0x00, 0x01, 0x02],
    );
    assert.equal(joinRequestTypeCode('join'), 0xff);
  });
});

describe('the JoinAccept answering a rejoin', () => {
  it('is encrypted with JSEncKey and signed with JSIntKey over JoinReqType | JoinEUI | RJcount, as lora-packet reads it', () => {
    fc.assert(
      fc.property(
        joinAcceptFields,
        aesKey,
        eui,
        eui,
        uint(16),
        fc.constantFrom(0 as const, 1 as const, 2 as const),
        (fields, nwkKey, devEui, joinEui, rjCount, rejoinType) => {
          const joinRequestType = joinRequestTypeOfRejoin(rejoinType);
          const keys = optNegJoinAcceptKeys(nwkKey, devEui, joinEui, joinRequestType, rjCount);
          const { jsIntKey, jsEncKey } = deriveJoinServerKeys(nwkKey, devEui);
          assert.deepEqual(keys.encryptionKey, jsEncKey);
          assert.deepEqual(keys.micKeys.jsIntKey, jsIntKey);
          const phy = buildJoinAccept(fields, keys.micKeys, keys.encryptionKey);

          const opened = openJoinAccept(phy, jsEncKey);
          assert.deepEqual(opened.fields, fields);
          assert.equal(verifyJoinAcceptMic(opened, keys.micKeys), true);

          const encrypted = loraPacket.fromWire(Buffer.from(phy));
          const packet = loraPacket.fromWire(
            loraPacket.decryptJoinAccept(encrypted, Buffer.from(jsEncKey)),
          );
          assert.equal(
            packet.DevAddr?.toString('hex'),
            fields.devAddr.toString(16).padStart(8, '0'),
          );
          packet.JoinEUI = Buffer.from(joinEui, 'hex');
          packet.DevNonce = bigEndian(rjCount, 2);
          packet.JoinReqType = Buffer.from([joinRequestTypeCode(joinRequestType)]);
          assert.equal(loraPacket.verifyMIC(packet, Buffer.from(jsIntKey)), true);
        },
      ),
      { numRuns: RUNS },
    );
  });

  it('does not verify as the answer to a JoinRequest, another rejoin type or another RJcount', () => {
    fc.assert(
      fc.property(
        joinAcceptFields,
        aesKey,
        eui,
        eui,
        uint(16),
        fc.constantFrom(0 as const, 1 as const, 2 as const),
        (fields, nwkKey, devEui, joinEui, rjCount, rejoinType) => {
          const keys = optNegJoinAcceptKeys(
            nwkKey,
            devEui,
            joinEui,
            joinRequestTypeOfRejoin(rejoinType),
            rjCount,
          );
          const phy = buildJoinAccept(fields, keys.micKeys, keys.encryptionKey);
          const opened = openJoinAccept(phy, keys.encryptionKey);
          const otherType = joinRequestTypeOfRejoin(((rejoinType + 1) % 3) as 0 | 1 | 2);
          assert.equal(
            verifyJoinAcceptMic(opened, { ...keys.micKeys, joinRequestType: otherType }),
            false,
          );
          assert.equal(
            verifyJoinAcceptMic(opened, { ...keys.micKeys, joinRequestType: 'join' }),
            false,
          );
          assert.equal(
            verifyJoinAcceptMic(opened, { ...keys.micKeys, devNonce: (rjCount + 1) & 0xffff }),
            false,
          );
          // A device that took it for a JoinAccept would decrypt with the NwkKey: garbage.
          const asJoin = optNegJoinAcceptKeys(nwkKey, devEui, joinEui, 'join', rjCount);
          assert.deepEqual(asJoin.encryptionKey, nwkKey);
          assert.equal(
            verifyJoinAcceptMic(openJoinAccept(phy, asJoin.encryptionKey), asJoin.micKeys),
            false,
          );
        },
      ),
      { numRuns: RUNS },
    );
  });

  it('leads to 1.1 session keys derived with the RJcount as DevNonce, as lora-packet derives them', () => {
    fc.assert(
      fc.property(
        aesKey,
        aesKey,
        uint(24),
        eui,
        uint(16),
        (nwkKey, appKey, joinNonce, joinEui, rjCount) => {
          const galet = deriveSessionKeys11(nwkKey, appKey, joinNonce, joinEui, rjCount);
          const theirs = loraPacket.generateSessionKeys11(
            Buffer.from(appKey),
            Buffer.from(nwkKey),
            Buffer.from(joinEui, 'hex'),
            bigEndian(joinNonce, 3),
            bigEndian(rjCount, 2),
          );
          assert.equal(bytesToHex(galet.sNwkSIntKey), theirs.SNwkSIntKey.toString('hex'));
          assert.equal(bytesToHex(galet.appSKey), theirs.AppSKey.toString('hex'));
        },
      ),
      { numRuns: 100 },
    );
  });
});

describe('rejoin helpers on outside input', () => {
  /** Runs `fn`; only a LorawanError may come out. */
  function onlyLorawanErrors(what: string, input: unknown, fn: () => void): void {
    try {
      fn();
    } catch (error) {
      if (isLorawanError(error)) return;
      assert.fail(`${what} threw ${String(error)} for ${JSON.stringify(input)}`);
    }
  }

  it('checks the MIC of any frame that decodes as a RejoinRequest, and mutations of valid ones', () => {
    const key = Uint8Array.from({ length: 16 }, (_, i) => i * 7);
    let checked = 0;
    fc.assert(
      fc.property(
        fc.oneof(
          fc.uint8Array({ maxLength: 40 }).map((bytes) => {
            if (bytes.length > 0) bytes[0] = 0xc0;
            return bytes;
          }),
          fc
            .tuple(unsignedRejoin, fc.array(fc.tuple(fc.nat(), fc.nat(255)), { maxLength: 4 }))
            .map(([request, edits]) => {
              const phy = buildRejoinRequest(request, key);
              for (const [at, value] of edits) phy[at % phy.length] = value;
              return phy;
            }),
        ),
        (bytes) => {
          onlyLorawanErrors('decode + verifyRejoinRequestMic', bytesToHex(bytes), () => {
            const decoded = decodePhyPayload(bytes);
            if (decoded.mType !== 'RejoinRequest') return;
            verifyRejoinRequestMic(decoded, key);
            rejoinCounter(decoded);
            checked++;
          });
        },
      ),
      { numRuns: 2000 },
    );
    assert.ok(checked > 100, `only ${checked} inputs decoded as RejoinRequest`);
  });

  it('refuses out-of-range fields with a LorawanError, never another exception', () => {
    const anyNumber = fc.oneof(
      fc.integer({ min: -5, max: 2 ** 33 }),
      fc.constantFrom(Number.NaN, 1.5, Number.POSITIVE_INFINITY),
    );
    const anyEui = fc.oneof(eui, fc.string({ maxLength: 20 }));
    fc.assert(
      fc.property(
        fc.constantFrom(0, 1, 2),
        anyNumber,
        anyNumber,
        anyEui,
        anyEui,
        fc.uint8Array({ maxLength: 20 }),
        (rejoinType, netId, rjCount, joinEui, devEui, key) => {
          const request = (
            rejoinType === 1
              ? { mType: 'RejoinRequest', rejoinType, joinEui, devEui, rjCount1: rjCount }
              : { mType: 'RejoinRequest', rejoinType, netId, devEui, rjCount0: rjCount }
          ) as UnsignedRejoinRequest;
          onlyLorawanErrors('buildRejoinRequest', request, () => {
            buildRejoinRequest(request, key);
          });
          onlyLorawanErrors('optNegJoinAcceptKeys', request, () => {
            optNegJoinAcceptKeys(key, devEui, joinEui, 'rejoin1', rjCount);
          });
        },
      ),
      { numRuns: 1000 },
    );
  });

  it('opens any 17- or 33-byte frame with JSEncKey and checks its rejoin MIC without throwing', () => {
    const nwkKey = Uint8Array.from({ length: 16 }, (_, i) => 0x40 + i);
    const keys = optNegJoinAcceptKeys(nwkKey, '0000000000000001', '0000000000000002', 'rejoin2', 3);
    fc.assert(
      fc.property(
        fc.oneof(fixedBytes(17), fixedBytes(33), fc.uint8Array({ maxLength: 40 })),
        (bytes) => {
          onlyLorawanErrors('openJoinAccept + verifyJoinAcceptMic', bytesToHex(bytes), () => {
            const opened = openJoinAccept(bytes, keys.encryptionKey);
            assert.equal(typeof verifyJoinAcceptMic(opened, keys.micKeys), 'boolean');
          });
        },
      ),
      { numRuns: 2000 },
    );
  });
});
