/**
 * Backend Interfaces codec and key envelopes: round trips of every message type, messages as
 * other implementations write them, typed refusals, properties over generated messages and
 * hostile JSON, and RFC 3394 envelopes.
 */
import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import fc from 'fast-check';
import {
  type AppSKeyAns,
  type AppSKeyReq,
  answerHeader,
  type BackendInterfacesErrorCode,
  type BackendMessage,
  decode,
  decodeValue,
  encode,
  encodeValue,
  failedAnswer,
  type HomeNSAns,
  type HomeNSReq,
  isBackendInterfacesError,
  type JoinAns,
  type JoinAnsSuccess,
  type JoinReq,
  type KeyEnvelope,
  MAX_MESSAGE_LENGTH,
  type ProtocolVersion,
  RESULT_CODES,
  type RejoinAns,
  type RejoinReq,
  unwrapKeyEnvelope,
  wrapKeyEnvelope,
} from '../../src/join/backend-interfaces/index.js';
import { bytesToHex, hexToBytes } from '../../src/lorawan/bytes.js';

const JOIN_EUI = '70b3d57ed0000000';
const DEV_EUI = '0004a30b001c0530';
const NET_ID = '000013';
const NSID = 'a0b1c2d3e4f50617';
const AS_ID = 'provider-as.example';

const seq = (length: number, start: number): Uint8Array =>
  Uint8Array.from({ length }, (_, i) => (start + i) & 0xff);
const clearKey = (start: number): KeyEnvelope => ({ kekLabel: '', aesKey: seq(16, start) });
const wrappedKey = (label: string, start: number): KeyEnvelope => ({
  kekLabel: label,
  aesKey: seq(24, start),
});

const JOIN_REQ_10: JoinReq = {
  protocolVersion: '1.0',
  messageType: 'JoinReq',
  senderId: NET_ID,
  receiverId: JOIN_EUI,
  transactionId: 3_735_928_559,
  macVersion: '1.0.2',
  phyPayload: seq(23, 0x10),
  devEui: DEV_EUI,
  devAddr: 0x26011f2a,
  dlSettings: { optNeg: false, rx1DrOffset: 0, rx2Dr: 3 },
  rxDelay: 1,
};

const JOIN_REQ_11: JoinReq = {
  ...JOIN_REQ_10,
  protocolVersion: '1.1',
  macVersion: '1.1',
  senderNsId: NSID,
  senderToken: seq(4, 0xa0),
  dlSettings: { optNeg: true, rx1DrOffset: 2, rx2Dr: 0 },
  cfList: seq(16, 0x40),
};

const JOIN_ANS_10: JoinAns = {
  protocolVersion: '1.0',
  messageType: 'JoinAns',
  senderId: JOIN_EUI,
  receiverId: NET_ID,
  transactionId: 3_735_928_559,
  result: { resultCode: 'Success' },
  phyPayload: seq(17, 0x20),
  lifetimeSeconds: 0,
  nwkSKey: clearKey(0x01),
  appSKey: wrappedKey('as:provider', 0x30),
  sessionKeyId: seq(6, 0x70),
};

const JOIN_ANS_11: JoinAnsSuccess = {
  protocolVersion: '1.1',
  messageType: 'JoinAns',
  senderId: JOIN_EUI,
  receiverId: NET_ID,
  receiverNsId: NSID,
  receiverToken: seq(4, 0xa0),
  transactionId: 7,
  result: { resultCode: 'Success', description: 'session keys derived' },
  phyPayload: seq(33, 0x20),
  lifetimeSeconds: 86_400,
  sNwkSIntKey: wrappedKey('ns:operator', 0x01),
  fNwkSIntKey: wrappedKey('ns:operator', 0x02),
  nwkSEncKey: wrappedKey('ns:operator', 0x03),
  appSKey: wrappedKey('as:provider', 0x04),
};

const JOIN_ANS_FAILED: JoinAns = {
  protocolVersion: '1.0',
  messageType: 'JoinAns',
  senderId: JOIN_EUI,
  receiverId: NET_ID,
  transactionId: 12,
  result: { resultCode: 'UnknownDevEUI', description: `no device ${DEV_EUI}` },
};

const REJOIN_REQ: RejoinReq = {
  ...JOIN_REQ_11,
  messageType: 'RejoinReq',
  phyPayload: seq(19, 0x50),
};
delete REJOIN_REQ.cfList;

const REJOIN_ANS: RejoinAns = {
  ...JOIN_ANS_11,
  messageType: 'RejoinAns',
  sessionKeyId: seq(3, 0x99),
};

const REJOIN_ANS_FAILED: RejoinAns = {
  protocolVersion: '1.1',
  messageType: 'RejoinAns',
  senderId: JOIN_EUI,
  receiverId: NET_ID,
  receiverNsId: NSID,
  transactionId: 13,
  result: { resultCode: 'MICFailed' },
};

const APP_S_KEY_REQ: AppSKeyReq = {
  protocolVersion: '1.1',
  messageType: 'AppSKeyReq',
  senderId: AS_ID,
  receiverId: JOIN_EUI,
  transactionId: 99,
  devEui: DEV_EUI,
  sessionKeyId: seq(6, 0x70),
};

const APP_S_KEY_ANS: AppSKeyAns = {
  protocolVersion: '1.1',
  messageType: 'AppSKeyAns',
  senderId: JOIN_EUI,
  receiverId: AS_ID,
  transactionId: 99,
  result: { resultCode: 'Success' },
  devEui: DEV_EUI,
  appSKey: wrappedKey('as:provider', 0x04),
  sessionKeyId: seq(6, 0x70),
};

const APP_S_KEY_ANS_FAILED: AppSKeyAns = {
  protocolVersion: '1.0',
  messageType: 'AppSKeyAns',
  senderId: JOIN_EUI,
  receiverId: AS_ID,
  transactionId: 100,
  result: { resultCode: 'UnknownDevEUI' },
};

const HOME_NS_REQ: HomeNSReq = {
  protocolVersion: '1.1',
  messageType: 'HomeNSReq',
  senderId: NET_ID,
  receiverId: JOIN_EUI,
  senderNsId: NSID,
  transactionId: 5,
  devEui: DEV_EUI,
};

const HOME_NS_ANS: HomeNSAns = {
  protocolVersion: '1.1',
  messageType: 'HomeNSAns',
  senderId: JOIN_EUI,
  receiverId: NET_ID,
  transactionId: 5,
  result: { resultCode: 'Success' },
  hNetId: 0x000013,
  hNsId: NSID,
};

const EXAMPLES: Record<string, BackendMessage> = {
  'JoinReq 1.0': JOIN_REQ_10,
  'JoinReq 1.1': JOIN_REQ_11,
  'JoinAns 1.0 (NwkSKey)': JOIN_ANS_10,
  'JoinAns 1.1 (three network keys)': JOIN_ANS_11,
  'JoinAns failed': JOIN_ANS_FAILED,
  RejoinReq: REJOIN_REQ,
  RejoinAns: REJOIN_ANS,
  'RejoinAns failed': REJOIN_ANS_FAILED,
  AppSKeyReq: APP_S_KEY_REQ,
  AppSKeyAns: APP_S_KEY_ANS,
  'AppSKeyAns failed': APP_S_KEY_ANS_FAILED,
  HomeNSReq: HOME_NS_REQ,
  HomeNSAns: HOME_NS_ANS,
};

function isErrorWith(code: BackendInterfacesErrorCode, field?: string) {
  return (error: unknown): boolean => {
    assert.ok(isBackendInterfacesError(error), `expected a BackendInterfacesError, got ${error}`);
    assert.equal(error.code, code, error.message);
    if (field !== undefined) assert.equal(error.field, field, error.message);
    return true;
  };
}

/** decode must return a message or throw a BackendInterfacesError: nothing else. */
function decodeOrTypedError(run: () => BackendMessage): BackendMessage | undefined {
  try {
    return run();
  } catch (error) {
    if (!isBackendInterfacesError(error)) throw error;
    return undefined;
  }
}

describe('Backend Interfaces messages: round trips', () => {
  for (const [name, message] of Object.entries(EXAMPLES)) {
    it(`${name}: decode(encode(x)) deep-equals x, as text and as a JSON value`, () => {
      assert.deepStrictEqual(decode(encode(message)), message);
      assert.deepStrictEqual(decodeValue(encodeValue(message)), message);
    });
  }

  it('writes the specification field names and canonical hex', () => {
    const wire = JSON.parse(encode(JOIN_REQ_11));
    assert.deepEqual(Object.keys(wire).sort(), [
      'CFList',
      'DLSettings',
      'DevAddr',
      'DevEUI',
      'MACVersion',
      'MessageType',
      'PHYPayload',
      'ProtocolVersion',
      'ReceiverID',
      'RxDelay',
      'SenderID',
      'SenderNSID',
      'SenderToken',
      'TransactionID',
    ]);
    assert.equal(wire.DevAddr, '26011f2a');
    assert.equal(wire.DLSettings, 'a0');
    assert.equal(wire.SenderID, NET_ID);
    assert.equal(wire.ReceiverID, JOIN_EUI);
    assert.equal(wire.TransactionID, 3_735_928_559);

    const ans = JSON.parse(encode(JOIN_ANS_11));
    assert.deepEqual(ans.Result, { ResultCode: 'Success', Description: 'session keys derived' });
    assert.equal(ans.Lifetime, 86_400);
    assert.equal(ans.ReceiverNSID, NSID);
    assert.deepEqual(Object.keys(ans.SNwkSIntKey), ['KEKLabel', 'AESKey']);
    assert.equal(ans.AppSKey.AESKey, bytesToHex(seq(24, 0x04)));

    const home = JSON.parse(encode(HOME_NS_ANS));
    assert.equal(home.HNetID, '000013');
    assert.equal(home.HNSID, NSID);
  });

  it('reads a JoinReq as another implementation writes it (upper case, empty and null fields)', () => {
    const text = JSON.stringify({
      ProtocolVersion: '1.0',
      SenderID: '00001A',
      ReceiverID: '70B3D57ED0000000',
      TransactionID: 1234,
      MessageType: 'JoinReq',
      SenderToken: null,
      MACVersion: '1.0.3',
      PHYPayload: 'ABCDEF',
      DevEUI: '0004A30B001C0530',
      DevAddr: '26011F2A',
      DLSettings: '03',
      RxDelay: 5,
      CFList: '',
      VSExtension: { VendorID: '00' },
    });
    assert.deepStrictEqual(decode(text, 'JoinReq'), {
      protocolVersion: '1.0',
      messageType: 'JoinReq',
      senderId: '00001a',
      receiverId: JOIN_EUI,
      transactionId: 1234,
      macVersion: '1.0.3',
      phyPayload: Uint8Array.from([0xab, 0xcd, 0xef]),
      devEui: DEV_EUI,
      devAddr: 0x26011f2a,
      dlSettings: { optNeg: false, rx1DrOffset: 0, rx2Dr: 3 },
      rxDelay: 5,
    });
  });

  it('reads a failed answer with leftover payload fields, free-form IDs and a clear key without KEKLabel', () => {
    const failed = decode(
      JSON.stringify({
        ProtocolVersion: '1.0',
        SenderID: '',
        ReceiverID: 'unknown',
        TransactionID: 0,
        MessageType: 'JoinAns',
        Result: { ResultCode: 'UnkownReceiver', Description: '' },
        PHYPayload: '',
        Lifetime: 0,
      }),
    );
    assert.deepStrictEqual(failed, {
      protocolVersion: '1.0',
      messageType: 'JoinAns',
      senderId: '',
      receiverId: 'unknown',
      transactionId: 0,
      result: { resultCode: 'UnkownReceiver' },
    });

    const success = decode(
      JSON.stringify({
        ...encodeValue(JOIN_ANS_10),
        NwkSKey: { AESKey: bytesToHex(seq(16, 1)).toUpperCase() },
      }),
      ['JoinAns', 'RejoinAns'],
    );
    assert.equal(success.result.resultCode, 'Success');
    assert.ok('nwkSKey' in success);
    assert.deepStrictEqual(success.nwkSKey, clearKey(0x01));
  });

  it('builds the answer header and failed answers from a request', () => {
    const header = answerHeader(JOIN_REQ_11);
    assert.deepStrictEqual(header, {
      protocolVersion: '1.1',
      messageType: 'JoinAns',
      senderId: JOIN_EUI,
      receiverId: NET_ID,
      transactionId: JOIN_REQ_11.transactionId,
      receiverToken: JOIN_REQ_11.senderToken,
      receiverNsId: NSID,
    });
    const failed = failedAnswer(JOIN_REQ_11, 'UnknownDevEUI', `no device ${DEV_EUI}`);
    assert.deepStrictEqual(decode(encode(failed), 'JoinAns'), failed);

    const fromAs = failedAnswer(APP_S_KEY_REQ, 'UnknownDevEUI', '');
    assert.deepStrictEqual(fromAs, {
      protocolVersion: '1.1',
      messageType: 'AppSKeyAns',
      senderId: JOIN_EUI,
      receiverId: AS_ID,
      transactionId: 99,
      result: { resultCode: 'UnknownDevEUI' },
    });
    assert.deepStrictEqual(decode(encode(fromAs)), fromAs);
  });
});

describe('Backend Interfaces messages: refusals', () => {
  const joinReq = (): Record<string, unknown> => encodeValue(JOIN_REQ_10);
  const joinAns = (): Record<string, unknown> => encodeValue(JOIN_ANS_10);
  const cases: [string, () => unknown, BackendInterfacesErrorCode, string?][] = [
    ['text that is not JSON', () => '{"ProtocolVersion":', 'MalformedRequest', 'message'],
    ['a JSON array', () => '[1,2]', 'MalformedRequest', 'message'],
    ['JSON null', () => 'null', 'MalformedRequest', 'message'],
    [
      'a message without ProtocolVersion',
      () => ({ ...joinReq(), ProtocolVersion: undefined }),
      'MalformedRequest',
      'ProtocolVersion',
    ],
    [
      'ProtocolVersion 1.2',
      () => ({ ...joinReq(), ProtocolVersion: '1.2' }),
      'UnsupportedVersion',
      'ProtocolVersion',
    ],
    [
      'ProtocolVersion as a number',
      () => ({ ...joinReq(), ProtocolVersion: 1.0 }),
      'MalformedRequest',
      'ProtocolVersion',
    ],
    [
      'a roaming message type',
      () => ({ ...joinReq(), MessageType: 'PRStartReq' }),
      'UnsupportedMessageType',
      'MessageType',
    ],
    [
      'a DevEUI of 7 bytes',
      () => ({ ...joinReq(), DevEUI: '0004a30b001c05' }),
      'InvalidField',
      'JoinReq.DevEUI',
    ],
    [
      'a PHYPayload with a non-hex digit',
      () => ({ ...joinReq(), PHYPayload: '0g' }),
      'InvalidField',
      'JoinReq.PHYPayload',
    ],
    [
      'a PHYPayload with an odd number of digits',
      () => ({ ...joinReq(), PHYPayload: 'abc' }),
      'InvalidField',
      'JoinReq.PHYPayload',
    ],
    [
      'a PHYPayload of 60 000 bytes',
      () => ({ ...joinReq(), PHYPayload: 'ff'.repeat(30_000) }),
      'InvalidField',
      'JoinReq.PHYPayload',
    ],
    [
      'a negative TransactionID',
      () => ({ ...joinReq(), TransactionID: -1 }),
      'InvalidField',
      'JoinReq.TransactionID',
    ],
    [
      'a TransactionID of 2^32',
      () => ({ ...joinReq(), TransactionID: 2 ** 32 }),
      'InvalidField',
      'JoinReq.TransactionID',
    ],
    [
      'a TransactionID as a string',
      () => ({ ...joinReq(), TransactionID: '12' }),
      'MalformedRequest',
      'JoinReq.TransactionID',
    ],
    ['RxDelay 16', () => ({ ...joinReq(), RxDelay: 16 }), 'InvalidField', 'JoinReq.RxDelay'],
    ['RxDelay 1.5', () => ({ ...joinReq(), RxDelay: 1.5 }), 'InvalidField', 'JoinReq.RxDelay'],
    [
      'a CFList of 15 bytes',
      () => ({ ...joinReq(), CFList: 'aa'.repeat(15) }),
      'InvalidField',
      'JoinReq.CFList',
    ],
    [
      'an unknown MACVersion',
      () => ({ ...joinReq(), MACVersion: '2.0' }),
      'InvalidField',
      'JoinReq.MACVersion',
    ],
    [
      'a missing DevAddr',
      () => ({ ...joinReq(), DevAddr: undefined }),
      'MalformedRequest',
      'JoinReq.DevAddr',
    ],
    [
      'SenderNSID in a 1.0 message',
      () => ({ ...joinReq(), SenderNSID: NSID }),
      'InvalidField',
      'JoinReq.SenderNSID',
    ],
    [
      'a SenderID that is not a NetID',
      () => ({ ...joinReq(), SenderID: JOIN_EUI }),
      'InvalidField',
      'JoinReq.SenderID',
    ],
    [
      'an AS-ID with a control character',
      () => ({ ...encodeValue(APP_S_KEY_REQ), SenderID: 'as\nforged log line' }),
      'InvalidField',
      'AppSKeyReq.SenderID',
    ],
    [
      'an answer without Result',
      () => ({ ...joinAns(), Result: undefined }),
      'MalformedRequest',
      'JoinAns.Result',
    ],
    [
      'an unknown ResultCode',
      () => ({ ...joinAns(), Result: { ResultCode: 'Maybe' } }),
      'InvalidField',
      'JoinAns.Result.ResultCode',
    ],
    [
      'a successful JoinAns with both NwkSKey and SNwkSIntKey',
      () => ({ ...joinAns(), SNwkSIntKey: { KEKLabel: '', AESKey: '00'.repeat(16) } }),
      'InvalidField',
      'JoinAns',
    ],
    [
      'a successful JoinAns without any network key',
      () => ({ ...joinAns(), NwkSKey: undefined }),
      'InvalidField',
      'JoinAns',
    ],
    [
      'a successful JoinAns without AppSKey or SessionKeyID',
      () => ({ ...joinAns(), AppSKey: undefined, SessionKeyID: undefined }),
      'InvalidField',
      'JoinAns',
    ],
    [
      'a successful JoinAns without PHYPayload',
      () => ({ ...joinAns(), PHYPayload: undefined }),
      'MalformedRequest',
      'JoinAns.PHYPayload',
    ],
    [
      'a successful JoinAns with an empty PHYPayload',
      () => ({ ...joinAns(), PHYPayload: '' }),
      'InvalidField',
      'JoinAns.PHYPayload',
    ],
    [
      'a wrapped key of 16 bytes',
      () => ({ ...joinAns(), AppSKey: { KEKLabel: 'as:provider', AESKey: '00'.repeat(16) } }),
      'InvalidField',
      'JoinAns.AppSKey.AESKey',
    ],
    [
      'a clear key of 24 bytes',
      () => ({ ...joinAns(), NwkSKey: { KEKLabel: '', AESKey: '00'.repeat(24) } }),
      'InvalidField',
      'JoinAns.NwkSKey.AESKey',
    ],
    [
      'a KeyEnvelope as a string',
      () => ({ ...joinAns(), NwkSKey: '00'.repeat(16) }),
      'MalformedRequest',
      'JoinAns.NwkSKey',
    ],
  ];
  for (const [name, input, code, field] of cases) {
    it(`refuses ${name} with ${code}`, () => {
      const value = input();
      const text = typeof value === 'string' ? value : JSON.stringify(value);
      assert.throws(() => decode(text), isErrorWith(code, field));
    });
  }

  it('refuses a text longer than MAX_MESSAGE_LENGTH before parsing it', () => {
    const text = JSON.stringify({ ...joinReq(), Padding: 'a'.repeat(MAX_MESSAGE_LENGTH) });
    assert.throws(() => decode(text), isErrorWith('MalformedRequest', 'message'));
  });

  it('refuses a valid message of another type than expected', () => {
    assert.throws(
      () => decode(encode(JOIN_REQ_10), 'JoinAns'),
      isErrorWith('UnexpectedMessageType', 'MessageType'),
    );
  });

  it('tells what to answer a refused request', () => {
    const codeOf = (run: () => unknown): string => {
      try {
        run();
      } catch (error) {
        if (isBackendInterfacesError(error)) return error.resultCode;
      }
      return 'no error';
    };
    assert.equal(
      codeOf(() => decode('{')),
      'MalformedRequest',
    );
    assert.equal(
      codeOf(() => decode(JSON.stringify({ ...joinReq(), ProtocolVersion: '9' }))),
      'InvalidProtocolVersion',
    );
  });

  it('encode refuses what decode would not produce', () => {
    const refuse = (message: unknown, code: BackendInterfacesErrorCode) =>
      assert.throws(() => encode(message as BackendMessage), isErrorWith(code));
    refuse({ ...JOIN_REQ_10, devEui: DEV_EUI.toUpperCase() }, 'InvalidField');
    refuse({ ...JOIN_REQ_10, devAddr: 2 ** 32 }, 'InvalidField');
    refuse({ ...JOIN_REQ_10, senderNsId: NSID }, 'InvalidField');
    refuse({ ...JOIN_REQ_10, cfList: new Uint8Array(0) }, 'InvalidField');
    refuse({ ...JOIN_REQ_10, phyPayload: bytesToHex(seq(23, 0)) }, 'InvalidField');
    refuse(
      { ...JOIN_REQ_10, dlSettings: { optNeg: false, rx1DrOffset: 8, rx2Dr: 0 } },
      'InvalidField',
    );
    refuse({ ...JOIN_ANS_FAILED, phyPayload: seq(17, 0) }, 'InvalidField');
    refuse({ ...JOIN_ANS_FAILED, result: { resultCode: 'Nope' } }, 'InvalidField');
    refuse(
      { ...JOIN_ANS_FAILED, result: { resultCode: 'Other', description: '' } },
      'InvalidField',
    );
    refuse({ ...JOIN_ANS_10, appSKey: { kekLabel: 'x', aesKey: seq(16, 0) } }, 'InvalidField');
    refuse({ ...JOIN_ANS_10, protocolVersion: '2.0' }, 'UnsupportedVersion');
    refuse({ ...JOIN_ANS_10, messageType: 'XmitDataReq' }, 'UnsupportedMessageType');
  });

  it('does not let "__proto__" or "constructor" keys reach a prototype', () => {
    const base = encode(JOIN_ANS_10).slice(0, -1);
    const text =
      `${base},"__proto__":{"polluted":true,"PHYPayload":"00"},` +
      '"constructor":{"prototype":{"polluted":true}},' +
      '"Result":{"ResultCode":"Success","__proto__":{"Description":"injected"}}}';
    const decoded = decode(text);
    assert.deepStrictEqual(decoded, JOIN_ANS_10);
    assert.equal(Object.getPrototypeOf(decoded), Object.prototype);
    assert.equal(({} as Record<string, unknown>).polluted, undefined);
    assert.equal(Object.hasOwn(decoded, '__proto__'), false);
  });

  it('reads only own properties of a value given to decodeValue', () => {
    const inherited = Object.create(encodeValue(JOIN_REQ_10)) as object;
    assert.throws(() => decodeValue(inherited), isErrorWith('MalformedRequest', 'ProtocolVersion'));
    const hostile = new Proxy(
      {},
      {
        getOwnPropertyDescriptor() {
          throw new Error('trap');
        },
      },
    );
    assert.throws(() => decodeValue(hostile), isErrorWith('MalformedRequest'));
  });
});

// ---------------------------------------------------------------------------------------------
// Generated messages

const NO_NULL_PROTO = { noNullPrototype: true } as const;
const bytes = (min: number, max: number) => fc.uint8Array({ minLength: min, maxLength: max });
const hexId = (length: number) => bytes(length, length).map(bytesToHex);
const eui = hexId(8);
const netId = hexId(3);
const asId = fc.stringMatching(/^[\x20-\x7e]{1,24}$/);
const anyId = fc.stringMatching(/^[\x20-\x7e]{0,24}$/);
const envelope: fc.Arbitrary<KeyEnvelope> = fc.oneof(
  fc.record({ kekLabel: fc.constant(''), aesKey: bytes(16, 16) }, NO_NULL_PROTO),
  fc.record(
    { kekLabel: fc.string({ minLength: 1, maxLength: 16 }), aesKey: bytes(24, 24) },
    NO_NULL_PROTO,
  ),
);
const description = fc.string({ minLength: 1, maxLength: 32 });

type Fields = Record<string, fc.Arbitrary<unknown>>;

function rec(required: Fields, optional: Fields = {}): fc.Arbitrary<Record<string, unknown>> {
  return fc.record(
    { ...required, ...optional },
    { requiredKeys: Object.keys(required), noNullPrototype: true },
  );
}

function headerOf(
  version: ProtocolVersion,
  sender: fc.Arbitrary<string>,
  receiver: fc.Arbitrary<string>,
  nsId?: 'senderNsId' | 'receiverNsId',
) {
  const optional: Fields = { senderToken: bytes(1, 8), receiverToken: bytes(1, 8) };
  if (nsId !== undefined && version === '1.1') optional[nsId] = eui;
  return rec(
    {
      protocolVersion: fc.constant(version),
      senderId: sender,
      receiverId: receiver,
      transactionId: fc.nat({ max: 0xffff_ffff }),
    },
    optional,
  );
}

const result = (success: boolean) =>
  rec(
    {
      resultCode: success
        ? fc.constant('Success')
        : fc.constantFrom(...RESULT_CODES.filter((code) => code !== 'Success')),
    },
    { description },
  );

function message(
  messageType: string,
  parts: fc.Arbitrary<Record<string, unknown>>[],
): fc.Arbitrary<BackendMessage> {
  return fc
    .tuple(...parts)
    .map((records) => Object.assign({ messageType }, ...records) as BackendMessage);
}

const activationRequest = rec(
  {
    macVersion: fc.constantFrom('1.0', '1.0.0', '1.0.1', '1.0.2', '1.0.3', '1.0.4', '1.1', '1.1.0'),
    phyPayload: bytes(1, 40),
    devEui: eui,
    devAddr: fc.nat({ max: 0xffff_ffff }),
    dlSettings: fc.record(
      { optNeg: fc.boolean(), rx1DrOffset: fc.nat({ max: 7 }), rx2Dr: fc.nat({ max: 15 }) },
      NO_NULL_PROTO,
    ),
    rxDelay: fc.nat({ max: 15 }),
  },
  { cfList: bytes(16, 16) },
);

const activationAnswer = fc
  .tuple(
    rec({ phyPayload: bytes(1, 40), lifetimeSeconds: fc.nat({ max: 0xffff_ffff }) }),
    fc.oneof(
      rec({ nwkSKey: envelope }),
      rec({ sNwkSIntKey: envelope, fNwkSIntKey: envelope, nwkSEncKey: envelope }),
    ),
    fc.oneof(
      rec({ appSKey: envelope }),
      rec({ sessionKeyId: bytes(1, 16) }),
      rec({ appSKey: envelope, sessionKeyId: bytes(1, 16) }),
    ),
  )
  .map(([a, b, c]) => ({ ...a, ...b, ...c }));

function answers(
  type: string,
  successHeader: fc.Arbitrary<Record<string, unknown>>,
  failureHeader: fc.Arbitrary<Record<string, unknown>>,
  payload: fc.Arbitrary<Record<string, unknown>>,
) {
  return fc.oneof(
    message(type, [successHeader, rec({ result: result(true) }), payload]),
    message(type, [failureHeader, rec({ result: result(false) })]),
  );
}

const messageArbitrary: fc.Arbitrary<BackendMessage> = fc
  .constantFrom<ProtocolVersion>('1.0', '1.1')
  .chain((v) =>
    fc.oneof(
      message('JoinReq', [headerOf(v, netId, eui, 'senderNsId'), activationRequest]),
      message('RejoinReq', [headerOf(v, netId, eui, 'senderNsId'), activationRequest]),
      answers(
        'JoinAns',
        headerOf(v, eui, netId, 'receiverNsId'),
        headerOf(v, anyId, anyId, 'receiverNsId'),
        activationAnswer,
      ),
      answers(
        'RejoinAns',
        headerOf(v, eui, netId, 'receiverNsId'),
        headerOf(v, anyId, anyId, 'receiverNsId'),
        activationAnswer,
      ),
      message('AppSKeyReq', [
        headerOf(v, asId, eui),
        rec({ devEui: eui, sessionKeyId: bytes(1, 16) }),
      ]),
      answers(
        'AppSKeyAns',
        headerOf(v, eui, asId),
        headerOf(v, anyId, anyId),
        rec({ devEui: eui, appSKey: envelope, sessionKeyId: bytes(1, 16) }),
      ),
      message('HomeNSReq', [headerOf(v, netId, eui, 'senderNsId'), rec({ devEui: eui })]),
      answers(
        'HomeNSAns',
        headerOf(v, eui, netId, 'receiverNsId'),
        headerOf(v, anyId, anyId, 'receiverNsId'),
        v === '1.1'
          ? rec({ hNetId: fc.nat({ max: 0xff_ffff }) }, { hNsId: eui })
          : rec({ hNetId: fc.nat({ max: 0xff_ffff }) }),
      ),
    ),
  );

const WIRE_KEYS = [
  'ProtocolVersion',
  'MessageType',
  'SenderID',
  'ReceiverID',
  'TransactionID',
  'SenderToken',
  'ReceiverToken',
  'SenderNSID',
  'ReceiverNSID',
  'Result',
  'MACVersion',
  'PHYPayload',
  'DevEUI',
  'DevAddr',
  'DLSettings',
  'RxDelay',
  'CFList',
  'Lifetime',
  'NwkSKey',
  'SNwkSIntKey',
  'FNwkSIntKey',
  'NwkSEncKey',
  'AppSKey',
  'SessionKeyID',
  'HNetID',
  'HNSID',
  '__proto__',
  'constructor',
];

/** A valid message with one field deleted, replaced, or one level deeper replaced. */
const mutatedMessage = fc
  .tuple(
    messageArbitrary,
    fc.constantFrom(...WIRE_KEYS),
    fc.constantFrom('delete', 'replace', 'nested', 'flip-case'),
    fc.jsonValue({ maxDepth: 3 }),
    fc.constantFrom('KEKLabel', 'AESKey', 'ResultCode', 'Description', '__proto__'),
  )
  .map(([valid, key, how, value, nestedKey]) => {
    const wire = encodeValue(valid);
    let text: string;
    if (key === '__proto__' || (how === 'nested' && key === 'constructor')) {
      // JSON text is the only way to get an own "__proto__" key in front of JSON.parse.
      text = `${JSON.stringify(wire).slice(0, -1)},${JSON.stringify(key)}:${JSON.stringify(value)}}`;
    } else if (how === 'delete') {
      delete wire[key];
      text = JSON.stringify(wire);
    } else if (how === 'nested' && typeof wire[key] === 'object' && wire[key] !== null) {
      (wire[key] as Record<string, unknown>)[nestedKey] = value;
      text = JSON.stringify(wire);
    } else if (how === 'flip-case' && typeof wire[key] === 'string') {
      wire[key] = (wire[key] as string).toUpperCase();
      text = JSON.stringify(wire);
    } else {
      wire[key] = value;
      text = JSON.stringify(wire);
    }
    return text;
  });

describe('Backend Interfaces messages: properties (fast-check)', () => {
  it('decode(encode(x)) deep-equals x for generated messages of every type', () => {
    fc.assert(
      fc.property(messageArbitrary, (message) => {
        assert.deepStrictEqual(decode(encode(message)), message);
        assert.deepStrictEqual(decodeValue(JSON.parse(encode(message))), message);
      }),
      { numRuns: 2000 },
    );
  });

  it('decode of any JSON value returns a message or throws a BackendInterfacesError', () => {
    fc.assert(
      fc.property(fc.jsonValue(), (value) => {
        decodeOrTypedError(() => decodeValue(value));
        decodeOrTypedError(() => decode(JSON.stringify(value) ?? ''));
      }),
      { numRuns: 1000 },
    );
    fc.assert(
      fc.property(
        fc.anything({ withNullPrototype: true, withMap: true, withTypedArray: true }),
        (value) => {
          decodeOrTypedError(() => decodeValue(value));
        },
      ),
      { numRuns: 500 },
    );
    fc.assert(
      fc.property(fc.string({ maxLength: 200 }), (text) => {
        decodeOrTypedError(() => decode(text));
      }),
      { numRuns: 500 },
    );
  });

  it('decode of a mutated valid message returns a canonical message or throws a BackendInterfacesError', () => {
    fc.assert(
      fc.property(mutatedMessage, (text) => {
        const decoded = decodeOrTypedError(() => decode(text));
        if (decoded !== undefined) {
          // Whatever decode accepts, encode writes back and decode reads the same again.
          assert.deepStrictEqual(decode(encode(decoded)), decoded);
        }
        assert.equal(({} as Record<string, unknown>).polluted, undefined);
      }),
      { numRuns: 3000 },
    );
  });
});

// ---------------------------------------------------------------------------------------------
// Key envelopes

describe('KeyEnvelope wrap and unwrap', () => {
  // RFC 3394 §4.1: wrap 128 bits of key data with a 128-bit KEK.
  const KEK = hexToBytes('000102030405060708090a0b0c0d0e0f');
  const KEY = hexToBytes('00112233445566778899aabbccddeeff');
  const WRAPPED = '1fa68b0a8112b447aef34bd8fb5a7b829d3e862371d2cfe5';
  const LABEL = 'as:provider';

  it('wraps with the RFC 3394 test vector and unwraps it by KEKLabel', () => {
    const sealed = wrapKeyEnvelope(KEY, { label: LABEL, key: KEK });
    assert.equal(sealed.kekLabel, LABEL);
    assert.equal(bytesToHex(sealed.aesKey), WRAPPED);
    assert.deepStrictEqual(unwrapKeyEnvelope(sealed, new Map([[LABEL, KEK]])), KEY);
    assert.deepStrictEqual(
      unwrapKeyEnvelope(sealed, (label) => (label === LABEL ? KEK : undefined)),
      KEY,
    );
  });

  it('refuses to unwrap with a wrong KEK or an altered envelope', () => {
    const sealed = wrapKeyEnvelope(KEY, { label: LABEL, key: KEK });
    const wrongKek = new Map([[LABEL, hexToBytes('0f0e0d0c0b0a09080706050403020100')]]);
    assert.throws(() => unwrapKeyEnvelope(sealed, wrongKek), isErrorWith('KeyUnwrapFailed'));
    const altered = Uint8Array.from(sealed.aesKey);
    altered[10]! ^= 0x01;
    assert.throws(
      () => unwrapKeyEnvelope({ kekLabel: LABEL, aesKey: altered }, new Map([[LABEL, KEK]])),
      isErrorWith('KeyUnwrapFailed'),
    );
  });

  it('refuses a label no KEK is known under', () => {
    const sealed = wrapKeyEnvelope(KEY, { label: 'as:someone-else', key: KEK });
    assert.throws(
      () => unwrapKeyEnvelope(sealed, new Map([[LABEL, KEK]])),
      isErrorWith('UnknownKEK'),
    );
  });

  it('refuses a key in clear unless the caller allows it', () => {
    assert.throws(() => wrapKeyEnvelope(KEY, null), isErrorWith('ClearKeyRefused'));
    assert.throws(
      () => wrapKeyEnvelope(KEY, null, { allowClear: false }),
      isErrorWith('ClearKeyRefused'),
    );
    const clear: KeyEnvelope = { kekLabel: '', aesKey: KEY };
    assert.throws(() => unwrapKeyEnvelope(clear, new Map()), isErrorWith('ClearKeyRefused'));

    const inProcess = wrapKeyEnvelope(KEY, null, { allowClear: true });
    assert.deepStrictEqual(inProcess, clear);
    assert.notEqual(inProcess.aesKey, KEY);
    assert.deepStrictEqual(unwrapKeyEnvelope(clear, new Map(), { allowClear: true }), KEY);
  });

  it('refuses keys, KEKs and labels of the wrong shape', () => {
    assert.throws(
      () => wrapKeyEnvelope(KEY.subarray(1), { label: LABEL, key: KEK }),
      isErrorWith('InvalidKey'),
    );
    assert.throws(
      () => wrapKeyEnvelope(KEY, { label: LABEL, key: KEK.subarray(1) }),
      isErrorWith('InvalidKey'),
    );
    assert.throws(() => wrapKeyEnvelope(KEY, { label: '', key: KEK }), isErrorWith('InvalidKey'));
    const sealed = wrapKeyEnvelope(KEY, { label: LABEL, key: KEK });
    assert.throws(
      () => unwrapKeyEnvelope(sealed, new Map([[LABEL, KEK.subarray(2)]])),
      isErrorWith('InvalidKey'),
    );
    assert.throws(
      () => unwrapKeyEnvelope({ kekLabel: LABEL, aesKey: KEY }, new Map([[LABEL, KEK]])),
      isErrorWith('InvalidKey'),
    );
  });

  it('carries a wrapped AppSKey through a JoinAns the network role cannot open', () => {
    const appSKey = seq(16, 0xc0);
    const nwkSKey = seq(16, 0xd0);
    const answer: JoinAns = {
      ...JOIN_ANS_10,
      nwkSKey: wrapKeyEnvelope(nwkSKey, null, { allowClear: true }),
      appSKey: wrapKeyEnvelope(appSKey, { label: LABEL, key: KEK }),
    };
    const text = encode(answer);
    assert.ok(!text.includes(bytesToHex(appSKey)), 'the AppSKey must not appear in clear');

    const received = decode(text, 'JoinAns');
    assert.equal(received.result.resultCode, 'Success');
    if (received.result.resultCode !== 'Success' || !('appSKey' in received)) return;
    // The network role holds no application KEK: it can only carry the envelope.
    assert.throws(() => unwrapKeyEnvelope(received.appSKey!, new Map()), isErrorWith('UnknownKEK'));
    assert.deepStrictEqual(
      unwrapKeyEnvelope(received.nwkSKey!, new Map(), { allowClear: true }),
      nwkSKey,
    );
    assert.deepStrictEqual(unwrapKeyEnvelope(received.appSKey!, new Map([[LABEL, KEK]])), appSKey);
  });
});
