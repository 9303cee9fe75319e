import {
  AesKey,
  buildDataFrame,
  type Channel,
  type ChannelPlan,
  type DataSessionKeys,
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
  type JoinAcceptMicKeys,
  type JoinRequest,
  joinRequestMic,
  type LinkADRReq,
  type MacCommand,
  openJoinAccept,
  type Region,
  reconstructFCnt,
  type SessionKeys10,
  type SessionKeys11,
  type UplinkMacCommand,
  verifyDataMic,
  verifyJoinAcceptMic,
} from '../lorawan/index.js';
import { createRandom, type Random } from './random.js';

/**
 * A class A end device as the network server sees it over the air: LoRaWAN 1.0.2, 1.0.3,
 * 1.0.4 or 1.1, activated by OTAA or ABP. Pure state machine: it builds the frames it would
 * transmit and takes the frames it receives; radio timing is the gateway simulator's business
 * (each transmission lists the receive windows it opens).
 */

export type DeviceLorawanVersion = '1.0.2' | '1.0.3' | '1.0.4' | '1.1';

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
  /** ADR bit in uplinks (default true). */
  adr?: boolean;
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

/** A receive window a transmission opens. */
export interface ReceiveWindow {
  name: 'rx1' | 'rx2';
  /** From the end of the uplink, in µs (what the gateway's tmst arithmetic uses). */
  delayUs: number;
  frequencyHz: number;
  dataRate: number;
}

/** A frame on the air, with what the device will listen for afterwards. */
export interface DeviceTransmission {
  devEui: string;
  kind: 'join' | 'data';
  phyPayload: Uint8Array;
  frequencyHz: number;
  dataRate: number;
  /** Channel index in the device's plan. */
  channel: number;
  /** Data uplinks: the 32-bit FCntUp. Joins: the DevNonce. */
  counter: number;
  confirmed: boolean;
  receiveWindows: readonly ReceiveWindow[];
}

export interface UplinkOptions {
  fPort?: number;
  payload?: Uint8Array;
  confirmed?: boolean;
  /** Device-initiated commands to piggy-back, e.g. LinkCheckReq or DeviceTimeReq. */
  macCommands?: readonly UplinkMacCommand[];
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
  | { status: 'joined'; devAddr: number }
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
  readonly #adr: boolean;
  readonly #battery: number;
  readonly #received: ReceivedDownlink[] = [];

  #session: Session | undefined;
  #dataRate: number;
  #txPowerIndex = 0;
  #nbTrans = 1;
  #channels: (Channel | null | undefined)[];
  /** DlChannelReq: RX1 frequency per channel, when it differs from the uplink's. */
  #downlinkFrequencies = new Map<number, number>();
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

  constructor(config: SimulatedDeviceConfig) {
    this.devEui = config.devEui.toLowerCase();
    this.lorawanVersion = config.lorawanVersion;
    this.region = config.region ?? EU868;
    this.#activation = config.activation;
    this.#random = config.random ?? createRandom(Number.parseInt(this.devEui.slice(-8), 16));
    this.#adr = config.adr ?? true;
    this.#battery = config.battery ?? 200;
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

  /** The next data uplink; throws when the device has no session. */
  uplink(options: UplinkOptions = {}): DeviceTransmission {
    const session = this.#session;
    if (session === undefined) throw new RangeError(`device ${this.devEui} has not joined`);
    if (session.fCntUp > MAX_UINT32) {
      throw new RangeError(`device ${this.devEui} has used up FCntUp and must rejoin`);
    }
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
        unsent = unsent.filter((c) => c.cid !== 'RekeyInd' && c.cid !== 'ResetInd');
      }
    }
    const maxMacPayload = this.region.maxPayloadSize(this.#dataRate).macPayload;
    const macPayloadLength = 7 + fOpts.length + (fPort === undefined ? 0 : 1) + frmPayload.length;
    if (macPayloadLength > maxMacPayload) {
      throw new RangeError(
        `device ${this.devEui}: MACPayload of ${macPayloadLength} bytes exceeds ${maxMacPayload} at DR${this.#dataRate}`,
      );
    }
    const channel = this.#pickChannel(this.#enabledChannelsFor(this.#dataRate));
    const frequencyHz = this.#channels[channel]!.frequencyHz;
    const fCnt = session.fCntUp;
    const ack = this.#ackDue !== undefined;
    const context: FrameMicContext = {
      confFCnt: ack && session.lorawan === '1.1' ? this.#ackDue! & 0xffff : 0,
      txDr: this.#dataRate,
      txCh: channel,
    };
    const phyPayload = buildDataFrame(
      {
        mType: confirmed ? 'ConfirmedDataUp' : 'UnconfirmedDataUp',
        devAddr: session.devAddr,
        fCtrl: { adr: this.#adr, adrAckReq: false, ack, classB: false, fPending: false },
        fCnt,
        fOpts,
        ...(fPort === undefined ? {} : { fPort }),
        frmPayload,
      },
      session.keys,
      context,
    );
    session.fCntUp++;
    this.#ackDue = undefined;
    this.#macAnswers = unsent;
    if (confirmed) this.#confirmedUplinkFCnt = fCnt;
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

  #pendingUplinkCommands(requested: readonly UplinkMacCommand[]): UplinkMacCommand[] {
    const commands: UplinkMacCommand[] = [];
    if (this.#rekeyIndDue) commands.push({ cid: 'RekeyInd', minorVersion: 1 });
    if (this.#resetIndDue) commands.push({ cid: 'ResetInd', minorVersion: 1 });
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

  /** Takes a PHYPayload heard in one of the windows of the last transmission. */
  receive(phyPayload: Uint8Array, reception: ReceptionInfo = {}): DownlinkOutcome {
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
    this.#answerMacCommands(downlink.macCommands, reception.snr ?? 10);
    this.#received.push(downlink);
    return { status: 'accepted', downlink };
  }

  #receiveJoinAccept(phyPayload: Uint8Array): DownlinkOutcome {
    const activation = this.#activation;
    const pending = this.#pendingJoin;
    if (activation.mode !== 'otaa' || pending === undefined) {
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
      ? {
          optNeg: true,
          jsIntKey: deriveJoinServerKeys(activation.nwkKey!, this.devEui).jsIntKey,
          joinRequestType: 'join',
          joinEui: activation.joinEui,
          devNonce: pending.devNonce,
        }
      : { optNeg: false, key: this.#rootNetworkKey() };
    // The MIC decides whether this accept is ours: another device's accept fails it too.
    if (!verifyJoinAcceptMic(opened, micKeys)) {
      return { status: 'rejected', reason: 'mic', detail: 'JoinAccept MIC does not verify' };
    }
    // LoRaWAN 1.1 §6.2.3: JoinNonce strictly increases; an older accept is a replay.
    if (optNeg && this.#lastJoinNonce !== undefined && fields.joinNonce <= this.#lastJoinNonce) {
      return {
        status: 'rejected',
        reason: 'replay',
        detail: `JoinNonce ${fields.joinNonce} is not past ${this.#lastJoinNonce}`,
      };
    }
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
    this.#lastJoinNonce = fields.joinNonce;
    this.#channels = channels;
    this.#downlinkFrequencies.clear();
    this.#rx1DrOffset = fields.dlSettings.rx1DrOffset;
    this.#rx2DataRate = fields.dlSettings.rx2Dr;
    this.#rx2FrequencyHz = this.region.rx2Default.frequencyHz;
    this.#rxDelaySeconds = fields.rxDelay === 0 ? 1 : fields.rxDelay;
    this.#ackDue = undefined;
    this.#confirmedUplinkFCnt = undefined;
    this.#macAnswers = [];
    this.#nbTrans = 1;
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
        answers.push({ cid: 'ADRParamSetupAns' });
        return;
      case 'RekeyConf':
        this.#rekeyIndDue = false;
        return;
      case 'ResetConf':
        this.#resetIndDue = false;
        return;
      default:
        // LinkCheckAns, DeviceTimeAns: recorded with the downlink. TxParamSetupReq is not
        // answered in EU868 (RP002 §2.4.x); class B/C and rejoin commands are not simulated.
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
