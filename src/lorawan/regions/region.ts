import { fskTimeOnAirMs, loraTimeOnAirMs } from '../airtime.js';
import { LorawanError } from '../errors.js';

/**
 * What the network server needs to know about a regional channel plan (LoRa Alliance RP002).
 * One object per region; data fields are plain readonly values, methods are pure functions of
 * their arguments. Frequencies are integer Hz, delays ms, powers dBm.
 */

export type RegionName = 'EU868';

export type Modulation = 'LORA' | 'FSK';

/**
 * A data rate. `usage` is absent when the rate serves both directions; US915/AU915 have
 * uplink-only and downlink-only rates with the same modulation (SF8BW500 is DR4 up, DR12 down).
 */
export type DataRate =
  | {
      readonly modulation: 'LORA';
      readonly spreadingFactor: number;
      readonly bandwidthKhz: number;
      readonly usage?: 'uplink' | 'downlink';
    }
  | {
      readonly modulation: 'FSK';
      readonly bitRate: number;
      readonly usage?: 'uplink' | 'downlink';
    };

/** Maximum sizes for one data rate: M (MACPayload) and N (FRMPayload when FOpts is empty). */
export interface MaxPayloadSize {
  readonly macPayload: number;
  readonly frmPayload: number;
}

export interface MaxPayloadSizeOptions {
  /**
   * The sizes of LoRaWAN Regional Parameters 1.0.x (RP001) that leave room for a repeater
   * encapsulation. Default false: RP002 dropped the repeater tables.
   */
  readonly repeaterCompatible?: boolean;
  /** Dwell-time limited sizes (AS923 with UplinkDwellTime/DownlinkDwellTime = 1); EU868 has none. */
  readonly dwellTimeLimited?: boolean;
}

/** One device channel (uplink; in regions such as EU868 also the RX1 downlink frequency). */
export interface Channel {
  readonly frequencyHz: number;
  readonly minDr: number;
  readonly maxDr: number;
  readonly enabled: boolean;
}

/**
 * A device's channels indexed by channel number. `null` (or `undefined`, or a frequency of 0,
 * as NewChannelReq uses it) marks a channel that is not defined. JSON keeps the indices.
 */
export type ChannelPlan = readonly (Channel | null | undefined)[];

/** One LinkADRReq's channel-mask part. */
export interface LinkAdrChannelMaskBlock {
  readonly chMask: number;
  readonly chMaskCntl: number;
}

export interface LinkAdrChannelMaskInput {
  /** The channels the device has now; `enabled` is the current mask. */
  readonly channels: ChannelPlan;
  /** The contiguous LinkADRReq commands of one downlink, in order (at least one). */
  readonly blocks: readonly LinkAdrChannelMaskBlock[];
}

export interface LinkAdrChannelMaskResult {
  /** The device's Channel mask ACK bit. */
  readonly ok: boolean;
  /** Enabled channel indices after the command; when not ok, the unchanged current ones. */
  readonly enabledChannels: number[];
  /** Why the mask is refused, when it is. */
  readonly reason?: string;
}

/** A regulatory sub-band: [minFrequencyHz, maxFrequencyHz), judged by the centre frequency. */
export interface SubBand {
  readonly name: string;
  readonly minFrequencyHz: number;
  readonly maxFrequencyHz: number;
  /** Fraction of time a transmitter may be on air, 0.01 = 1 %. */
  readonly dutyCycle: number;
  /** Regulatory power limit, ERP in dBm. */
  readonly maxErpDbm: number;
}

export interface Region {
  readonly name: RegionName;
  /** The document and version the values come from. */
  readonly regionalParameters: string;
  readonly frequencyRangeHz: { readonly min: number; readonly max: number };

  /** Defined data rates by index; indices that are RFU are absent. */
  readonly dataRates: Readonly<Record<number, DataRate>>;
  /** Highest data rate the network's ADR should assign (EU868: DR5; DR6/DR7 are optional). */
  readonly maxAdrDataRate: number;
  /** Data rate the end-device uses for a JoinRequest, lowest to highest allowed. */
  readonly joinDataRates: { readonly min: number; readonly max: number };

  /** Most channels a device of this region holds (EU868: 16; US915: 72). */
  readonly maxChannels: number;
  /** Channels every device has after a join (before any CFList). */
  readonly defaultChannels: readonly Channel[];
  /** Indices of the channels a device may send a JoinRequest on. */
  readonly joinChannels: readonly number[];
  /** Which CFList type this region's JoinAccept carries. */
  readonly cfListType: 'frequencies' | 'channelMask';

  readonly rx2Default: { readonly frequencyHz: number; readonly dataRate: number };
  /** Highest RX1DROffset a device accepts. */
  readonly maxRx1DrOffset: number;
  readonly receiveDelay1Ms: number;
  readonly receiveDelay2Ms: number;
  readonly joinAcceptDelay1Ms: number;
  readonly joinAcceptDelay2Ms: number;
  /** LoRaWAN 1.0.x MAX_FCNT_GAP (removed in 1.0.4 and 1.1). */
  readonly maxFCntGap: number;
  readonly adrAckLimit: number;
  readonly adrAckDelay: number;

  readonly defaultMaxEirpDbm: number;
  /** Whether devices of this region accept TxParamSetupReq (dwell time, MaxEIRP). */
  readonly supportsTxParamSetup: boolean;
  /** Duty-cycle sub-bands; empty for regions without a duty-cycle rule. */
  readonly subBands: readonly SubBand[];

  /** The descriptor of a data rate; INVALID_FIELD when it is not defined here. */
  dataRate(dr: number): DataRate;
  /** 'SF7BW125' for LoRa, 'FSK50000' (bit rate) for FSK. */
  dataRateName(dr: number): string;
  /**
   * The data rate index for a received (or sent) frame: a LoRa datr such as 'SF7BW125', an FSK
   * bit rate as the packet forwarder gives it (50000), or a name from `dataRateName`.
   */
  dataRateFromRx(datr: string | number, direction?: 'uplink' | 'downlink'): number;
  maxPayloadSize(dr: number, options?: MaxPayloadSizeOptions): MaxPayloadSize;
  /** TX power for a TXPower index: MaxEIRP − 2·index in EU868; undefined where RFU. */
  txPowerDbm(index: number, maxEirpDbm?: number): number | undefined;

  /** RX1 data rate for an uplink data rate and the device's RX1DROffset. */
  rx1DataRate(uplinkDr: number, rx1DrOffset: number): number;
  /** RX1 frequency for an uplink frequency (EU868: the same; US915: 923.3 + (ch mod 8)·0.6 MHz). */
  rx1FrequencyHz(uplinkFrequencyHz: number): number;
  /** Power a gateway should use for a downlink on this frequency (dBm). */
  downlinkTxPowerDbm(frequencyHz: number): number;
  subBandFor(frequencyHz: number): SubBand | undefined;

  /** Predicts the device's handling of the channel mask of one or several LinkADRReq. */
  applyLinkAdrChannelMask(input: LinkAdrChannelMaskInput): LinkAdrChannelMaskResult;

  /** The JoinAccept CFList for a channel plan. */
  encodeCfList(channels: ChannelPlan): Uint8Array;
  /** The channel plan a device has after a JoinAccept with this CFList. */
  decodeCfList(bytes: Uint8Array): (Channel | null)[];
}

/** A LoRa data rate name the packet forwarder uses ('SF7BW125'), or 'FSK50000'. */
export function nameOfDataRate(dataRate: DataRate): string {
  return dataRate.modulation === 'LORA'
    ? `SF${dataRate.spreadingFactor}BW${dataRate.bandwidthKhz}`
    : `FSK${dataRate.bitRate}`;
}

const LORA_DATR = /^SF(\d{1,2})BW(\d{1,4}(?:\.\d+)?)$/;
const FSK_DATR = /^(?:FSK)?(\d{1,7})$/;

/** Parses a datr into the modulation it names; INVALID_FIELD when it names none. */
export function parseDatr(datr: string | number): DataRate {
  if (typeof datr === 'number') {
    if (Number.isInteger(datr) && datr > 0) return { modulation: 'FSK', bitRate: datr };
  } else {
    const lora = LORA_DATR.exec(datr);
    if (lora) {
      return {
        modulation: 'LORA',
        spreadingFactor: Number(lora[1]),
        bandwidthKhz: Number(lora[2]),
      };
    }
    const fsk = FSK_DATR.exec(datr);
    if (fsk && Number(fsk[1]) > 0) return { modulation: 'FSK', bitRate: Number(fsk[1]) };
  }
  throw new LorawanError(
    'INVALID_FIELD',
    `datr ${JSON.stringify(datr)} is neither a LoRa data rate such as SF7BW125 nor an FSK bit rate`,
  );
}

/** Whether two descriptors name the same modulation parameters (ignoring `usage`). */
export function sameModulation(a: DataRate, b: DataRate): boolean {
  if (a.modulation === 'LORA' && b.modulation === 'LORA') {
    return a.spreadingFactor === b.spreadingFactor && a.bandwidthKhz === b.bandwidthKhz;
  }
  if (a.modulation === 'FSK' && b.modulation === 'FSK') return a.bitRate === b.bitRate;
  return false;
}

/**
 * Time on air of a PHYPayload of `payloadSize` bytes at a data rate, with LoRaWAN's settings
 * (explicit header, CR 4/5, 8-symbol preamble). Uplinks carry a CRC, downlinks do not.
 */
export function dataRateTimeOnAirMs(
  dataRate: DataRate,
  payloadSize: number,
  direction: 'uplink' | 'downlink',
): number {
  if (dataRate.modulation === 'FSK') return fskTimeOnAirMs(payloadSize, dataRate.bitRate);
  return loraTimeOnAirMs({
    spreadingFactor: dataRate.spreadingFactor,
    bandwidthKhz: dataRate.bandwidthKhz,
    payloadSize,
    crc: direction === 'uplink',
  });
}
