/**
 * Robustness of every decoder of outside bytes: random byte strings and mutations of valid
 * frames of every type go through decodePhyPayload, describeFrame (without keys, with 1.0 and
 * with 1.1 key sets), openJoinAccept, decodeCfList and decodeMacCommands (both directions).
 * The only exception allowed is a LorawanError; describeFrame's output must be plain JSON.
 *
 * Inputs come from fast-check (shrinks a failure to a small counterexample) and from plain loops
 * over a seeded PRNG (cheap, reproducible: a failure message carries the input as hex).
 */
import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import fc from 'fast-check';
import { bytesToHex } from '../../src/lorawan/bytes.js';
import { decodeCfList, encodeCfList } from '../../src/lorawan/cflist.js';
import { joinRequestMic } from '../../src/lorawan/crypto/join.js';
import { deriveJoinServerKeys } from '../../src/lorawan/crypto/session-keys.js';
import { buildDataFrame, type DataSessionKeys } from '../../src/lorawan/data-frame.js';
import { describeFrame, type FrameDescriptionInputs } from '../../src/lorawan/describe-frame.js';
import { isLorawanError, type LorawanErrorCode } from '../../src/lorawan/errors.js';
import type { FCtrl } from '../../src/lorawan/fctrl.js';
import { buildJoinAccept, openJoinAccept } from '../../src/lorawan/join-accept.js';
import {
  decodeMacCommands,
  encodeMacCommands,
  type MacDirection,
  macCommandPayloadLength,
} from '../../src/lorawan/mac-commands.js';
import type { DataMType } from '../../src/lorawan/mhdr.js';
import {
  decodePhyPayload,
  encodeMicInput,
  encodePhyPayload,
  type PhyPayload,
} from '../../src/lorawan/phy-payload.js';

const MIN_TOTAL_INPUTS = 100_000;
const STACK_TRACE_LIMIT = Error.stackTraceLimit;

// ---------------------------------------------------------------------------------------------
// A seeded PRNG (mulberry32) for the plain loops.

function prng(seed: number) {
  let state = seed >>> 0;
  const next = (): number => {
    state = (state + 0x6d2b79f5) >>> 0;
    let t = state;
    t = Math.imul(t ^ (t >>> 15), t | 1);
    t ^= t + Math.imul(t ^ (t >>> 7), t | 61);
    return ((t ^ (t >>> 14)) >>> 0) / 0x1_0000_0000;
  };
  const int = (maxExclusive: number): number => Math.floor(next() * maxExclusive);
  const bytes = (length: number): Uint8Array => {
    const out = new Uint8Array(length);
    for (let i = 0; i < length; i++) out[i] = int(256);
    return out;
  };
  return { int, bytes };
}

// ---------------------------------------------------------------------------------------------
// Keys, and a corpus of valid frames of every type built with them.

const key = (fill: number) => new Uint8Array(16).fill(fill).map((b, i) => (b + i * 17) & 0xff);
const NWK_S_KEY = key(0x11);
const APP_S_KEY = key(0x22);
const F_NWK_S_INT_KEY = key(0x33);
const S_NWK_S_INT_KEY = key(0x44);
const NWK_S_ENC_KEY = key(0x55);
const APP_KEY = key(0x66);
const NWK_KEY = key(0x77);
const DEV_EUI = '70b3d57ed0001234';
const JOIN_EUI = '0000000000000001';
const DEV_NONCE = 0x0102;

const KEYS_10: DataSessionKeys = { lorawan: '1.0', nwkSKey: NWK_S_KEY, appSKey: APP_S_KEY };
const KEYS_11: DataSessionKeys = {
  lorawan: '1.1',
  fNwkSIntKey: F_NWK_S_INT_KEY,
  sNwkSIntKey: S_NWK_S_INT_KEY,
  nwkSEncKey: NWK_S_ENC_KEY,
  appSKey: APP_S_KEY,
};

/** The key sets describeFrame is called with on every input. */
const DESCRIBE_INPUTS: readonly (readonly [string, FrameDescriptionInputs])[] = [
  ['no keys', {}],
  ['1.0 keys', { nwkSKey: NWK_S_KEY, appSKey: APP_S_KEY, appKey: APP_KEY, fCnt32: 0x1_0005 }],
  [
    '1.1 keys',
    {
      fNwkSIntKey: F_NWK_S_INT_KEY,
      sNwkSIntKey: S_NWK_S_INT_KEY,
      nwkSEncKey: NWK_S_ENC_KEY,
      appSKey: APP_S_KEY,
      nwkKey: NWK_KEY,
      appKey: APP_KEY,
      joinEui: JOIN_EUI,
      devEui: DEV_EUI,
      devNonce: DEV_NONCE,
      txDr: 5,
      txCh: 2,
      confFCnt: 9,
      fCnt32: 0x1_0005,
    },
  ],
  // Partial 1.1 key sets take the "some keys missing" branches.
  ['1.1 NwkSEncKey only', { nwkSEncKey: NWK_S_ENC_KEY }],
  ['1.1 SNwkSIntKey only', { sNwkSIntKey: S_NWK_S_INT_KEY, appSKey: APP_S_KEY }],
];

const NO_FLAGS: FCtrl = {
  adr: false,
  adrAckReq: false,
  ack: false,
  classB: false,
  fPending: false,
};

function corpus(): Uint8Array[] {
  const frames: Uint8Array[] = [];
  const upMac = encodeMacCommands([
    { cid: 'LinkCheckReq' },
    { cid: 'DevStatusAns', battery: 200, margin: -5 },
    { cid: 'DeviceTimeReq' },
  ]);
  const downMac = encodeMacCommands([
    { cid: 'LinkCheckAns', margin: 10, gatewayCount: 3 },
    { cid: 'DevStatusReq' },
  ]);
  const mTypes: DataMType[] = [
    'UnconfirmedDataUp',
    'UnconfirmedDataDown',
    'ConfirmedDataUp',
    'ConfirmedDataDown',
  ];
  for (const keys of [KEYS_10, KEYS_11]) {
    for (const mType of mTypes) {
      const uplink = mType.endsWith('Up');
      const mac = uplink ? upMac : downMac;
      const fCtrl: FCtrl = { ...NO_FLAGS, adr: true, ack: true, classB: uplink, fPending: !uplink };
      const base = { mType, devAddr: 0x26011bda, fCtrl, fCnt: 0x1_0005 };
      const context = { confFCnt: 9, txDr: 5, txCh: 2 };
      frames.push(buildDataFrame({ ...base, fOpts: mac }, keys, context));
      frames.push(buildDataFrame({ ...base, fPort: 0, frmPayload: mac }, keys, context));
      frames.push(
        buildDataFrame(
          { ...base, fOpts: mac, fPort: 10, frmPayload: new Uint8Array(20).fill(0xab) },
          keys,
          context,
        ),
      );
      frames.push(
        buildDataFrame(
          { ...base, fOpts: new Uint8Array(15), fPort: 200, frmPayload: new Uint8Array(227) },
          keys,
          context,
        ),
      );
    }
  }
  const joinRequest = {
    mType: 'JoinRequest' as const,
    joinEui: JOIN_EUI,
    devEui: DEV_EUI,
    devNonce: DEV_NONCE,
    mic: new Uint8Array(4),
  };
  frames.push(signed(joinRequest, APP_KEY));
  const { jsIntKey } = deriveJoinServerKeys(NWK_KEY, DEV_EUI);
  frames.push(
    signed(
      {
        mType: 'RejoinRequest',
        rejoinType: 0,
        netId: 0x13,
        devEui: DEV_EUI,
        rjCount0: 7,
        mic: new Uint8Array(4),
      },
      S_NWK_S_INT_KEY,
    ),
    signed(
      {
        mType: 'RejoinRequest',
        rejoinType: 2,
        netId: 0x13,
        devEui: DEV_EUI,
        rjCount0: 8,
        mic: new Uint8Array(4),
      },
      S_NWK_S_INT_KEY,
    ),
    signed(
      {
        mType: 'RejoinRequest',
        rejoinType: 1,
        joinEui: JOIN_EUI,
        devEui: DEV_EUI,
        rjCount1: 9,
        mic: new Uint8Array(4),
      },
      jsIntKey,
    ),
  );
  const fields = {
    joinNonce: 0x10203,
    netId: 0x13,
    devAddr: 0x26011bda,
    dlSettings: { optNeg: false, rx1DrOffset: 1, rx2Dr: 3 },
    rxDelay: 1,
    cfList: undefined,
  };
  const frequencies = encodeCfList({
    type: 'frequencies',
    frequenciesHz: [867_100_000, 867_300_000, 867_500_000, 867_700_000, 867_900_000],
  });
  const masks = encodeCfList({ type: 'channelMask', channelMasks: [0xff00, 0, 0, 0, 0x01] });
  const micKeys10 = { optNeg: false as const, key: APP_KEY };
  const micKeys11 = {
    optNeg: true as const,
    jsIntKey,
    joinRequestType: 'join' as const,
    joinEui: JOIN_EUI,
    devNonce: DEV_NONCE,
  };
  const optNeg = { ...fields, dlSettings: { ...fields.dlSettings, optNeg: true } };
  frames.push(
    // 1.0 device: AppKey; 1.1 device: NwkKey (what describeFrame tries first).
    buildJoinAccept(fields, micKeys10, APP_KEY),
    buildJoinAccept({ ...fields, cfList: frequencies }, micKeys10, APP_KEY),
    buildJoinAccept({ ...fields, cfList: masks }, { optNeg: false, key: NWK_KEY }, NWK_KEY),
    buildJoinAccept(optNeg, micKeys11, NWK_KEY),
    buildJoinAccept({ ...optNeg, cfList: frequencies }, micKeys11, NWK_KEY),
    encodePhyPayload({ mType: 'Proprietary', payload: new Uint8Array(0) }),
    encodePhyPayload({ mType: 'Proprietary', payload: new Uint8Array(40).fill(7) }),
  );
  return frames;
}

function signed(payload: PhyPayload, micKey: Uint8Array): Uint8Array {
  const mic = joinRequestMic(micKey, encodeMicInput(payload));
  return encodePhyPayload({ ...payload, mic } as PhyPayload);
}

// ---------------------------------------------------------------------------------------------
// The check run on every input.

const stats = {
  inputs: 0,
  codes: new Set<LorawanErrorCode>(),
  described: 0,
  micValid: 0,
  macCommands: 0,
};

function hex(bytes: Uint8Array): string {
  return bytesToHex(bytes);
}

/**
 * Runs `inputs` with no stack trace captured for the errors thrown on the way. Nearly every input
 * is refused with a LorawanError, and capturing its stack (through node:test and fast-check
 * frames) was more than half of this file's time; the check reads only an error's class, code
 * and message, which do not depend on the stack.
 */
function withoutStackTraces(inputs: () => void): void {
  const limit = Error.stackTraceLimit;
  Error.stackTraceLimit = 0;
  try {
    inputs();
  } finally {
    Error.stackTraceLimit = limit;
  }
}

/** Runs `fn`; a LorawanError is an accepted outcome, anything else fails with the input. */
function guard(what: string, bytes: Uint8Array, fn: () => void): void {
  try {
    fn();
  } catch (error) {
    if (isLorawanError(error)) {
      stats.codes.add(error.code);
      return;
    }
    const reason = error instanceof Error ? `${error.name}: ${error.message}` : String(error);
    // The failure (and fast-check's report of it) keeps its stack.
    Error.stackTraceLimit = STACK_TRACE_LIMIT;
    assert.fail(`${what} threw ${reason} for input ${hex(bytes) || '(empty)'}`);
  }
}

function assertPlainJson(value: unknown, path: string): void {
  if (value === null || typeof value === 'string' || typeof value === 'boolean') return;
  if (typeof value === 'number') {
    if (!Number.isFinite(value)) throw new Error(`${path} is ${value}, not JSON`);
    return;
  }
  if (Array.isArray(value)) {
    for (let i = 0; i < value.length; i++) assertPlainJson(value[i], `${path}[${i}]`);
    return;
  }
  if (typeof value === 'object') {
    const prototype = Object.getPrototypeOf(value);
    if (prototype !== Object.prototype && prototype !== null) {
      throw new Error(`${path} is a ${prototype?.constructor?.name ?? 'object'}, not JSON`);
    }
    for (const [name, item] of Object.entries(value)) assertPlainJson(item, `${path}.${name}`);
    return;
  }
  throw new Error(`${path} is ${typeof value}, not JSON`);
}

const JOIN_ACCEPT_KEYS = [APP_KEY, NWK_KEY] as const;

/** Every PHYPayload-level decoder, plus the sub-decoders on the same bytes. */
function checkAllDecoders(bytes: Uint8Array): void {
  stats.inputs++;
  guard('decodePhyPayload', bytes, () => {
    decodePhyPayload(bytes);
  });
  for (const [name, inputs] of DESCRIBE_INPUTS) {
    guard(`describeFrame (${name})`, bytes, () => {
      const description = describeFrame(bytes, inputs);
      assertPlainJson(description, 'description');
      JSON.stringify(description);
      stats.described++;
      if (description['micValid'] === true) stats.micValid++;
      if (description['macCommands'] !== undefined) stats.macCommands++;
    });
  }
  for (const joinAcceptKey of JOIN_ACCEPT_KEYS) {
    guard('openJoinAccept', bytes, () => {
      openJoinAccept(bytes, joinAcceptKey);
    });
  }
  checkSubDecoders(bytes);
}

/** CFList and MAC command decoders alone (cheap enough to run on many more inputs). */
function checkSubDecoders(bytes: Uint8Array): void {
  guard('decodeCfList', bytes, () => {
    assertPlainJson(decodeCfList(bytes), 'cfList');
  });
  for (const direction of ['uplink', 'downlink'] as const) {
    guard(`decodeMacCommands (${direction})`, bytes, () => {
      assertPlainJson(decodeMacCommands(bytes, direction), 'macCommands');
    });
  }
}

// ---------------------------------------------------------------------------------------------
// Mutations of valid frames.

type Random = ReturnType<typeof prng>;

function mutate(frame: Uint8Array, random: Random, frames: readonly Uint8Array[]): Uint8Array {
  const kind = random.int(8);
  switch (kind) {
    case 0:
    case 1: {
      // 1 to 4 bit flips.
      const out = Uint8Array.from(frame);
      const flips = 1 + random.int(4);
      for (let i = 0; i < flips && out.length > 0; i++) {
        const bit = random.int(out.length * 8);
        out[bit >>> 3]! ^= 1 << (bit & 7);
      }
      return out;
    }
    case 2:
      // Truncation.
      return frame.slice(0, random.int(frame.length + 1));
    case 3: {
      // Extension with random bytes (sometimes past 255).
      const extra = random.bytes(1 + random.int(random.int(4) === 0 ? 300 : 20));
      const out = new Uint8Array(frame.length + extra.length);
      out.set(frame);
      out.set(extra, frame.length);
      return out;
    }
    case 4: {
      // Another MHDR (message type, RFU and major bits), body kept.
      const out = Uint8Array.from(frame);
      if (out.length > 0) out[0] = random.int(256);
      return out;
    }
    case 5: {
      // A random FCtrl: FOptsLen and flags no longer match the body.
      const out = Uint8Array.from(frame);
      if (out.length > 5) out[5] = random.int(256);
      return out;
    }
    case 6: {
      // A few random bytes overwritten.
      const out = Uint8Array.from(frame);
      const count = 1 + random.int(3);
      for (let i = 0; i < count && out.length > 0; i++)
        out[random.int(out.length)] = random.int(256);
      return out;
    }
    default: {
      // The head of one frame spliced onto the tail of another.
      const other = frames[random.int(frames.length)]!;
      const head = frame.subarray(0, random.int(frame.length + 1));
      const tail = other.subarray(random.int(other.length + 1));
      const out = new Uint8Array(head.length + tail.length);
      out.set(head);
      out.set(tail, head.length);
      return out;
    }
  }
}

/** A stream of MAC commands with valid CIDs and random payloads, sometimes cut short. */
function macCommandStream(random: Random, direction: MacDirection): Uint8Array {
  const parts: number[] = [];
  const count = random.int(8);
  for (let i = 0; i < count; i++) {
    const cid = random.int(4) === 0 ? random.int(256) : 1 + random.int(0x20);
    parts.push(cid);
    const length = macCommandPayloadLength(cid, direction) ?? random.int(4);
    for (let j = 0; j < length; j++) parts.push(random.int(256));
  }
  const bytes = Uint8Array.from(parts);
  return random.int(4) === 0 ? bytes.subarray(0, random.int(bytes.length + 1)) : bytes;
}

// ---------------------------------------------------------------------------------------------

describe('decoders of outside bytes never throw anything but LorawanError', () => {
  const frames = corpus();

  it('accepts every frame of the corpus as valid, MIC included', () => {
    for (const frame of frames) {
      // Proprietary frames have no MIC the core knows of.
      if (decodePhyPayload(frame).mType === 'Proprietary') continue;
      const valid = DESCRIBE_INPUTS.some(
        ([, inputs]) => describeFrame(frame, inputs)['micValid'] === true,
      );
      assert.ok(valid, `no key set verifies ${hex(frame)}`);
    }
  });

  it('survives random byte strings of 0-300 bytes (fast-check)', () =>
    withoutStackTraces(() => {
      fc.assert(
        fc.property(fc.uint8Array({ maxLength: 300, size: 'max' }), (bytes) => {
          checkAllDecoders(bytes);
        }),
        { numRuns: 15_000 },
      );
    }));

  it('survives random byte strings of 0-300 bytes (seeded loop)', () =>
    withoutStackTraces(() => {
      const random = prng(0x6a1e7);
      for (let i = 0; i < 25_000; i++) {
        // Half short (where the length checks sit), half anywhere up to 300 bytes.
        const length = i % 2 === 0 ? random.int(41) : random.int(301);
        checkAllDecoders(random.bytes(length));
      }
    }));

  it('survives bit flips, truncations, extensions and splices of valid frames of every type', () =>
    withoutStackTraces(() => {
      const random = prng(0xf022);
      for (let i = 0; i < 45_000; i++) {
        const frame = frames[i % frames.length]!;
        checkAllDecoders(i < frames.length ? frame : mutate(frame, random, frames));
      }
    }));

  it('survives mutated valid frames (fast-check, shrinking)', () =>
    withoutStackTraces(() => {
      fc.assert(
        fc.property(
          fc.nat({ max: frames.length - 1 }),
          fc.array(fc.nat(), { maxLength: 4 }),
          fc.nat({ max: 300 }),
          fc.uint8Array({ maxLength: 20 }),
          (index, flips, cut, extension) => {
            const frame = Uint8Array.from(frames[index]!);
            for (const flip of flips) frame[(flip >>> 3) % frame.length]! ^= 1 << (flip & 7);
            const head = frame.subarray(0, Math.min(cut, frame.length));
            const bytes = new Uint8Array(head.length + extension.length);
            bytes.set(head);
            bytes.set(extension, head.length);
            checkAllDecoders(bytes);
          },
        ),
        { numRuns: 5_000 },
      );
    }));

  it('survives random CFLists and MAC command streams', () =>
    withoutStackTraces(() => {
      const random = prng(0xcf115);
      for (let i = 0; i < 10_000; i++) {
        // CFList: 16 bytes with a defined, or any, CFListType; sometimes another length.
        const cfList = random.bytes(random.int(8) === 0 ? random.int(40) : 16);
        if (cfList.length === 16 && random.int(2) === 0) cfList[15] = random.int(2);
        stats.inputs++;
        checkSubDecoders(cfList);
        for (const direction of ['uplink', 'downlink'] as const) {
          stats.inputs++;
          checkSubDecoders(macCommandStream(random, direction));
        }
      }
    }));

  it('opens any 17- or 33-byte JoinAccept with any key without throwing', () =>
    withoutStackTraces(() => {
      const random = prng(0x1a);
      for (let i = 0; i < 2_000; i++) {
        const bytes = random.bytes(random.int(2) === 0 ? 17 : 33);
        const anyKey = random.bytes(16);
        stats.inputs++;
        const opened = openJoinAccept(bytes, anyKey);
        assert.equal(opened.micInput.length, bytes.length - 4);
        guard('describeFrame (random AppKey)', bytes, () => {
          assertPlainJson(describeFrame(bytes, { appKey: anyKey }), 'description');
        });
      }
    }));

  it(`went through at least ${MIN_TOTAL_INPUTS} inputs and reached the deep paths`, (t) => {
    t.diagnostic(
      `${stats.inputs} inputs, ${stats.described} descriptions, ${stats.micValid} with a valid MIC`,
    );
    assert.ok(stats.inputs >= MIN_TOTAL_INPUTS, `only ${stats.inputs} inputs`);
    // Sanity: the fuzzing reached MIC checks that pass, MAC command decoding, and each kind of
    // rejection, so it is not stuck at the first length check.
    assert.ok(stats.micValid > 100, `micValid true only ${stats.micValid} times`);
    assert.ok(stats.macCommands > 100, `MAC commands decoded only ${stats.macCommands} times`);
    for (const code of [
      'FRAME_TOO_SHORT',
      'FRAME_TOO_LONG',
      'INVALID_LENGTH',
      'INVALID_FIELD',
      'UNSUPPORTED',
      'UNKNOWN_MAC_COMMAND',
      'MAC_COMMAND_TRUNCATED',
    ] as const) {
      assert.ok(stats.codes.has(code), `no input was rejected with ${code}`);
    }
  });
});
