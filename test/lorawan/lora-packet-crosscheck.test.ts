/**
 * Cross-checks of the protocol core against lora-packet 0.9.3, an independent implementation
 * (MIT, CommonJS). What lora-packet does differently from the spec, and how the properties
 * stay clear of it, is said where it matters; in short:
 * - Its getBuffers() fields are big-endian (DevAddr, FCnt, EUIs, nonces), the wire is not.
 * - A 32-bit FCnt is passed as `FCntMSBytes`: the upper 16 bits, little-endian (it is appended
 *   to the reversed 16-bit FCnt to form the 32-bit little-endian counter of the blocks).
 * - LoRaWAN 1.1 data MIC: the key parameters are documented as (SNwkSIntKey, FNwkSIntKey), but
 *   the code uses the first (`NwkSKey`) with B0 for the low half of an uplink MIC, i.e. as
 *   FNwkSIntKey, and the second (`AppKey`) with B1 and for downlinks, i.e. as SNwkSIntKey. We
 *   pass the keys in the order the code needs to follow the spec.
 * - 1.1 uplink `ConfFCntDownTxDrTxCh` takes ConfFCnt big-endian (it byte-swaps it), a downlink
 *   ConfFCnt is 2 bytes taken as they are (little-endian); it also writes into the buffer given.
 * - 1.1 uplink ConfFCnt: lora-packet zeroes it unless ACK is set, but keeps it on FPort 0 even
 *   without ACK; the spec (1.1 §4.4) says 0 whenever ACK is clear. The properties only use a
 *   non-zero ConfFCnt with ACK set, where both follow the spec.
 * - RejoinRequest type 1 is parsed with RJcount1 from bytes 13-14 (it is at 18-19): RJcount1 is
 *   not compared; its MIC is computed over the raw bytes and is compared.
 * - fromFields computes no MIC for a data frame without FPort; recalculateMIC is called then.
 * - JoinReqType 0 (rejoin type 0) given as a number is taken as absent (0 is falsy) and becomes
 *   0xFF: it is passed as a one-byte Buffer instead.
 */
import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import fc from 'fast-check';
import loraPacketModule from 'lora-packet';
import { bytesToHex, uint24ToHex, uint32ToHex } from '../../src/lorawan/bytes.js';
import {
  type JoinRequestType,
  joinRequestMic,
  joinRequestTypeCode,
} from '../../src/lorawan/crypto/join.js';
import {
  deriveJoinServerKeys,
  deriveSessionKeys10,
  deriveSessionKeys11,
} from '../../src/lorawan/crypto/session-keys.js';
import { buildDataFrame, type FrameMicContext } from '../../src/lorawan/data-frame.js';
import { describeFrame } from '../../src/lorawan/describe-frame.js';
import type { FCtrl } from '../../src/lorawan/fctrl.js';
import {
  buildJoinAccept,
  type JoinAcceptFields,
  type JoinAcceptMicKeys,
  openJoinAccept,
  verifyJoinAcceptMic,
} from '../../src/lorawan/join-accept.js';
import { type DataMType, isUplinkMType } from '../../src/lorawan/mhdr.js';
import {
  decodePhyPayload,
  encodeMicInput,
  encodePhyPayload,
  type JoinRequest,
  type RejoinRequest,
} from '../../src/lorawan/phy-payload.js';

// lora-packet's typings declare an ES default export, but at run time module.exports is the API.
const loraPacket = loraPacketModule as unknown as typeof loraPacketModule.default;
type LoraPacket = ReturnType<typeof loraPacket.fromWire>;

const RUNS = 300;
/** fast-check 4 builds records without prototype; deepEqual wants plain objects. */
const PLAIN = { noNullPrototype: true } as const;

const LORA_PACKET_MTYPE: Record<DataMType, string> = {
  UnconfirmedDataUp: 'Unconfirmed Data Up',
  UnconfirmedDataDown: 'Unconfirmed Data Down',
  ConfirmedDataUp: 'Confirmed Data Up',
  ConfirmedDataDown: 'Confirmed Data Down',
};
const DATA_MTYPES = Object.keys(LORA_PACKET_MTYPE) as DataMType[];

function hex(bytes: Uint8Array): string {
  return bytesToHex(bytes);
}

function bigEndian(value: number, length: number): Buffer {
  const out = Buffer.alloc(length);
  out.writeUIntBE(value, 0, length);
  return out;
}

/** lora-packet's FCntMSBytes: the upper 16 bits of the counter, little-endian. */
function fCntMSBytes(fCnt: number): Buffer {
  const out = Buffer.alloc(2);
  out.writeUInt16LE(Math.floor(fCnt / 0x10000));
  return out;
}

/**
 * lora-packet's 1.1 MIC context, freshly allocated (lora-packet writes into it): uplink
 * ConfFCnt (big-endian) | TxDr | TxCh; downlink ConfFCnt (little-endian).
 */
function confFCntDownTxDrTxCh(uplink: boolean, context: FrameMicContext): Buffer {
  const confFCnt = context.confFCnt ?? 0;
  if (!uplink) return Buffer.from([confFCnt & 0xff, confFCnt >>> 8]);
  return Buffer.from([confFCnt >>> 8, confFCnt & 0xff, context.txDr ?? 0, context.txCh ?? 0]);
}

function phyOf(packet: LoraPacket): Uint8Array {
  const phy = packet.getPHYPayload();
  assert.ok(phy instanceof Buffer, 'lora-packet built no PHYPayload');
  return new Uint8Array(phy);
}

function hexOf(buffer: Buffer | undefined): string {
  assert.ok(buffer !== undefined);
  return buffer.toString('hex');
}

const uint = (bits: number) => fc.integer({ min: 0, max: 2 ** bits - 1 });
const fixedBytes = (length: number) => fc.uint8Array({ minLength: length, maxLength: length });
const aesKey = fixedBytes(16);
const eui = fixedBytes(8).map(hex);

/** A plaintext data frame with its full 32-bit counter. */
interface Frame {
  mType: DataMType;
  devAddr: number;
  fCtrl: FCtrl;
  fCnt: number;
  fOpts: Uint8Array;
  fPort: number | undefined;
  frmPayload: Uint8Array;
}

/** A data frame as the spec allows it (see phy-payload.test.ts), plaintext, 32-bit counter. */
const dataFrame: fc.Arbitrary<{ frame: Frame; uplink: boolean; context: FrameMicContext }> = fc
  .record({
    mType: fc.constantFrom(...DATA_MTYPES),
    devAddr: uint(32),
    fCnt: fc.oneof(uint(16), uint(32)),
    adr: fc.boolean(),
    adrAckReq: fc.boolean(),
    ack: fc.boolean(),
    bit4: fc.boolean(),
    fOpts: fc.uint8Array({ maxLength: 15 }),
    fPort: fc.option(uint(8), { nil: undefined, freq: 4 }),
    portZero: fc.boolean(),
    frmPayload: fc.uint8Array({ maxLength: 242, size: 'max' }),
    confFCnt: uint(16),
    txDr: uint(4),
    txCh: uint(8),
  })
  .map((r) => {
    const uplink = isUplinkMType(r.mType);
    const fPort = r.fPort !== undefined && r.portZero && r.fPort < 64 ? 0 : r.fPort;
    const fOpts = fPort === 0 ? new Uint8Array(0) : r.fOpts;
    const room = 255 - 12 - fOpts.length - 1;
    const frmPayload = fPort === undefined ? new Uint8Array(0) : r.frmPayload.slice(0, room);
    const fCtrl: FCtrl = {
      adr: r.adr,
      adrAckReq: uplink && r.adrAckReq,
      ack: r.ack,
      classB: uplink && r.bit4,
      fPending: !uplink && r.bit4,
    };
    const context: FrameMicContext = {
      confFCnt: r.ack ? r.confFCnt : 0,
      txDr: uplink ? r.txDr : 0,
      txCh: uplink ? r.txCh : 0,
    };
    return {
      frame: { mType: r.mType, devAddr: r.devAddr, fCtrl, fCnt: r.fCnt, fOpts, fPort, frmPayload },
      uplink,
      context,
    };
  });

const keys10 = fc.record({ nwkSKey: aesKey, appSKey: aesKey }, PLAIN);
const keys11 = fc.record(
  { fNwkSIntKey: aesKey, sNwkSIntKey: aesKey, nwkSEncKey: aesKey, appSKey: aesKey },
  PLAIN,
);

/** The fields lora-packet shows for a data frame, the same for every build path. */
function assertLoraPacketFields(packet: LoraPacket, frame: Frame, fOptsOnWire: Uint8Array): void {
  const uplink = isUplinkMType(frame.mType);
  assert.equal(packet.getMType(), LORA_PACKET_MTYPE[frame.mType]);
  assert.equal(packet.getDir(), uplink ? 'up' : 'down');
  assert.equal(hexOf(packet.DevAddr), uint32ToHex(frame.devAddr));
  assert.equal(packet.getFCnt(), frame.fCnt & 0xffff);
  assert.equal(packet.getFCtrlADR(), frame.fCtrl.adr);
  assert.equal(packet.getFCtrlACK(), frame.fCtrl.ack);
  // lora-packet calls bit 4 FPending in both directions; on an uplink it is ClassB.
  assert.equal(packet.getFCtrlFPending(), uplink ? frame.fCtrl.classB : frame.fCtrl.fPending);
  if (uplink) assert.equal(packet.getFCtrlADRACKReq(), frame.fCtrl.adrAckReq);
  assert.equal(packet.getFPort(), frame.fPort ?? null);
  assert.equal(hexOf(packet.FOpts), hex(fOptsOnWire));
}

/** lora-packet's user fields for a data frame, FCtrl named its way. */
function loraPacketFields(frame: Frame) {
  const uplink = isUplinkMType(frame.mType);
  return {
    MType: LORA_PACKET_MTYPE[frame.mType],
    DevAddr: bigEndian(frame.devAddr, 4),
    FCtrl: {
      ADR: frame.fCtrl.adr,
      ADRACKReq: frame.fCtrl.adrAckReq,
      ACK: frame.fCtrl.ack,
      FPending: uplink ? frame.fCtrl.classB : frame.fCtrl.fPending,
    },
    FCnt: frame.fCnt & 0xffff,
    FOpts: Buffer.from(frame.fOpts),
    ...(frame.fPort === undefined ? {} : { FPort: frame.fPort }),
    payload: Buffer.from(frame.frmPayload),
  };
}

// ---------------------------------------------------------------------------------------------

describe('data frames built by Galet, checked by lora-packet', () => {
  it('frames built by Galet (1.0) pass lora-packet MIC check with the same MIC', () => {
    fc.assert(
      fc.property(dataFrame, keys10, ({ frame }, keys) => {
        const phy = buildDataFrame(frame, { lorawan: '1.0', ...keys });
        const packet = loraPacket.fromWire(Buffer.from(phy));
        assertLoraPacketFields(packet, frame, frame.fOpts);
        const msb = fCntMSBytes(frame.fCnt);
        const nwkSKey = Buffer.from(keys.nwkSKey);
        assert.equal(loraPacket.verifyMIC(packet, nwkSKey, undefined, msb), true);
        assert.equal(
          loraPacket.calculateMIC(packet, nwkSKey, undefined, msb).toString('hex'),
          hex(phy.subarray(-4)),
        );
      }),
      { numRuns: RUNS },
    );
  });

  it('lora-packet decrypts the FRMPayload of a Galet 1.0 frame to the same plaintext', () => {
    fc.assert(
      fc.property(dataFrame, keys10, ({ frame }, keys) => {
        fc.pre(frame.fPort !== undefined);
        const phy = buildDataFrame(frame, { lorawan: '1.0', ...keys });
        const packet = loraPacket.fromWire(Buffer.from(phy));
        const plaintext = loraPacket.decrypt(
          packet,
          Buffer.from(keys.appSKey),
          Buffer.from(keys.nwkSKey),
          fCntMSBytes(frame.fCnt),
        );
        assert.equal(plaintext.toString('hex'), hex(frame.frmPayload));
      }),
      { numRuns: RUNS },
    );
  });

  it('frames built by Galet (1.1) pass lora-packet MIC check: uplink B0/B1, downlink ConfFCnt', () => {
    fc.assert(
      fc.property(dataFrame, keys11, ({ frame, uplink, context }, keys) => {
        const phy = buildDataFrame(frame, { lorawan: '1.1', ...keys }, context);
        const packet = loraPacket.fromWire(Buffer.from(phy));
        const msb = fCntMSBytes(frame.fCnt);
        const conf = () => confFCntDownTxDrTxCh(uplink, context);
        // Uplink: (FNwkSIntKey, SNwkSIntKey); downlink: only SNwkSIntKey, in the second place.
        const first = uplink ? Buffer.from(keys.fNwkSIntKey) : undefined;
        const second = Buffer.from(keys.sNwkSIntKey);
        assert.equal(
          loraPacket.calculateMIC(packet, first, second, msb, conf()).toString('hex'),
          hex(phy.subarray(-4)),
        );
        assert.equal(loraPacket.verifyMIC(packet, first, second, msb, conf()), true);
      }),
      { numRuns: RUNS },
    );
  });

  it('lora-packet decrypts the FOpts and FRMPayload of a Galet 1.1 frame to the same plaintext', () => {
    fc.assert(
      fc.property(dataFrame, keys11, ({ frame, context }, keys) => {
        const phy = buildDataFrame(frame, { lorawan: '1.1', ...keys }, context);
        const packet = loraPacket.fromWire(Buffer.from(phy));
        const wire = decodePhyPayload(phy);
        assert.ok('fOpts' in wire);
        assertLoraPacketFields(packet, frame, wire.fOpts);
        const msb = fCntMSBytes(frame.fCnt);
        if (frame.fPort !== undefined) {
          // FPort 0: the NwkSEncKey, which lora-packet takes in its NwkSKey place.
          const plaintext = loraPacket.decrypt(
            packet,
            Buffer.from(keys.appSKey),
            Buffer.from(keys.nwkSEncKey),
            msb,
          );
          assert.equal(plaintext.toString('hex'), hex(frame.frmPayload));
        }
        // lora-packet follows the FOpts errata too: A[4] = 2 for a downlink with FPort > 0.
        const fOpts = packet.decryptFOpts(Buffer.from(keys.nwkSEncKey), undefined, msb);
        assert.equal(fOpts.toString('hex'), hex(frame.fOpts));
      }),
      { numRuns: RUNS },
    );
  });
});

describe('data frames built by lora-packet, read by Galet', () => {
  it('frames built by lora-packet (1.0) decode with the same fields, a valid MIC, the same plaintext', () => {
    fc.assert(
      fc.property(dataFrame, keys10, ({ frame }, keys) => {
        const msb = fCntMSBytes(frame.fCnt);
        const nwkSKey = Buffer.from(keys.nwkSKey);
        const packet = loraPacket.fromFields(
          loraPacketFields(frame),
          Buffer.from(keys.appSKey),
          nwkSKey,
          undefined,
          msb,
        );
        if (frame.fPort === undefined) loraPacket.recalculateMIC(packet, nwkSKey, undefined, msb);
        const phy = phyOf(packet);

        const decoded = decodePhyPayload(phy);
        assert.ok(decoded.mType === frame.mType);
        assert.equal(decoded.devAddr, frame.devAddr);
        assert.equal(decoded.fCnt, frame.fCnt & 0xffff);
        assert.deepEqual({ ...decoded.fCtrl }, frame.fCtrl);
        assert.equal(decoded.fPort, frame.fPort);
        assert.equal(hex(decoded.fOpts), hex(frame.fOpts));
        assert.equal(hex(decoded.mic), hexOf(packet.MIC));

        const described = describeFrame(phy, { ...keys, fCnt32: frame.fCnt });
        assert.equal(described['micValid'], true);
        assert.equal(described['mType'], frame.mType);
        assert.equal(described['devAddr'], uint32ToHex(frame.devAddr));
        assert.equal(described['fOpts'], hex(frame.fOpts));
        assert.equal(described['frmPayload'], hex(frame.frmPayload));
        assert.equal(described['frmPayloadDecrypted'], true);
      }),
      { numRuns: RUNS },
    );
  });

  it('frames built by lora-packet (1.1, FOpts encrypted) decode with a valid MIC and the same plaintext', () => {
    fc.assert(
      fc.property(dataFrame, keys11, ({ frame, uplink, context }, keys) => {
        const msb = fCntMSBytes(frame.fCnt);
        const fNwkSIntKey = Buffer.from(keys.fNwkSIntKey);
        const sNwkSIntKey = Buffer.from(keys.sNwkSIntKey);
        const conf = () => confFCntDownTxDrTxCh(uplink, context);
        // fromFields' first key encrypts the FRMPayload: with all three keys given, FPort 0 takes
        // it as the NwkSEncKey.
        const packet = loraPacket.fromFields(
          loraPacketFields(frame),
          Buffer.from(frame.fPort === 0 ? keys.nwkSEncKey : keys.appSKey),
          fNwkSIntKey,
          sNwkSIntKey,
          msb,
          conf(),
        );
        if (frame.fOpts.length > 0)
          packet.encryptFOpts(Buffer.from(keys.nwkSEncKey), undefined, msb);
        // The MIC covers the encrypted FOpts, so it is computed last.
        loraPacket.recalculateMIC(packet, fNwkSIntKey, sNwkSIntKey, msb, conf());
        const phy = phyOf(packet);

        const described = describeFrame(phy, {
          ...keys,
          fCnt32: frame.fCnt,
          confFCnt: context.confFCnt ?? 0,
          txDr: context.txDr ?? 0,
          txCh: context.txCh ?? 0,
        });
        assert.equal(described['micValid'], true);
        assert.equal(described['fOpts'], hex(frame.fOpts));
        assert.equal(described['fOptsDecrypted'], true);
        assert.equal(described['frmPayload'], hex(frame.frmPayload));
        assert.equal(described['fPort'], frame.fPort ?? null);
        assert.equal(described['fCnt'], frame.fCnt & 0xffff);
      }),
      { numRuns: RUNS },
    );
  });
});

// ---------------------------------------------------------------------------------------------

describe('join and rejoin requests', () => {
  const joinRequestFields = fc.record({ joinEui: eui, devEui: eui, devNonce: uint(16) }, PLAIN);

  it('JoinRequests signed by Galet pass lora-packet MIC check, with the same fields', () => {
    fc.assert(
      fc.property(joinRequestFields, aesKey, (fields, appKey) => {
        const unsigned: JoinRequest = { mType: 'JoinRequest', ...fields, mic: new Uint8Array(4) };
        const mic = joinRequestMic(appKey, encodeMicInput(unsigned));
        const phy = encodePhyPayload({ ...unsigned, mic });
        const packet = loraPacket.fromWire(Buffer.from(phy));
        assert.equal(packet.getMType(), 'Join Request');
        assert.equal(hexOf(packet.AppEUI), fields.joinEui);
        assert.equal(hexOf(packet.DevEUI), fields.devEui);
        assert.equal(hexOf(packet.DevNonce), bigEndian(fields.devNonce, 2).toString('hex'));
        assert.equal(loraPacket.verifyMIC(packet, undefined, Buffer.from(appKey)), true);
      }),
      { numRuns: RUNS },
    );
  });

  it('JoinRequests built by lora-packet are described by Galet with the same fields, MIC valid', () => {
    fc.assert(
      fc.property(joinRequestFields, aesKey, (fields, appKey) => {
        const packet = loraPacket.fromFields(
          {
            MType: 'Join Request',
            AppEUI: Buffer.from(fields.joinEui, 'hex'),
            DevEUI: Buffer.from(fields.devEui, 'hex'),
            DevNonce: bigEndian(fields.devNonce, 2),
          },
          undefined,
          undefined,
          Buffer.from(appKey),
        );
        const phy = phyOf(packet);
        const described = describeFrame(phy, { appKey });
        assert.deepEqual(described, {
          mType: 'JoinRequest',
          ...fields,
          mic: hexOf(packet.MIC),
          micValid: true,
        });
        // A 1.1 device signs with its NwkKey: same MIC, the key is only named differently.
        assert.equal(describeFrame(phy, { nwkKey: appKey })['micValid'], true);
      }),
      { numRuns: RUNS },
    );
  });

  it('RejoinRequests 0, 1 and 2 signed by Galet pass lora-packet MIC check', () => {
    fc.assert(
      fc.property(
        fc.constantFrom(0, 1, 2),
        uint(24),
        eui,
        eui,
        uint(16),
        aesKey,
        aesKey,
        (rejoinType, netId, joinEui, devEui, rjCount, sNwkSIntKey, nwkKey) => {
          const unsigned: RejoinRequest =
            rejoinType === 1
              ? {
                  mType: 'RejoinRequest',
                  rejoinType,
                  joinEui,
                  devEui,
                  rjCount1: rjCount,
                  mic: new Uint8Array(4),
                }
              : {
                  mType: 'RejoinRequest',
                  rejoinType: rejoinType === 0 ? 0 : 2,
                  netId,
                  devEui,
                  rjCount0: rjCount,
                  mic: new Uint8Array(4),
                };
          // 1.1 §6.2.4.4: types 0 and 2 are signed with SNwkSIntKey, type 1 with JSIntKey.
          const { jsIntKey } = deriveJoinServerKeys(nwkKey, devEui);
          const key = rejoinType === 1 ? jsIntKey : sNwkSIntKey;
          const mic = joinRequestMic(key, encodeMicInput(unsigned));
          const phy = encodePhyPayload({ ...unsigned, mic });

          const packet = loraPacket.fromWire(Buffer.from(phy));
          assert.equal(packet.getMType(), 'Rejoin Request');
          assert.equal(hexOf(packet.DevEUI), devEui);
          if (rejoinType === 1) {
            assert.equal(hexOf(packet.AppEUI), joinEui);
            assert.equal(loraPacket.verifyMIC(packet, undefined, Buffer.from(jsIntKey)), true);
            assert.equal(describeFrame(phy, { nwkKey })['micValid'], true);
          } else {
            assert.equal(hexOf(packet.NetID), uint24ToHex(netId));
            assert.equal(hexOf(packet.RJCount0), bigEndian(rjCount, 2).toString('hex'));
            assert.equal(loraPacket.verifyMIC(packet, Buffer.from(sNwkSIntKey)), true);
            assert.equal(describeFrame(phy, { sNwkSIntKey })['micValid'], true);
          }
        },
      ),
      { numRuns: RUNS },
    );
  });
});

// ---------------------------------------------------------------------------------------------

const joinAcceptFields = (optNeg: boolean): fc.Arbitrary<JoinAcceptFields> =>
  fc.record(
    {
      joinNonce: uint(24),
      netId: uint(24),
      devAddr: uint(32),
      dlSettings: fc.record(
        { optNeg: fc.constant(optNeg), rx1DrOffset: uint(3), rx2Dr: uint(4) },
        PLAIN,
      ),
      rxDelay: uint(4),
      cfList: fc.option(fixedBytes(16), { nil: undefined }),
    },
    PLAIN,
  );

const JOIN_REQUEST_TYPES: readonly JoinRequestType[] = ['join', 'rejoin0', 'rejoin1', 'rejoin2'];

function dlSettingsByte(fields: JoinAcceptFields): number {
  const { optNeg, rx1DrOffset, rx2Dr } = fields.dlSettings;
  return (optNeg ? 0x80 : 0) | (rx1DrOffset << 4) | rx2Dr;
}

function loraPacketJoinAcceptFields(fields: JoinAcceptFields) {
  return {
    MType: 'Join Accept',
    AppNonce: bigEndian(fields.joinNonce, 3),
    NetID: bigEndian(fields.netId, 3),
    DevAddr: bigEndian(fields.devAddr, 4),
    DLSettings: dlSettingsByte(fields),
    RxDelay: fields.rxDelay,
    CFList: fields.cfList === undefined ? Buffer.alloc(0) : Buffer.from(fields.cfList),
  };
}

/** Decrypts with lora-packet and checks the fields it reads. */
function openWithLoraPacket(
  phy: Uint8Array,
  key: Uint8Array,
  fields: JoinAcceptFields,
): LoraPacket {
  const encrypted = loraPacket.fromWire(Buffer.from(phy));
  const packet = loraPacket.fromWire(loraPacket.decryptJoinAccept(encrypted, Buffer.from(key)));
  assert.equal(packet.getMType(), 'Join Accept');
  assert.equal(hexOf(packet.AppNonce), uint24ToHex(fields.joinNonce));
  assert.equal(hexOf(packet.NetID), uint24ToHex(fields.netId));
  assert.equal(hexOf(packet.DevAddr), uint32ToHex(fields.devAddr));
  assert.equal(packet.getDLSettingsOptNeg(), fields.dlSettings.optNeg);
  assert.equal(packet.getDLSettingsRxOneDRoffset(), fields.dlSettings.rx1DrOffset);
  assert.equal(packet.getDLSettingsRxTwoDataRate(), fields.dlSettings.rx2Dr);
  assert.equal(packet.getRxDelayDel(), fields.rxDelay);
  assert.equal(hexOf(packet.CFList), fields.cfList === undefined ? '' : hex(fields.cfList));
  return packet;
}

describe('join accepts', () => {
  it('1.0 JoinAccepts built by Galet are decrypted by lora-packet to the same fields, MIC valid', () => {
    fc.assert(
      fc.property(joinAcceptFields(false), aesKey, (fields, appKey) => {
        const phy = buildJoinAccept(fields, { optNeg: false, key: appKey }, appKey);
        const packet = openWithLoraPacket(phy, appKey, fields);
        assert.equal(loraPacket.verifyMIC(packet, undefined, Buffer.from(appKey)), true);
      }),
      { numRuns: RUNS },
    );
  });

  it('1.1 OptNeg JoinAccepts built by Galet pass lora-packet MIC check with JSIntKey', () => {
    fc.assert(
      fc.property(
        joinAcceptFields(true),
        aesKey,
        eui,
        eui,
        uint(16),
        fc.constantFrom(...JOIN_REQUEST_TYPES),
        (fields, nwkKey, devEui, joinEui, devNonce, joinRequestType) => {
          const { jsIntKey, jsEncKey } = deriveJoinServerKeys(nwkKey, devEui);
          const micKeys: JoinAcceptMicKeys = {
            optNeg: true,
            jsIntKey,
            joinRequestType,
            joinEui,
            devNonce,
          };
          const encryptionKey = joinRequestType === 'join' ? nwkKey : jsEncKey;
          const phy = buildJoinAccept(fields, micKeys, encryptionKey);
          const packet = openWithLoraPacket(phy, encryptionKey, fields);
          // The request the accept answers is not in the frame: lora-packet takes it as fields.
          packet.JoinEUI = Buffer.from(joinEui, 'hex');
          packet.DevNonce = bigEndian(devNonce, 2);
          packet.JoinReqType = Buffer.from([joinRequestTypeCode(joinRequestType)]);
          assert.equal(loraPacket.verifyMIC(packet, Buffer.from(jsIntKey)), true);
        },
      ),
      { numRuns: RUNS },
    );
  });

  it('1.0 JoinAccepts built by lora-packet open in Galet to the same fields, MIC valid', () => {
    fc.assert(
      fc.property(joinAcceptFields(false), aesKey, (fields, appKey) => {
        const packet = loraPacket.fromFields(
          loraPacketJoinAcceptFields(fields),
          undefined,
          undefined,
          Buffer.from(appKey),
        );
        const phy = phyOf(packet);
        assert.equal(phy.length, fields.cfList === undefined ? 17 : 33);
        const opened = openJoinAccept(phy, appKey);
        assert.deepEqual(opened.fields, fields);
        assert.equal(verifyJoinAcceptMic(opened, { optNeg: false, key: appKey }), true);
        const described = describeFrame(phy, { appKey });
        assert.equal(described['micValid'], true);
        assert.equal(described['devAddr'], uint32ToHex(fields.devAddr));
        assert.equal(described['netId'], uint24ToHex(fields.netId));
      }),
      { numRuns: RUNS },
    );
  });

  it('1.1 OptNeg JoinAccepts built by lora-packet open in Galet, MIC valid with JSIntKey', () => {
    fc.assert(
      fc.property(
        joinAcceptFields(true),
        aesKey,
        eui,
        eui,
        uint(16),
        fc.constantFrom(...JOIN_REQUEST_TYPES),
        (fields, nwkKey, devEui, joinEui, devNonce, joinRequestType) => {
          const { jsIntKey, jsEncKey } = deriveJoinServerKeys(nwkKey, devEui);
          const encryptionKey = joinRequestType === 'join' ? nwkKey : jsEncKey;
          // lora-packet: MIC key in the NwkSKey place, encryption key in the AppKey place.
          const packet = loraPacket.fromFields(
            {
              ...loraPacketJoinAcceptFields(fields),
              AppEUI: Buffer.from(joinEui, 'hex'),
              DevNonce: bigEndian(devNonce, 2),
              JoinReqType: Buffer.from([joinRequestTypeCode(joinRequestType)]),
            },
            undefined,
            Buffer.from(jsIntKey),
            Buffer.from(encryptionKey),
          );
          const phy = phyOf(packet);
          const opened = openJoinAccept(phy, encryptionKey);
          assert.deepEqual(opened.fields, fields);
          const micKeys: JoinAcceptMicKeys = {
            optNeg: true,
            jsIntKey,
            joinRequestType,
            joinEui,
            devNonce,
          };
          assert.equal(verifyJoinAcceptMic(opened, micKeys), true);
          if (joinRequestType === 'join') {
            const described = describeFrame(phy, { nwkKey, devEui, joinEui, devNonce });
            assert.equal(described['micValid'], true);
          }
        },
      ),
      { numRuns: RUNS },
    );
  });
});

describe('session key derivation', () => {
  it('1.0 session keys agree with lora-packet generateSessionKeys10', () => {
    fc.assert(
      fc.property(aesKey, uint(24), uint(24), uint(16), (appKey, joinNonce, netId, devNonce) => {
        const galet = deriveSessionKeys10(appKey, joinNonce, netId, devNonce);
        const theirs = loraPacket.generateSessionKeys10(
          Buffer.from(appKey),
          bigEndian(netId, 3),
          bigEndian(joinNonce, 3),
          bigEndian(devNonce, 2),
        );
        assert.equal(hex(galet.nwkSKey), theirs.NwkSKey.toString('hex'));
        assert.equal(hex(galet.appSKey), theirs.AppSKey.toString('hex'));
        // generateSessionKeys is the 1.0 derivation under its old name.
        const old = loraPacket.generateSessionKeys(
          Buffer.from(appKey),
          bigEndian(netId, 3),
          bigEndian(joinNonce, 3),
          bigEndian(devNonce, 2),
        );
        assert.equal(hex(galet.nwkSKey), old.NwkSKey.toString('hex'));
      }),
      { numRuns: RUNS },
    );
  });

  it('1.1 session keys agree with lora-packet generateSessionKeys11', () => {
    fc.assert(
      fc.property(
        aesKey,
        aesKey,
        uint(24),
        eui,
        uint(16),
        (nwkKey, appKey, joinNonce, joinEui, devNonce) => {
          const galet = deriveSessionKeys11(nwkKey, appKey, joinNonce, joinEui, devNonce);
          // lora-packet's order: AppKey, NwkKey, JoinEUI, JoinNonce, DevNonce.
          const theirs = loraPacket.generateSessionKeys11(
            Buffer.from(appKey),
            Buffer.from(nwkKey),
            Buffer.from(joinEui, 'hex'),
            bigEndian(joinNonce, 3),
            bigEndian(devNonce, 2),
          );
          assert.equal(hex(galet.fNwkSIntKey), theirs.FNwkSIntKey.toString('hex'));
          assert.equal(hex(galet.sNwkSIntKey), theirs.SNwkSIntKey.toString('hex'));
          assert.equal(hex(galet.nwkSEncKey), theirs.NwkSEncKey.toString('hex'));
          assert.equal(hex(galet.appSKey), theirs.AppSKey.toString('hex'));
        },
      ),
      { numRuns: RUNS },
    );
  });

  it('JSIntKey and JSEncKey agree with lora-packet generateJSKeys', () => {
    fc.assert(
      fc.property(aesKey, eui, (nwkKey, devEui) => {
        const galet = deriveJoinServerKeys(nwkKey, devEui);
        const theirs = loraPacket.generateJSKeys(Buffer.from(nwkKey), Buffer.from(devEui, 'hex'));
        assert.equal(hex(galet.jsIntKey), theirs.JSIntKey.toString('hex'));
        assert.equal(hex(galet.jsEncKey), theirs.JSEncKey.toString('hex'));
      }),
      { numRuns: RUNS },
    );
  });
});
