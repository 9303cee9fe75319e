import {
  AesKey,
  buildDataFrame,
  buildRejoinRequest,
  type Channel,
  type ChannelPlan,
  type DataFrameToBuild,
  type DataSessionKeys,
  type DeviceModeClass,
  type DownlinkMacCommand,
  decodeMacCommands,
  decodePhyPayloadWithMicInput,
  decryptDataFrame,
  deriveJoinServerKeys,
  deriveSessionKeys10,
  deriveSessionKeys11,
  EU868,
  encodeMacCommands,
  encodeMicInput,
  encodePhyPayload,
  type FrameMicContext,
  isLorawanError,
  type JoinAcceptFields,
  type JoinAcceptMicKeys,
  type JoinRequest,
  joinRequestMic,
  joinRequestTypeOfRejoin,
  type LinkADRReq,
  type MacCommand,
  openJoinAccept,
  optNegJoinAcceptKeys,
  type Region,
  type RejoinType,
  reconstructFCnt,
  type SessionKeys10,
  type SessionKeys11,
  type UplinkMacCommand,
  verifyDataMic,
  verifyJoinAcceptMic,
} from '../lorawan/index.js';
import { createRandom, type Random } from './random.js';

/**
 * A class A or class C end device as the network server sees it over the air: LoRaWAN 1.0.2,
 * 1.0.3, 1.0.4 or 1.1, activated by OTAA or ABP. Pure state machine: it builds the frames it
 * would transmit and takes the frames it receives; radio timing is the gateway simulator's
 * business (each transmission lists the receive windows it opens, a class C device names the
 * window it listens on between transmissions).
 *
 * Beyond class A data: ADR on the device side (ADRACKReq and the backoff), NbTrans repetitions,
 * DeviceModeInd (1.1 class switch), RejoinParamSetupReq/ForceRejoinReq and RejoinRequest types
 * 0, 1 and 2 with the JoinAccept that answers them.
 */

export type DeviceLorawanVersion = '1.0.2' | '1.0.3' | '1.0.4' | '1.1';

/** The device classes simulated: A (receive windows after an uplink) and C (always listening). */
export type DeviceClass = DeviceModeClass;

export type DeviceActivation =
  | {
      mode: 'otaa';
      joinEui: string;
      /** Root key: the only one in 1.0.x; in 1.1 it derives the AppSKey only. */
      appKey: Uint8Array;
      /** LoRaWAN 1.1 root key for the network (JoinRequest MIC, JoinAccept, network keys). */
      nwkKey?: Uint8Array;
      /** DevNonce of the first JoinRequest (default 0). */
      devNonce?: number;
    }
  | {
      mode: 'abp';
      devAddr: number;
      /** 1.0.x: nwkSKey + appSKey; 1.1: fNwkSIntKey, sNwkSIntKey, nwkSEncKey + appSKey. */
      keys: SessionKeys10 | SessionKeys11;
      fCntUp?: number;
    };

export interface SimulatedDeviceConfig {
  devEui: string;
  lorawanVersion: DeviceLorawanVersion;
  activation: DeviceActivation;
  region?: Region;
  /** Uplink data rate (default DR5; joins use it too). */
  dataRate?: number;
  /** ADR bit in uplinks, with ADRACKReq and the ADR backoff (default true). */
  adr?: boolean;
  /** Class C listens on RX2 between its transmissions (default 'A'). */
  deviceClass?: DeviceClass;
  /** RejoinParamSetupAns TimeOK: the device can honour MaxTimeN (default true). */
  rejoinTimeOk?: boolean;
  /** ABP: the channel plan (default: the region's default channels). */
  channels?: ChannelPlan;
  /** ABP receive-window settings (defaults: offset 0, the region's RX2, 1 s). */
  rx1DrOffset?: number;
  rx2DataRate?: number;
  rx2FrequencyHz?: number;
  rxDelaySeconds?: number;
  /** DevStatusAns battery: 0 external power, 1-254 level, 255 unknown (default 200). */
  battery?: number;
  /** Channel choice (default: seeded from the DevEUI). */
  random?: Random;
}

/**
 * A receive window a transmission opens, or ('rxc') the one a class C device keeps open between
 * its transmissions.
 */
export interface ReceiveWindow {
  name: 'rx1' | 'rx2' | 'rxc';
  /** From the end of the uplink, in µs (what the gateway's tmst arithmetic uses); 0 for 'rxc'. */
  delayUs: number;
  frequencyHz: number;
  dataRate: number;
}

/** A frame on the air, with what the device will listen for afterwards. */
export interface DeviceTransmission {
  devEui: string;
  kind: 'join' | 'rejoin' | 'data';
  phyPayload: Uint8Array;
  frequencyHz: number;
  dataRate: number;
  /** Channel index in the device's plan. */
  channel: number;
  /** Data uplinks: the 32-bit FCntUp. Joins: the DevNonce. Rejoins: RJcount0 or RJcount1. */
  counter: number;
  confirmed: boolean;
  receiveWindows: readonly ReceiveWindow[];
  /** Rejoins only: the RejoinRequest type. */
  rejoinType?: RejoinType;
  /** NbTrans repetitions only (repeatUplink): 1 for the first repetition of the frame, ... */
  repetition?: number;
}

export interface UplinkOptions {
  fPort?: number;
  payload?: Uint8Array;
  confirmed?: boolean;
  /** Device-initiated commands to piggy-back, e.g. LinkCheckReq or DeviceTimeReq. */
  macCommands?: readonly UplinkMacCommand[];
  /**
   * The channel index to transmit on; it must be enabled and allow the data rate (RangeError
   * otherwise). Default, and when this very uplink's ADR backoff step leaves it unusable: one
   * of those, picked at random.
   */
  channel?: number;
}

export interface ReceivedDownlink {
  confirmed: boolean;
  /** The full 32-bit FCntDown (1.1: NFCntDown or AFCntDown). */
  fCnt: number;
  fPort: number | undefined;
  /** Decrypted FRMPayload (MAC commands on FPort 0). */
  payload: Uint8Array;
  /** The network acknowledged the last confirmed uplink. */
  ack: boolean;
  fPending: boolean;
  macCommands: DownlinkMacCommand[];
  /** Why the MAC commands could not be read, when they could not. */
  macError?: string;
  window?: ReceiveWindow['name'];
}

export type DownlinkOutcome =
  /** A JoinAccept took effect; `rejoinType` when it answered a RejoinRequest. */
  | { status: 'joined'; devAddr: number; rejoinType?: RejoinType }
  | { status: 'accepted'; downlink: ReceivedDownlink }
  /** Not for this device, or nothing expected (another DevAddr, no join pending). */
  | { status: 'ignored'; reason: string }
  /** For this device but refused. */
  | { status: 'rejected'; reason: 'mic' | 'replay' | 'malformed'; detail: string };

export interface ReceptionInfo {
  window?: ReceiveWindow['name'];
  /** SNR of the downlink at the device, for DevStatusAns (default 10 dB). */
  snr?: number;
}

/** Receive-window settings as the network configured them (JoinAccept, MAC commands). */
export interface DeviceRxSettings {
  rx1DrOffset: number;
  rx2DataRate: number;
  rx2FrequencyHz: number;
  rxDelaySeconds: number;
}

/** A ForceRejoinReq the device has yet to honour (LoRaWAN 1.1 §5.13). */
export interface ForcedRejoin {
  rejoinType: 0 | 2;
  dataRate: number;
  /** Retransmission delay 32 s × 2^period + random(0-32 s): the harness's business. */
  period: number;
  maxRetries: number;
  /** RejoinRequests still to send: 1 + maxRetries at first. */
  remaining: number;
}

/**
 * RejoinParamSetupReq: a type-0 rejoin at least every 2^(maxTimeN+10) s or every
 * 2^(maxCountN+4) uplinks.
 */
export interface RejoinParameters {
  maxTimeN: number;
  maxCountN: number;
}

interface Session {
  devAddr: number;
  lorawan: '1.0' | '1.1';
  keys: DataSessionKeys;
  rawKeys: SessionKeys10 | SessionKeys11;
  fCntUp: number;
  /** Last accepted downlink counters; 1.0 uses `nFCntDown` only. */
  nFCntDown: number | undefined;
  aFCntDown: number | undefined;
}

/** The last data uplink, kept to repeat it (NbTrans) with the same FCnt. */
interface LastUplink {
  session: Session;
  frame: DataFrameToBuild;
  confFCnt: number;
  channel: number;
  /** Transmissions of this frame so far (1 after `uplink`). */
  sent: number;
  /** A downlink answered it (any, unconfirmed; an ACK, confirmed): no more repetitions. */
  answered: boolean;
}

const MAX_FOPTS_LENGTH = 15;
const MAX_UINT32 = 0xffff_ffff;

function prepare(keys: SessionKeys10 | SessionKeys11): DataSessionKeys {
  if ('nwkSKey' in keys) {
    return { lorawan: '1.0', nwkSKey: new AesKey(keys.nwkSKey), appSKey: new AesKey(keys.appSKey) };
  }
  return {
    lorawan: '1.1',
    fNwkSIntKey: new AesKey(keys.fNwkSIntKey),
    sNwkSIntKey: new AesKey(keys.sNwkSIntKey),
    nwkSEncKey: new AesKey(keys.nwkSEncKey),
    appSKey: new AesKey(keys.appSKey),
  };
}

function message(error: unknown): string {
  return error instanceof Error ? error.message : String(error);
}

export class SimulatedDevice {
  readonly devEui: string;
  readonly lorawanVersion: DeviceLorawanVersion;
  readonly region: Region;
  readonly #activation: DeviceActivation;
  readonly #random: Random;
  readonly #battery: number;
  readonly #rejoinTimeOk: boolean;
  readonly #received: ReceivedDownlink[] = [];

  #session: Session | undefined;
  #adr: boolean;
  #deviceClass: DeviceClass;
  /** DeviceModeInd sent until DeviceModeConf: the class asked for. */
  #requestedClass: DeviceClass | undefined;
  #dataRate: number;
  #txPowerIndex = 0;
  #nbTrans = 1;
  #channels: (Channel | null | undefined)[];
  /** DlChannelReq: RX1 frequency per channel, when it differs from the uplink's. */
  #downlinkFrequencies = new Map<number, number>();
  /** DutyCycleReq: aggregated duty cycle 1/2^maxDutyCycle (0: the regulatory limit only). */
  #maxDutyCycle = 0;
  #rx1DrOffset: number;
  #rx2DataRate: number;
  #rx2FrequencyHz: number;
  #rxDelaySeconds: number;
  #devNonce: number;
  #pendingJoin: { devNonce: number } | undefined;
  #lastJoinNonce: number | undefined;
  /** A confirmed downlink to acknowledge in the next uplink: its FCntDown. */
  #ackDue: number | undefined;
  /** FCntUp of the last confirmed uplink not yet acknowledged. */
  #confirmedUplinkFCnt: number | undefined;
  #macAnswers: UplinkMacCommand[] = [];
  /** 1.1: RekeyInd after an OptNeg join, ResetInd after an ABP start, until confirmed. */
  #rekeyIndDue = false;
  #resetIndDue = false;
  /** ADR_ACK_CNT: data uplinks since the last downlink (LoRaWAN 1.0.4/1.1 §4.3.1.1). */
  #adrAckCounter = 0;
  #adrAckLimit: number;
  #adrAckDelay: number;
  #lastUplink: LastUplink | undefined;
  #netId: number | undefined;
  /** Next RJcount0 (reset by every JoinAccept) and RJcount1 (kept for the device's life). */
  #rjCount0 = 0;
  #rjCount1 = 0;
  #pendingRejoin: { rejoinType: RejoinType; rjCount: number } | undefined;
  #forcedRejoin: ForcedRejoin | undefined;
  #rejoinParameters: RejoinParameters | undefined;
  /** Data uplinks since the last type-0 rejoin (or activation), for RejoinParamSetupReq. */
  #uplinksSinceRejoin = 0;

  constructor(config: SimulatedDeviceConfig) {
    this.devEui = config.devEui.toLowerCase();
    this.lorawanVersion = config.lorawanVersion;
    this.region = config.region ?? EU868;
    this.#activation = config.activation;
    this.#random = config.random ?? createRandom(Number.parseInt(this.devEui.slice(-8), 16));
    this.#adr = config.adr ?? true;
    this.#deviceClass = config.deviceClass ?? 'A';
    this.#battery = config.battery ?? 200;
    this.#rejoinTimeOk = config.rejoinTimeOk ?? true;
    this.#adrAckLimit = this.region.adrAckLimit;
    this.#adrAckDelay = this.region.adrAckDelay;
    this.#dataRate = config.dataRate ?? 5;
    this.region.dataRate(this.#dataRate);
    this.#channels = [...(config.channels ?? this.region.defaultChannels)].map((channel) =>
      channel ? { ...channel } : null,
    );
    this.#rx1DrOffset = config.rx1DrOffset ?? 0;
    this.#rx2DataRate = config.rx2DataRate ?? this.region.rx2Default.dataRate;
    this.#rx2FrequencyHz = config.rx2FrequencyHz ?? this.region.rx2Default.frequencyHz;
    this.#rxDelaySeconds = config.rxDelaySeconds ?? 1;
    const activation = config.activation;
    if (activation.mode === 'otaa') {
      this.#devNonce = activation.devNonce ?? 0;
      if (this.lorawanVersion === '1.1' && activation.nwkKey === undefined) {
        throw new RangeError(`device ${this.devEui}: a LoRaWAN 1.1 OTAA device needs a nwkKey`);
      }
    } else {
      this.#devNonce = 0;
      const is11Keys = !('nwkSKey' in activation.keys);
      if (is11Keys !== (this.lorawanVersion === '1.1')) {
        throw new RangeError(
          `device ${this.devEui}: LoRaWAN ${this.lorawanVersion} ABP needs ${this.lorawanVersion === '1.1' ? '1.1' : '1.0'} session keys`,
        );
      }
      this.#session = {
        devAddr: activation.devAddr >>> 0,
        lorawan: is11Keys ? '1.1' : '1.0',
        keys: prepare(activation.keys),
        rawKeys: activation.keys,
        fCntUp: activation.fCntUp ?? 0,
        nFCntDown: undefined,
        aFCntDown: undefined,
      };
      // LoRaWAN 1.1 §5.1: an ABP device announces itself with ResetInd until ResetConf.
      this.#resetIndDue = is11Keys;
    }
  }

  get activated(): boolean {
    return this.#session !== undefined;
  }

  get devAddr(): number | undefined {
    return this.#session?.devAddr;
  }

  /** FCntUp of the next data uplink. */
  get fCntUp(): number {
    return this.#session?.fCntUp ?? 0;
  }

  /** DevNonce of the next JoinRequest. */
  get devNonce(): number {
    return this.#devNonce;
  }

  get dataRate(): number {
    return this.#dataRate;
  }

  /** NbTrans from the last LinkADRReq (transmissions per uplink). */
  get nbTrans(): number {
    return this.#nbTrans;
  }

  get txPowerIndex(): number {
    return this.#txPowerIndex;
  }

  get rxDelaySeconds(): number {
    return this.#rxDelaySeconds;
  }

  /** Whether the last confirmed uplink still waits for its ACK. */
  get awaitingAck(): boolean {
    return this.#confirmedUplinkFCnt !== undefined;
  }

  /** The session keys in use (tests compare them with the join server's). */
  sessionKeys(): SessionKeys10 | SessionKeys11 | undefined {
    return this.#session?.rawKeys;
  }

  channels(): readonly (Channel | null | undefined)[] {
    return this.#channels;
  }

  /**
   * The RX1 downlink frequencies DlChannelReq gave channels, by channel index (a copy); a
   * channel not in it uses the region's rule from its uplink frequency.
   */
  dlChannelFrequencies(): Map<number, number> {
    return new Map(this.#downlinkFrequencies);
  }

  /** Indices of the channels the device may transmit on. */
  enabledChannels(): number[] {
    return this.#enabledIndices();
  }

  get rxSettings(): DeviceRxSettings {
    return {
      rx1DrOffset: this.#rx1DrOffset,
      rx2DataRate: this.#rx2DataRate,
      rx2FrequencyHz: this.#rx2FrequencyHz,
      rxDelaySeconds: this.#rxDelaySeconds,
    };
  }

  get deviceClass(): DeviceClass {
    return this.#deviceClass;
  }

  /** MaxDutyCycle from the last DutyCycleReq: at most 1/2^n of the time on air (0: no limit). */
  get maxDutyCycle(): number {
    return this.#maxDutyCycle;
  }

  /** The class a DeviceModeInd asks for, until the network's DeviceModeConf. */
  get requestedDeviceClass(): DeviceClass | undefined {
    return this.#requestedClass;
  }

  /**
   * The window a class C device listens on between its transmissions (RX2 frequency and data
   * rate, LoRaWAN 1.0.4 §6); undefined for class A or before activation.
   */
  continuousWindow(): ReceiveWindow | undefined {
    if (this.#deviceClass !== 'C' || this.#session === undefined) return undefined;
    return {
      name: 'rxc',
      delayUs: 0,
      frequencyHz: this.#rx2FrequencyHz,
      dataRate: this.#rx2DataRate,
    };
  }

  get adrEnabled(): boolean {
    return this.#adr;
  }

  /** ADR_ACK_CNT: data uplinks (repetitions not counted) since the last downlink. */
  get adrAckCounter(): number {
    return this.#adrAckCounter;
  }

  /** ADR_ACK_LIMIT: the region's (EU868 64) until an ADRParamSetupReq. */
  get adrAckLimit(): number {
    return this.#adrAckLimit;
  }

  /** ADR_ACK_DELAY: the region's (EU868 32) until an ADRParamSetupReq. */
  get adrAckDelay(): number {
    return this.#adrAckDelay;
  }

  /** NbTrans: transmissions of each data uplink; `repeatUplink` builds the repetitions. */
  get transmissionsPerUplink(): number {
    return this.#nbTrans;
  }

  /** Repetitions of the last data uplink still due (0 once a downlink answered it). */
  get pendingRepetitions(): number {
    const last = this.#lastUplink;
    if (last === undefined || last.answered || last.session !== this.#session) return 0;
    return Math.max(0, this.#nbTrans - last.sent);
  }

  /** NetID from the last JoinAccept, used by rejoin types 0 and 2. */
  get netId(): number | undefined {
    return this.#netId;
  }

  /** RJcount0 of the next RejoinRequest of type 0 or 2. */
  get rjCount0(): number {
    return this.#rjCount0;
  }

  /** RJcount1 of the next RejoinRequest of type 1. */
  get rjCount1(): number {
    return this.#rjCount1;
  }

  /** The ForceRejoinReq still to honour with `rejoinRequest()`, if any. */
  get forcedRejoin(): Readonly<ForcedRejoin> | undefined {
    return this.#forcedRejoin;
  }

  /** What the last RejoinParamSetupReq asked for. */
  get rejoinParameters(): Readonly<RejoinParameters> | undefined {
    return this.#rejoinParameters;
  }

  /** 2^(MaxCountN+4) data uplinks went by since the last type-0 rejoin (RejoinParamSetupReq). */
  get periodicRejoinDue(): boolean {
    const parameters = this.#rejoinParameters;
    return parameters !== undefined && this.#uplinksSinceRejoin >= 2 ** (parameters.maxCountN + 4);
  }

  /** Turns ADR on or off (the ADR bit of the next uplinks); restarts ADR_ACK_CNT. */
  setAdr(enabled: boolean): void {
    this.#adr = enabled;
    this.#adrAckCounter = 0;
  }

  /** Switches class at once, as a 1.0 class C device configured out of band does. */
  setDeviceClass(deviceClass: DeviceClass): void {
    this.#deviceClass = deviceClass;
    this.#requestedClass = undefined;
  }

  /**
   * LoRaWAN 1.1 class switch: DeviceModeInd rides in every uplink until the network's
   * DeviceModeConf, which sets the class.
   */
  requestDeviceClass(deviceClass: DeviceClass): void {
    if (this.#session?.lorawan !== '1.1') {
      throw new RangeError(`device ${this.devEui}: DeviceModeInd needs a LoRaWAN 1.1 session`);
    }
    this.#requestedClass = deviceClass;
  }

  get receivedDownlinks(): readonly ReceivedDownlink[] {
    return this.#received;
  }

  /** Joins again from scratch on the next joinRequest (e.g. after a lost session). */
  forgetSession(): void {
    if (this.#activation.mode === 'otaa') this.#session = undefined;
  }

  // -------------------------------------------------------------------------------------------
  // Transmitting.

  /** The next JoinRequest (OTAA); each call uses a new DevNonce (a counter, LoRaWAN 1.0.4/1.1). */
  joinRequest(): DeviceTransmission {
    const activation = this.#activation;
    if (activation.mode !== 'otaa') throw new RangeError(`device ${this.devEui} is ABP`);
    if (this.#devNonce > 0xffff) {
      throw new RangeError(`device ${this.devEui} has used every DevNonce and cannot join again`);
    }
    const devNonce = this.#devNonce++;
    const request: JoinRequest = {
      mType: 'JoinRequest',
      joinEui: activation.joinEui,
      devEui: this.devEui,
      devNonce,
      mic: new Uint8Array(4),
    };
    request.mic = joinRequestMic(this.#rootNetworkKey(), encodeMicInput(request));
    this.#pendingJoin = { devNonce };
    const channel = this.#pickChannel(this.region.joinChannels);
    const frequencyHz = this.#channels[channel]!.frequencyHz;
    const rx1 = this.region.rx1DataRate(this.#dataRate, 0);
    return {
      devEui: this.devEui,
      kind: 'join',
      phyPayload: encodePhyPayload(request),
      frequencyHz,
      dataRate: this.#dataRate,
      channel,
      counter: devNonce,
      confirmed: false,
      receiveWindows: [
        {
          name: 'rx1',
          delayUs: this.region.joinAcceptDelay1Ms * 1000,
          frequencyHz: this.region.rx1FrequencyHz(frequencyHz),
          dataRate: rx1,
        },
        {
          name: 'rx2',
          delayUs: this.region.joinAcceptDelay2Ms * 1000,
          frequencyHz: this.region.rx2Default.frequencyHz,
          dataRate: this.region.rx2Default.dataRate,
        },
      ],
    };
  }

  /**
   * A LoRaWAN 1.1 RejoinRequest (§6.2.4): type 0 (reset the session and radio parameters) and
   * type 2 (rekey) carry NetID | DevEUI | RJcount0 and are signed with the SNwkSIntKey of the
   * current session; type 1 (restore a lost session, OTAA only) carries JoinEUI | DevEUI |
   * RJcount1 and is signed with the JSIntKey. OTAA only: the answer needs the NwkKey. Without a
   * type, the one a ForceRejoinReq asked for, at its data rate. The device listens for the
   * JoinAccept at JOIN_ACCEPT_DELAY1/2, RX1 and RX2 with its current settings, and keeps its
   * session until one arrives.
   */
  rejoinRequest(rejoinType?: RejoinType, options: { dataRate?: number } = {}): DeviceTransmission {
    const forced = this.#forcedRejoin;
    const type = rejoinType ?? forced?.rejoinType;
    if (type === undefined) {
      throw new RangeError(`device ${this.devEui}: no rejoin type given and no ForceRejoinReq`);
    }
    if (this.lorawanVersion !== '1.1') {
      throw new RangeError(`device ${this.devEui}: RejoinRequest is LoRaWAN 1.1 only`);
    }
    const activation = this.#activation;
    // Whatever the type, the JoinAccept that answers needs the NwkKey (JSIntKey, JSEncKey).
    if (activation.mode !== 'otaa') {
      throw new RangeError(`device ${this.devEui}: a RejoinRequest needs OTAA root keys`);
    }
    const honoursForced = forced !== undefined && forced.rejoinType === type;
    const dataRate = options.dataRate ?? (honoursForced ? forced.dataRate : this.#dataRate);
    this.region.dataRate(dataRate);
    let phyPayload: Uint8Array;
    let rjCount: number;
    if (type === 1) {
      rjCount = this.#counterForRejoin(this.#rjCount1, 'RJcount1');
      const { jsIntKey } = deriveJoinServerKeys(activation.nwkKey!, this.devEui);
      phyPayload = buildRejoinRequest(
        {
          mType: 'RejoinRequest',
          rejoinType: 1,
          joinEui: activation.joinEui,
          devEui: this.devEui,
          rjCount1: rjCount,
        },
        jsIntKey,
      );
      this.#rjCount1++;
    } else {
      const session = this.#session;
      if (session === undefined || session.lorawan !== '1.1') {
        throw new RangeError(
          `device ${this.devEui}: a type-${type} RejoinRequest needs a LoRaWAN 1.1 session (SNwkSIntKey)`,
        );
      }
      const netId = this.#netId;
      if (netId === undefined) {
        throw new RangeError(`device ${this.devEui}: no NetID known for a type-${type} rejoin`);
      }
      rjCount = this.#counterForRejoin(this.#rjCount0, 'RJcount0');
      phyPayload = buildRejoinRequest(
        { mType: 'RejoinRequest', rejoinType: type, netId, devEui: this.devEui, rjCount0: rjCount },
        (session.rawKeys as SessionKeys11).sNwkSIntKey,
      );
      this.#rjCount0++;
      if (type === 0) this.#uplinksSinceRejoin = 0;
    }
    this.#pendingRejoin = { rejoinType: type, rjCount };
    if (honoursForced) {
      forced.remaining--;
      if (forced.remaining <= 0) this.#forcedRejoin = undefined;
    }
    const channel = this.#pickChannel(this.#enabledChannelsFor(dataRate));
    const frequencyHz = this.#channels[channel]!.frequencyHz;
    return {
      devEui: this.devEui,
      kind: 'rejoin',
      phyPayload,
      frequencyHz,
      dataRate,
      channel,
      counter: rjCount,
      confirmed: false,
      receiveWindows: [
        {
          name: 'rx1',
          delayUs: this.region.joinAcceptDelay1Ms * 1000,
          frequencyHz:
            this.#downlinkFrequencies.get(channel) ?? this.region.rx1FrequencyHz(frequencyHz),
          dataRate: this.region.rx1DataRate(dataRate, this.#rx1DrOffset),
        },
        {
          name: 'rx2',
          delayUs: this.region.joinAcceptDelay2Ms * 1000,
          frequencyHz: this.#rx2FrequencyHz,
          dataRate: this.#rx2DataRate,
        },
      ],
      rejoinType: type,
    };
  }

  #counterForRejoin(value: number, name: string): number {
    if (value > 0xffff) {
      throw new RangeError(`device ${this.devEui} has used every ${name} value`);
    }
    return value;
  }

  /** The next data uplink; throws when the device has no session. */
  uplink(options: UplinkOptions = {}): DeviceTransmission {
    const session = this.#session;
    if (session === undefined) throw new RangeError(`device ${this.devEui} has not joined`);
    if (session.fCntUp > MAX_UINT32) {
      throw new RangeError(`device ${this.devEui} has used up FCntUp and must rejoin`);
    }
    const usable = this.#enabledChannelsFor(this.#dataRate);
    if (options.channel !== undefined && !usable.includes(options.channel)) {
      throw new RangeError(
        `device ${this.devEui}: channel ${options.channel} is not enabled for DR${this.#dataRate} (enabled: ${usable.join(', ')})`,
      );
    }
    const adrAckReq = this.#adrBeforeUplink();
    const confirmed = options.confirmed ?? false;
    const payload = options.payload ?? new Uint8Array(0);
    let fPort = options.fPort ?? (payload.length > 0 ? 1 : undefined);
    const commands = this.#pendingUplinkCommands(options.macCommands ?? []);
    let fOpts: Uint8Array = new Uint8Array(0);
    let frmPayload: Uint8Array = payload;
    let unsent: UplinkMacCommand[] = [];
    if (commands.length > 0) {
      const encoded = encodeMacCommands(commands);
      if (encoded.length <= MAX_FOPTS_LENGTH) {
        fOpts = encoded;
      } else if (payload.length === 0) {
        fPort = 0;
        frmPayload = encoded;
      } else {
        // FOpts holds 15 bytes: send what fits now, the rest with the next uplink.
        const fitting: UplinkMacCommand[] = [];
        for (const command of commands) {
          if (encodeMacCommands([...fitting, command]).length <= MAX_FOPTS_LENGTH) {
            fitting.push(command);
          } else {
            unsent.push(command);
          }
        }
        fOpts = encodeMacCommands(fitting);
        // Indications are added again to every uplink until confirmed.
        unsent = unsent.filter(
          (c) => c.cid !== 'RekeyInd' && c.cid !== 'ResetInd' && c.cid !== 'DeviceModeInd',
        );
      }
    }
    const maxMacPayload = this.region.maxPayloadSize(this.#dataRate).macPayload;
    const macPayloadLength = 7 + fOpts.length + (fPort === undefined ? 0 : 1) + frmPayload.length;
    if (macPayloadLength > maxMacPayload) {
      throw new RangeError(
        `device ${this.devEui}: MACPayload of ${macPayloadLength} bytes exceeds ${maxMacPayload} at DR${this.#dataRate}`,
      );
    }
    // The ADR backoff may have changed the data rate (and the channels) since the check above.
    const channel =
      options.channel !== undefined &&
      this.#enabledChannelsFor(this.#dataRate).includes(options.channel)
        ? options.channel
        : this.#pickChannel(this.#enabledChannelsFor(this.#dataRate));
    const frequencyHz = this.#channels[channel]!.frequencyHz;
    const fCnt = session.fCntUp;
    const ack = this.#ackDue !== undefined;
    const context: FrameMicContext = {
      confFCnt: ack && session.lorawan === '1.1' ? this.#ackDue! & 0xffff : 0,
      txDr: this.#dataRate,
      txCh: channel,
    };
    const frame: DataFrameToBuild = {
      mType: confirmed ? 'ConfirmedDataUp' : 'UnconfirmedDataUp',
      devAddr: session.devAddr,
      fCtrl: { adr: this.#adr, adrAckReq, ack, classB: false, fPending: false },
      fCnt,
      fOpts,
      ...(fPort === undefined ? {} : { fPort }),
      frmPayload,
    };
    const phyPayload = buildDataFrame(frame, session.keys, context);
    session.fCntUp++;
    this.#ackDue = undefined;
    this.#macAnswers = unsent;
    if (confirmed) this.#confirmedUplinkFCnt = fCnt;
    if (this.#adr) this.#adrAckCounter++;
    this.#uplinksSinceRejoin++;
    this.#lastUplink = {
      session,
      frame,
      confFCnt: context.confFCnt ?? 0,
      channel,
      sent: 1,
      answered: false,
    };
    return {
      devEui: this.devEui,
      kind: 'data',
      phyPayload,
      frequencyHz,
      dataRate: this.#dataRate,
      channel,
      counter: fCnt,
      confirmed,
      receiveWindows: this.#dataReceiveWindows(channel, frequencyHz),
    };
  }

  /**
   * The next NbTrans repetition of the last data uplink (LoRaWAN 1.0.4 §4.3.1.1, 1.1 §4.3.1.1):
   * the same frame and FCnt on another channel where there is one, or undefined when none is
   * due: NbTrans reached, or a downlink answered the frame (any downlink for an unconfirmed
   * uplink, its ACK for a confirmed one). In 1.1 the MIC is computed again: it covers the
   * channel and the data rate.
   */
  repeatUplink(): DeviceTransmission | undefined {
    const last = this.#lastUplink;
    if (last === undefined || this.pendingRepetitions === 0) return undefined;
    const candidates = this.#enabledChannelsFor(this.#dataRate);
    const others = candidates.filter((index) => index !== last.channel);
    const channel = this.#pickChannel(others.length > 0 ? others : candidates);
    const frequencyHz = this.#channels[channel]!.frequencyHz;
    const phyPayload = buildDataFrame(last.frame, last.session.keys, {
      confFCnt: last.confFCnt,
      txDr: this.#dataRate,
      txCh: channel,
    });
    last.sent++;
    last.channel = channel;
    return {
      devEui: this.devEui,
      kind: 'data',
      phyPayload,
      frequencyHz,
      dataRate: this.#dataRate,
      channel,
      counter: last.frame.fCnt,
      confirmed: last.frame.mType === 'ConfirmedDataUp',
      receiveWindows: this.#dataReceiveWindows(channel, frequencyHz),
      repetition: last.sent - 1,
    };
  }

  /**
   * ADR on the device (LoRaWAN 1.0.4 and 1.1 §4.3.1.1), before each new data uplink: ADRACKReq
   * once ADR_ACK_CNT reaches ADR_ACK_LIMIT, except at the lowest data rate and default power
   * where the device could do nothing more; then, every ADR_ACK_DELAY uplinks still without a
   * downlink, one backoff step. Returns the ADRACKReq bit.
   */
  #adrBeforeUplink(): boolean {
    if (!this.#adr) return false;
    const count = this.#adrAckCounter;
    const limit = this.#adrAckLimit;
    const delay = this.#adrAckDelay;
    if (count >= limit + delay && (count - limit) % delay === 0) this.#adrBackoffStep();
    return (
      count >= limit && !(this.#dataRate <= this.#lowestDataRate() && this.#txPowerIndex === 0)
    );
  }

  /**
   * One step to regain the network: the default (maximum) TX power first, then the next lower
   * data rate, one per step, and at the lowest data rate the default channels enabled again.
   */
  #adrBackoffStep(): void {
    if (this.#txPowerIndex !== 0) {
      this.#txPowerIndex = 0;
      return;
    }
    if (this.#dataRate > this.#lowestDataRate()) {
      this.#dataRate--;
      return;
    }
    this.region.defaultChannels.forEach((channel, index) => {
      this.#channels[index] = { ...channel, enabled: true };
    });
  }

  /** The lowest data rate the enabled channels allow. */
  #lowestDataRate(): number {
    const enabled = this.#enabledIndices().map((index) => this.#channels[index]!.minDr);
    return enabled.length === 0 ? 0 : Math.min(...enabled);
  }

  #pendingUplinkCommands(requested: readonly UplinkMacCommand[]): UplinkMacCommand[] {
    const commands: UplinkMacCommand[] = [];
    if (this.#rekeyIndDue) commands.push({ cid: 'RekeyInd', minorVersion: 1 });
    if (this.#resetIndDue) commands.push({ cid: 'ResetInd', minorVersion: 1 });
    if (this.#requestedClass !== undefined) {
      commands.push({ cid: 'DeviceModeInd', class: this.#requestedClass });
    }
    commands.push(...this.#macAnswers, ...requested);
    return commands;
  }

  #dataReceiveWindows(channel: number, frequencyHz: number): ReceiveWindow[] {
    const rx1DelayUs = this.#rxDelaySeconds * 1_000_000;
    return [
      {
        name: 'rx1',
        delayUs: rx1DelayUs,
        frequencyHz:
          this.#downlinkFrequencies.get(channel) ?? this.region.rx1FrequencyHz(frequencyHz),
        dataRate: this.region.rx1DataRate(this.#dataRate, this.#rx1DrOffset),
      },
      {
        name: 'rx2',
        delayUs: rx1DelayUs + 1_000_000,
        frequencyHz: this.#rx2FrequencyHz,
        dataRate: this.#rx2DataRate,
      },
    ];
  }

  #enabledChannelsFor(dataRate: number): number[] {
    const usable: number[] = [];
    this.#channels.forEach((channel, index) => {
      if (channel?.enabled && channel.minDr <= dataRate && dataRate <= channel.maxDr) {
        usable.push(index);
      }
    });
    if (usable.length === 0) {
      throw new RangeError(`device ${this.devEui} has no enabled channel for DR${dataRate}`);
    }
    return usable;
  }

  #pickChannel(candidates: readonly number[]): number {
    return this.#random.pick(candidates);
  }

  #rootNetworkKey(): Uint8Array {
    const activation = this.#activation;
    if (activation.mode !== 'otaa') throw new RangeError(`device ${this.devEui} is ABP`);
    // LoRaWAN 1.1 §6.2.2: the JoinRequest MIC and the JoinAccept use the NwkKey.
    return this.lorawanVersion === '1.1' ? activation.nwkKey! : activation.appKey;
  }

  // -------------------------------------------------------------------------------------------
  // Receiving.

  /**
   * Takes a PHYPayload heard in one of the windows of the last transmission, or (`window:
   * 'rxc'`) between transmissions by a class C device.
   */
  receive(phyPayload: Uint8Array, reception: ReceptionInfo = {}): DownlinkOutcome {
    if (reception.window === 'rxc' && this.#deviceClass !== 'C') {
      return { status: 'ignored', reason: 'a class A device does not listen between windows' };
    }
    let decoded: ReturnType<typeof decodePhyPayloadWithMicInput>;
    try {
      decoded = decodePhyPayloadWithMicInput(phyPayload);
    } catch (error) {
      if (!isLorawanError(error)) throw error;
      return { status: 'rejected', reason: 'malformed', detail: error.message };
    }
    const { payload, micInput } = decoded;
    if (payload.mType === 'JoinAccept') return this.#receiveJoinAccept(phyPayload);
    if (payload.mType !== 'UnconfirmedDataDown' && payload.mType !== 'ConfirmedDataDown') {
      return { status: 'ignored', reason: `${payload.mType} is not a downlink` };
    }
    const session = this.#session;
    if (session === undefined) return { status: 'ignored', reason: 'no session' };
    if (payload.devAddr !== session.devAddr) {
      return { status: 'ignored', reason: 'another DevAddr' };
    }
    // LoRaWAN 1.1 §4.3.1.5: FPort > 0 counts with AFCntDown, FPort 0 or none with NFCntDown.
    const usesAFCnt = session.lorawan === '1.1' && payload.fPort !== undefined && payload.fPort > 0;
    const last = usesAFCnt ? session.aFCntDown : session.nFCntDown;
    const fCnt = reconstructFCnt(payload.fCnt, last);
    if (fCnt === undefined || fCnt === last) {
      return {
        status: 'rejected',
        reason: 'replay',
        detail: `FCntDown ${payload.fCnt} is not past ${last}`,
      };
    }
    // 1.1 §4.4: the MIC of a downlink with ACK set covers the acknowledged uplink's FCntUp.
    const context: FrameMicContext = {
      confFCnt: session.lorawan === '1.1' ? (this.#confirmedUplinkFCnt ?? 0) : 0,
    };
    if (!verifyDataMic(payload, micInput, session.keys, fCnt, context)) {
      return { status: 'rejected', reason: 'mic', detail: `bad MIC for FCntDown ${fCnt}` };
    }
    const decrypted = decryptDataFrame(payload, session.keys, fCnt);
    if (usesAFCnt) session.aFCntDown = fCnt;
    else session.nFCntDown = fCnt;
    const frmPayload = decrypted.frmPayload ?? new Uint8Array(0);
    const downlink: ReceivedDownlink = {
      confirmed: payload.mType === 'ConfirmedDataDown',
      fCnt,
      fPort: payload.fPort,
      payload: frmPayload,
      ack: payload.fCtrl.ack,
      fPending: payload.fCtrl.fPending,
      macCommands: [],
    };
    if (reception.window !== undefined) downlink.window = reception.window;
    const macBytes = payload.fPort === 0 ? frmPayload : decrypted.fOpts;
    if (macBytes.length > 0) {
      try {
        downlink.macCommands = decodeMacCommands(macBytes, 'downlink') as DownlinkMacCommand[];
      } catch (error) {
        if (!isLorawanError(error)) throw error;
        downlink.macError = error.message;
      }
    }
    if (downlink.ack) this.#confirmedUplinkFCnt = undefined;
    if (downlink.confirmed) this.#ackDue = fCnt;
    // Any downlink restarts ADR_ACK_CNT, and ends the NbTrans repetitions of an unconfirmed
    // uplink (a confirmed one is repeated until its ACK).
    this.#adrAckCounter = 0;
    const lastUplink = this.#lastUplink;
    if (
      lastUplink !== undefined &&
      (lastUplink.frame.mType !== 'ConfirmedDataUp' || downlink.ack)
    ) {
      lastUplink.answered = true;
    }
    this.#answerMacCommands(downlink.macCommands, reception.snr ?? 10);
    this.#received.push(downlink);
    return { status: 'accepted', downlink };
  }

  #receiveJoinAccept(phyPayload: Uint8Array): DownlinkOutcome {
    const activation = this.#activation;
    if (activation.mode !== 'otaa') return { status: 'ignored', reason: 'ABP device' };
    const pendingRejoin = this.#pendingRejoin;
    if (pendingRejoin !== undefined) {
      const outcome = this.#receiveRejoinAccept(phyPayload, activation, pendingRejoin);
      // Not the answer to the rejoin: maybe the answer to a JoinRequest sent since.
      if (outcome.status !== 'rejected' || outcome.reason !== 'mic' || !this.#pendingJoin) {
        return outcome;
      }
    }
    const pending = this.#pendingJoin;
    if (pending === undefined) {
      return { status: 'ignored', reason: 'no JoinRequest pending' };
    }
    let opened: ReturnType<typeof openJoinAccept>;
    try {
      opened = openJoinAccept(phyPayload, this.#rootNetworkKey());
    } catch (error) {
      if (!isLorawanError(error)) throw error;
      return { status: 'rejected', reason: 'malformed', detail: error.message };
    }
    const { fields } = opened;
    const is11 = this.lorawanVersion === '1.1';
    const optNeg = is11 && fields.dlSettings.optNeg;
    const micKeys: JoinAcceptMicKeys = optNeg
      ? optNegJoinAcceptKeys(
          activation.nwkKey!,
          this.devEui,
          activation.joinEui,
          'join',
          pending.devNonce,
        ).micKeys
      : { optNeg: false, key: this.#rootNetworkKey() };
    // The MIC decides whether this accept is ours: another device's accept fails it too.
    if (!verifyJoinAcceptMic(opened, micKeys)) {
      return { status: 'rejected', reason: 'mic', detail: 'JoinAccept MIC does not verify' };
    }
    const rawKeys: SessionKeys10 | SessionKeys11 = optNeg
      ? deriveSessionKeys11(
          activation.nwkKey!,
          activation.appKey,
          fields.joinNonce,
          activation.joinEui,
          pending.devNonce,
        )
      : // A 1.1 device answered by a 1.0 network derives 1.0 keys from its NwkKey (1.1 §6.2.3).
        deriveSessionKeys10(
          this.#rootNetworkKey(),
          fields.joinNonce,
          fields.netId,
          pending.devNonce,
        );
    return this.#startSession(fields, rawKeys, optNeg, true);
  }

  /**
   * The JoinAccept answering a RejoinRequest (LoRaWAN 1.1 §6.2.3): encrypted with JSEncKey,
   * signed with JSIntKey over JoinReqType | JoinEUI | RJcount, keys derived with the RJcount as
   * DevNonce. Types 0 and 1 take the radio parameters of the accept as a join does; type 2
   * (rekey) keeps the current ones (§6.2.4).
   */
  #receiveRejoinAccept(
    phyPayload: Uint8Array,
    activation: Extract<DeviceActivation, { mode: 'otaa' }>,
    pending: { rejoinType: RejoinType; rjCount: number },
  ): DownlinkOutcome {
    const { micKeys, encryptionKey } = optNegJoinAcceptKeys(
      activation.nwkKey!,
      this.devEui,
      activation.joinEui,
      joinRequestTypeOfRejoin(pending.rejoinType),
      pending.rjCount,
    );
    let opened: ReturnType<typeof openJoinAccept>;
    try {
      opened = openJoinAccept(phyPayload, encryptionKey);
    } catch (error) {
      if (!isLorawanError(error)) throw error;
      return { status: 'rejected', reason: 'malformed', detail: error.message };
    }
    if (!verifyJoinAcceptMic(opened, micKeys)) {
      return {
        status: 'rejected',
        reason: 'mic',
        detail: `JoinAccept MIC does not verify as the answer to RejoinRequest type ${pending.rejoinType}`,
      };
    }
    const { fields } = opened;
    if (!fields.dlSettings.optNeg) {
      return {
        status: 'rejected',
        reason: 'malformed',
        detail: 'a JoinAccept answering a RejoinRequest must set OptNeg',
      };
    }
    const rawKeys = deriveSessionKeys11(
      activation.nwkKey!,
      activation.appKey,
      fields.joinNonce,
      activation.joinEui,
      pending.rjCount,
    );
    const outcome = this.#startSession(fields, rawKeys, true, pending.rejoinType !== 2);
    return outcome.status === 'joined' ? { ...outcome, rejoinType: pending.rejoinType } : outcome;
  }

  /**
   * Switches to the session a JoinAccept opened: new DevAddr and keys, counters from 0, RekeyInd
   * due after OptNeg, RJcount0 reset (1.1 §6.2.4); with `applyRadioParameters`, DLSettings,
   * RxDelay and the CFList replace the receive settings and channels.
   */
  #startSession(
    fields: JoinAcceptFields,
    rawKeys: SessionKeys10 | SessionKeys11,
    optNeg: boolean,
    applyRadioParameters: boolean,
  ): DownlinkOutcome {
    // LoRaWAN 1.1 §6.2.3: JoinNonce strictly increases; an older accept is a replay.
    if (optNeg && this.#lastJoinNonce !== undefined && fields.joinNonce <= this.#lastJoinNonce) {
      return {
        status: 'rejected',
        reason: 'replay',
        detail: `JoinNonce ${fields.joinNonce} is not past ${this.#lastJoinNonce}`,
      };
    }
    if (applyRadioParameters) {
      let channels: (Channel | null | undefined)[];
      try {
        channels =
          fields.cfList === undefined
            ? this.region.defaultChannels.map((channel) => ({ ...channel }))
            : this.region.decodeCfList(fields.cfList);
      } catch (error) {
        if (!isLorawanError(error)) throw error;
        return { status: 'rejected', reason: 'malformed', detail: `CFList: ${message(error)}` };
      }
      this.#channels = channels;
      this.#downlinkFrequencies.clear();
      this.#rx1DrOffset = fields.dlSettings.rx1DrOffset;
      this.#rx2DataRate = fields.dlSettings.rx2Dr;
      this.#rx2FrequencyHz = this.region.rx2Default.frequencyHz;
      this.#rxDelaySeconds = fields.rxDelay === 0 ? 1 : fields.rxDelay;
      this.#nbTrans = 1;
      this.#maxDutyCycle = 0;
    }
    this.#session = {
      devAddr: fields.devAddr,
      lorawan: optNeg ? '1.1' : '1.0',
      keys: prepare(rawKeys),
      rawKeys,
      fCntUp: 0,
      nFCntDown: undefined,
      aFCntDown: undefined,
    };
    this.#pendingJoin = undefined;
    this.#pendingRejoin = undefined;
    this.#forcedRejoin = undefined;
    this.#lastJoinNonce = fields.joinNonce;
    this.#netId = fields.netId;
    this.#rjCount0 = 0;
    this.#uplinksSinceRejoin = 0;
    this.#ackDue = undefined;
    this.#confirmedUplinkFCnt = undefined;
    this.#macAnswers = [];
    this.#lastUplink = undefined;
    this.#adrAckCounter = 0;
    this.#rekeyIndDue = optNeg;
    this.#resetIndDue = false;
    return { status: 'joined', devAddr: fields.devAddr };
  }

  // -------------------------------------------------------------------------------------------
  // MAC commands the device answers (LoRaWAN 1.0.4 §5, 1.1 §5), answers sent with the next uplink.

  #answerMacCommands(commands: readonly MacCommand[], snr: number): void {
    let i = 0;
    while (i < commands.length) {
      const command = commands[i]!;
      if (command.cid === 'LinkADRReq') {
        // The contiguous LinkADRReq of one downlink form one request (1.0.4 §5.3).
        const block: LinkADRReq[] = [];
        while (i < commands.length && commands[i]!.cid === 'LinkADRReq') {
          block.push(commands[i] as LinkADRReq);
          i++;
        }
        this.#answerLinkAdr(block);
        continue;
      }
      this.#answerOne(command, snr);
      i++;
    }
  }

  #answerLinkAdr(block: readonly LinkADRReq[]): void {
    const last = block[block.length - 1]!;
    const mask = this.region.applyLinkAdrChannelMask({
      channels: this.#channels,
      blocks: block.map(({ chMask, chMaskCntl }) => ({ chMask, chMaskCntl })),
    });
    // 0xF keeps the current value (LoRaWAN 1.0.4 §5.3, 1.1 §5.3).
    const dataRate = last.dataRate === 0xf ? this.#dataRate : last.dataRate;
    const txPowerIndex = last.txPower === 0xf ? this.#txPowerIndex : last.txPower;
    const enabled = mask.ok ? mask.enabledChannels : this.#enabledIndices();
    const dataRateAck =
      this.region.dataRates[dataRate] !== undefined &&
      enabled.some((index) => {
        const channel = this.#channels[index];
        return channel && channel.minDr <= dataRate && dataRate <= channel.maxDr;
      });
    const powerAck = this.region.txPowerDbm(txPowerIndex) !== undefined;
    const answer: UplinkMacCommand = {
      cid: 'LinkADRAns',
      powerAck,
      dataRateAck,
      channelMaskAck: mask.ok,
    };
    if (mask.ok && dataRateAck && powerAck) {
      this.#channels = this.#channels.map((channel, index) =>
        channel ? { ...channel, enabled: mask.enabledChannels.includes(index) } : channel,
      );
      this.#dataRate = dataRate;
      this.#txPowerIndex = txPowerIndex;
      this.#nbTrans = last.nbTrans === 0 ? 1 : last.nbTrans;
    }
    for (let n = 0; n < block.length; n++) this.#macAnswers.push({ ...answer });
  }

  #enabledIndices(): number[] {
    const out: number[] = [];
    this.#channels.forEach((channel, index) => {
      if (channel?.enabled) out.push(index);
    });
    return out;
  }

  #answerOne(command: MacCommand, snr: number): void {
    const answers = this.#macAnswers;
    switch (command.cid) {
      case 'DutyCycleReq':
        // Kept, not enforced: the simulator does not model time on air (see README).
        this.#maxDutyCycle = command.maxDutyCycle;
        answers.push({ cid: 'DutyCycleAns' });
        return;
      case 'RXParamSetupReq': {
        const rx1DrOffsetAck = command.rx1DrOffset <= this.region.maxRx1DrOffset;
        const rx2DataRateAck = this.region.dataRates[command.rx2DataRate] !== undefined;
        const channelAck = this.#inBand(command.frequencyHz);
        if (rx1DrOffsetAck && rx2DataRateAck && channelAck) {
          this.#rx1DrOffset = command.rx1DrOffset;
          this.#rx2DataRate = command.rx2DataRate;
          this.#rx2FrequencyHz = command.frequencyHz;
        }
        answers.push({ cid: 'RXParamSetupAns', rx1DrOffsetAck, rx2DataRateAck, channelAck });
        return;
      }
      case 'DevStatusReq':
        answers.push({
          cid: 'DevStatusAns',
          battery: this.#battery,
          margin: Math.max(-32, Math.min(31, Math.round(snr))),
        });
        return;
      case 'NewChannelReq': {
        const fixed = command.chIndex < this.region.defaultChannels.length;
        const frequencyOk = command.frequencyHz === 0 || this.#inBand(command.frequencyHz);
        const dataRateRangeOk =
          command.minDr <= command.maxDr && this.region.dataRates[command.maxDr] !== undefined;
        const ok = !fixed && command.chIndex < this.region.maxChannels;
        if (ok && frequencyOk && dataRateRangeOk) {
          this.#channels[command.chIndex] =
            command.frequencyHz === 0
              ? null
              : {
                  frequencyHz: command.frequencyHz,
                  minDr: command.minDr,
                  maxDr: command.maxDr,
                  enabled: true,
                };
          this.#downlinkFrequencies.delete(command.chIndex);
        }
        answers.push({
          cid: 'NewChannelAns',
          channelFrequencyOk: ok && frequencyOk,
          dataRateRangeOk: ok && dataRateRangeOk,
        });
        return;
      }
      case 'DlChannelReq': {
        const uplinkFrequencyExists = Boolean(this.#channels[command.chIndex]);
        const channelFrequencyOk = this.#inBand(command.frequencyHz);
        if (uplinkFrequencyExists && channelFrequencyOk) {
          this.#downlinkFrequencies.set(command.chIndex, command.frequencyHz);
        }
        answers.push({ cid: 'DlChannelAns', uplinkFrequencyExists, channelFrequencyOk });
        return;
      }
      case 'RXTimingSetupReq':
        this.#rxDelaySeconds = command.delaySeconds === 0 ? 1 : command.delaySeconds;
        answers.push({ cid: 'RXTimingSetupAns' });
        return;
      case 'ADRParamSetupReq':
        // LoRaWAN 1.1 §5.11: ADR_ACK_LIMIT = 2^Limit_exp, ADR_ACK_DELAY = 2^Delay_exp.
        this.#adrAckLimit = 2 ** command.limitExp;
        this.#adrAckDelay = 2 ** command.delayExp;
        answers.push({ cid: 'ADRParamSetupAns' });
        return;
      case 'RekeyConf':
        this.#rekeyIndDue = false;
        return;
      case 'ResetConf':
        this.#resetIndDue = false;
        return;
      case 'RejoinParamSetupReq':
        // LoRaWAN 1.1 §5.14: periodic type-0 rejoins; TimeOK says whether MaxTimeN is honoured.
        if (this.#session?.lorawan !== '1.1') return;
        this.#rejoinParameters = { maxTimeN: command.maxTimeN, maxCountN: command.maxCountN };
        answers.push({ cid: 'RejoinParamSetupAns', timeOk: this.#rejoinTimeOk });
        return;
      case 'ForceRejoinReq':
        // LoRaWAN 1.1 §5.13: no MAC answer, the RejoinRequest is the answer. RejoinType 0 and 1
        // both ask for a type-0 rejoin, 2 for type 2; 3-7 are RFU and the command is ignored.
        if (this.#session?.lorawan !== '1.1' || command.rejoinType > 2) return;
        this.#forcedRejoin = {
          rejoinType: command.rejoinType === 2 ? 2 : 0,
          dataRate: command.dataRate,
          period: command.period,
          maxRetries: command.maxRetries,
          remaining: 1 + command.maxRetries,
        };
        return;
      case 'DeviceModeConf':
        // LoRaWAN 1.1 class C, DeviceModeConf: the class the device operates in from now on.
        if (this.#requestedClass === undefined) return;
        this.#deviceClass = command.class;
        this.#requestedClass = undefined;
        return;
      default:
        // LinkCheckAns, DeviceTimeAns: recorded with the downlink. TxParamSetupReq is not
        // answered in EU868 (RP002 §2.4.x); class B commands are not simulated.
        return;
    }
  }

  #inBand(frequencyHz: number): boolean {
    return (
      Number.isInteger(frequencyHz) &&
      frequencyHz >= this.region.frequencyRangeHz.min &&
      frequencyHz <= this.region.frequencyRangeHz.max
    );
  }
}
