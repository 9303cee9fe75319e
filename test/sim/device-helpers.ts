/**
 * What the network side does in the simulator's unit tests: join a SimulatedDevice with a
 * JoinAccept built by the protocol core, open its uplinks, build downlinks for it.
 */
import assert from 'node:assert/strict';
import {
  buildDataFrame,
  buildJoinAccept,
  type DataFrame,
  type DataSessionKeys,
  decodeMacCommands,
  decodePhyPayloadWithMicInput,
  decryptDataFrame,
  deriveSessionKeys10,
  deriveSessionKeys11,
  EU868,
  encodeMacCommands,
  type JoinAcceptFields,
  type JoinRequest,
  type MacCommand,
  optNegJoinAcceptKeys,
  type SessionKeys10,
  type SessionKeys11,
  verifyDataMic,
} from '../../src/lorawan/index.js';
import {
  type DeviceTransmission,
  SimulatedDevice,
  type SimulatedDeviceConfig,
} from '../../src/sim/device.js';
import { createRandom } from '../../src/sim/random.js';

export const APP_KEY = Uint8Array.from({ length: 16 }, (_, i) => i + 1);
export const NWK_KEY = Uint8Array.from({ length: 16 }, (_, i) => 0xa0 + i);
export const JOIN_EUI = '70b3d57ed0000001';
export const DEV_EUI = '0004a30b001c0530';
export const NET_ID = 0x000013;
export const DEV_ADDR = 0x26011bda;

export function otaaDevice(
  version: SimulatedDeviceConfig['lorawanVersion'],
  extra: Partial<SimulatedDeviceConfig> = {},
): SimulatedDevice {
  return new SimulatedDevice({
    devEui: DEV_EUI,
    lorawanVersion: version,
    activation: {
      mode: 'otaa',
      joinEui: JOIN_EUI,
      appKey: APP_KEY,
      ...(version === '1.1' ? { nwkKey: NWK_KEY } : {}),
    },
    random: createRandom(1),
    ...extra,
  });
}

/** EU868 channels 3 and 4 on top of the defaults. */
export const CF_LIST = EU868.encodeCfList([
  null,
  null,
  null,
  { frequencyHz: 867_100_000, minDr: 0, maxDr: 5, enabled: true },
  { frequencyHz: 867_300_000, minDr: 0, maxDr: 5, enabled: true },
]);

/**
 * Joins the device (1.1 with OptNeg unless the overrides clear it, 1.0 otherwise) with the
 * core's JoinAccept and returns the network-side keys.
 */
export function joinDevice(
  device: SimulatedDevice,
  overrides: Partial<JoinAcceptFields> = {},
): { keys: DataSessionKeys; raw: SessionKeys10 | SessionKeys11 } {
  const { payload } = decodePhyPayloadWithMicInput(device.joinRequest().phyPayload);
  const { devNonce } = payload as JoinRequest;
  const device11 = device.lorawanVersion === '1.1';
  const fields: JoinAcceptFields = {
    joinNonce: 0x10,
    netId: NET_ID,
    devAddr: DEV_ADDR,
    dlSettings: { optNeg: device11, rx1DrOffset: 0, rx2Dr: 0 },
    rxDelay: 1,
    cfList: CF_LIST,
    ...overrides,
  };
  if (fields.dlSettings.optNeg) {
    const { micKeys, encryptionKey } = optNegJoinAcceptKeys(
      NWK_KEY,
      DEV_EUI,
      JOIN_EUI,
      'join',
      devNonce,
    );
    assert.equal(device.receive(buildJoinAccept(fields, micKeys, encryptionKey)).status, 'joined');
    const raw = deriveSessionKeys11(NWK_KEY, APP_KEY, fields.joinNonce, JOIN_EUI, devNonce);
    return { keys: { lorawan: '1.1', ...raw }, raw };
  }
  // A 1.1 device answered by a 1.0 network uses its NwkKey as the 1.0 root key.
  const rootKey = device11 ? NWK_KEY : APP_KEY;
  const accept = buildJoinAccept(fields, { optNeg: false, key: rootKey }, rootKey);
  assert.equal(device.receive(accept).status, 'joined');
  const raw = deriveSessionKeys10(rootKey, fields.joinNonce, fields.netId, devNonce);
  return { keys: { lorawan: '1.0', ...raw }, raw };
}

/** What the network server does with a data uplink: decode, verify, decrypt. */
export function openUplink(transmission: DeviceTransmission, keys: DataSessionKeys, confFCnt = 0) {
  const { payload, micInput } = decodePhyPayloadWithMicInput(transmission.phyPayload);
  assert.ok(payload.mType === 'UnconfirmedDataUp' || payload.mType === 'ConfirmedDataUp');
  const frame = payload as DataFrame;
  const fCnt = transmission.counter;
  assert.equal(frame.fCnt, fCnt & 0xffff);
  const context = { confFCnt, txDr: transmission.dataRate, txCh: transmission.channel };
  assert.ok(verifyDataMic(frame, micInput, keys, fCnt, context), 'uplink MIC verifies');
  const decrypted = decryptDataFrame(frame, keys, fCnt);
  const macBytes = frame.fPort === 0 ? decrypted.frmPayload! : decrypted.fOpts;
  return {
    frame,
    payload: decrypted.frmPayload,
    macCommands: decodeMacCommands(macBytes, 'uplink'),
  };
}

export function downlinkFrame(
  keys: DataSessionKeys,
  fCnt: number,
  options: {
    confirmed?: boolean;
    ack?: boolean;
    confFCnt?: number;
    fPort?: number;
    payload?: Uint8Array;
    mac?: MacCommand[];
    devAddr?: number;
    fPending?: boolean;
  } = {},
): Uint8Array {
  const mac = options.mac === undefined ? new Uint8Array(0) : encodeMacCommands(options.mac);
  const onPort0 = options.fPort === 0;
  return buildDataFrame(
    {
      mType: options.confirmed ? 'ConfirmedDataDown' : 'UnconfirmedDataDown',
      devAddr: options.devAddr ?? DEV_ADDR,
      fCtrl: {
        adr: false,
        adrAckReq: false,
        ack: options.ack ?? false,
        classB: false,
        fPending: options.fPending ?? false,
      },
      fCnt,
      fOpts: onPort0 ? new Uint8Array(0) : mac,
      ...(options.fPort === undefined ? {} : { fPort: options.fPort }),
      frmPayload: onPort0 ? mac : (options.payload ?? new Uint8Array(0)),
    },
    keys,
    { confFCnt: options.confFCnt ?? 0 },
  );
}

/**
 * A joined device that has sent one uplink and received, as the network's first downlink
 * (FCntDown 0), the given MAC commands in FOpts. Returns the device and the network-side keys.
 */
export function joinedDeviceWithMac(
  version: SimulatedDeviceConfig['lorawanVersion'],
  mac: MacCommand[],
  extra: Partial<SimulatedDeviceConfig> = {},
): { device: SimulatedDevice; keys: DataSessionKeys } {
  const device = otaaDevice(version, extra);
  const { keys } = joinDevice(device);
  device.uplink();
  device.receive(downlinkFrame(keys, 0, { mac }));
  return { device, keys };
}
