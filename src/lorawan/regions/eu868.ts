import { assertUint } from '../bytes.js';
import { CFLIST_FREQUENCY_COUNT, decodeCfList, encodeCfList } from '../cflist.js';
import { LorawanError } from '../errors.js';
import { DEFAULT_MAX_FCNT_GAP } from '../fcnt.js';
import {
  type Channel,
  type ChannelPlan,
  type DataRate,
  type LinkAdrChannelMaskInput,
  type LinkAdrChannelMaskResult,
  type MaxPayloadSize,
  type MaxPayloadSizeOptions,
  nameOfDataRate,
  parseDatr,
  type Region,
  type SubBand,
  sameModulation,
} from './region.js';

/**
 * EU863-870 after LoRa Alliance RP002-1.0.4 §2.4 (values unchanged since RP002-1.0.0 for what
 * is here). LR-FHSS data rates DR8-DR11 are not supported yet: they are absent from the table,
 * so a frame at one of them is refused as an unknown data rate.
 */

const NAME = 'EU868';
const MIN_FREQUENCY_HZ = 863_000_000;
const MAX_FREQUENCY_HZ = 870_000_000;
const MAX_CHANNELS = 16;
/** Channels 0-2 are the defaults; the CFList carries channels 3-7. */
const FIRST_CFLIST_CHANNEL = 3;
/** RP002 §2.4.2: CFList channels and default channels are usable for DR0 to DR5. */
const CFLIST_MIN_DR = 0;
const CFLIST_MAX_DR = 5;
const MAX_RX1_DR_OFFSET = 5;
const DEFAULT_MAX_EIRP_DBM = 16;
const MAX_TX_POWER_INDEX = 7;

const DATA_RATES: Readonly<Record<number, DataRate>> = freezeEntries({
  0: { modulation: 'LORA', spreadingFactor: 12, bandwidthKhz: 125 },
  1: { modulation: 'LORA', spreadingFactor: 11, bandwidthKhz: 125 },
  2: { modulation: 'LORA', spreadingFactor: 10, bandwidthKhz: 125 },
  3: { modulation: 'LORA', spreadingFactor: 9, bandwidthKhz: 125 },
  4: { modulation: 'LORA', spreadingFactor: 8, bandwidthKhz: 125 },
  5: { modulation: 'LORA', spreadingFactor: 7, bandwidthKhz: 125 },
  6: { modulation: 'LORA', spreadingFactor: 7, bandwidthKhz: 250 },
  7: { modulation: 'FSK', bitRate: 50_000 },
});

/** RP002 §2.4.6: M and N per data rate (no repeater tables in RP002). */
const MAX_PAYLOAD_SIZES: readonly MaxPayloadSize[] = freezeEntries([
  { macPayload: 59, frmPayload: 51 },
  { macPayload: 59, frmPayload: 51 },
  { macPayload: 59, frmPayload: 51 },
  { macPayload: 123, frmPayload: 115 },
  { macPayload: 250, frmPayload: 242 },
  { macPayload: 250, frmPayload: 242 },
  { macPayload: 250, frmPayload: 242 },
  { macPayload: 250, frmPayload: 242 },
]);

/** LoRaWAN Regional Parameters 1.0.x (RP001) repeater-compatible sizes: DR4-DR7 M=230, N=222. */
const MAX_PAYLOAD_SIZES_REPEATER: readonly MaxPayloadSize[] = freezeEntries([
  { macPayload: 59, frmPayload: 51 },
  { macPayload: 59, frmPayload: 51 },
  { macPayload: 59, frmPayload: 51 },
  { macPayload: 123, frmPayload: 115 },
  { macPayload: 230, frmPayload: 222 },
  { macPayload: 230, frmPayload: 222 },
  { macPayload: 230, frmPayload: 222 },
  { macPayload: 230, frmPayload: 222 },
]);

const DEFAULT_CHANNELS: readonly Channel[] = freezeEntries([
  { frequencyHz: 868_100_000, minDr: 0, maxDr: 5, enabled: true },
  { frequencyHz: 868_300_000, minDr: 0, maxDr: 5, enabled: true },
  { frequencyHz: 868_500_000, minDr: 0, maxDr: 5, enabled: true },
]);

/**
 * ETSI EN 300 220-2 (V3.2.1, annex B; ERC Recommendation 70-03 annex 1) bands LoRaWAN uses,
 * as half-open intervals of the centre frequency, so 868.0 MHz belongs to 868.0-868.6 and not
 * to 865-868. Gaps (868.6-868.7, 869.2-869.4, 869.65-869.7 MHz) belong to no band.
 * 25 mW ERP = 14 dBm, 500 mW ERP = 27 dBm. 869.7-870 MHz also allows 5 mW without a duty
 * cycle; the 25 mW / 1 % option is the one listed here.
 */
const SUB_BANDS: readonly SubBand[] = Object.freeze([
  band('863.0-865.0 MHz', 863_000_000, 865_000_000, 0.001, 14),
  band('865.0-868.0 MHz', 865_000_000, 868_000_000, 0.01, 14),
  band('868.0-868.6 MHz', 868_000_000, 868_600_000, 0.01, 14),
  band('868.7-869.2 MHz', 868_700_000, 869_200_000, 0.001, 14),
  band('869.4-869.65 MHz', 869_400_000, 869_650_000, 0.1, 27),
  band('869.7-870.0 MHz', 869_700_000, 870_000_000, 0.01, 14),
]);

/**
 * Gateway downlink power outside the 869.4-869.65 MHz band: the 25 mW ERP limit of the other
 * bands (14 dBm). Inside it (RX2 at 869.525 MHz) the band allows 500 mW ERP (27 dBm). These are
 * the ETSI limits above, and the defaults other network servers use (The Things Stack derives its
 * EU868 downlink power from the same sub-band table). A gateway with antenna gain must be
 * configured lower by the operator.
 */
const DEFAULT_DOWNLINK_TX_POWER_DBM = 14;

/** Freezes a table and each of its entries: the region object is shared by every caller. */
function freezeEntries<T extends object>(table: T): Readonly<T> {
  for (const entry of Object.values(table)) Object.freeze(entry);
  return Object.freeze(table);
}

function band(
  name: string,
  minFrequencyHz: number,
  maxFrequencyHz: number,
  dutyCycle: number,
  maxErpDbm: number,
): SubBand {
  return Object.freeze({ name, minFrequencyHz, maxFrequencyHz, dutyCycle, maxErpDbm });
}

function dataRate(dr: number): DataRate {
  const found = Number.isInteger(dr) ? DATA_RATES[dr] : undefined;
  if (found === undefined) {
    throw new LorawanError(
      'INVALID_FIELD',
      `data rate DR${dr} is not defined in ${NAME} (DR0-DR7)`,
    );
  }
  return found;
}

function dataRateFromRx(
  datr: string | number,
  direction: 'uplink' | 'downlink' = 'uplink',
): number {
  const wanted = parseDatr(datr);
  for (const [index, candidate] of Object.entries(DATA_RATES)) {
    if (
      sameModulation(candidate, wanted) &&
      (candidate.usage === undefined || candidate.usage === direction)
    ) {
      return Number(index);
    }
  }
  throw new LorawanError(
    'INVALID_FIELD',
    `data rate ${nameOfDataRate(wanted)} is not defined for ${direction}s in ${NAME}`,
  );
}

function maxPayloadSize(dr: number, options: MaxPayloadSizeOptions = {}): MaxPayloadSize {
  dataRate(dr);
  const table = options.repeaterCompatible ? MAX_PAYLOAD_SIZES_REPEATER : MAX_PAYLOAD_SIZES;
  return table[dr]!;
}

function txPowerDbm(index: number, maxEirpDbm = DEFAULT_MAX_EIRP_DBM): number | undefined {
  if (!Number.isFinite(maxEirpDbm)) {
    throw new LorawanError('INVALID_FIELD', `MaxEIRP must be a number of dBm, got ${maxEirpDbm}`);
  }
  if (!Number.isInteger(index) || index < 0 || index > MAX_TX_POWER_INDEX) return undefined;
  return maxEirpDbm - 2 * index;
}

function rx1DataRate(uplinkDr: number, rx1DrOffset: number): number {
  dataRate(uplinkDr);
  if (!Number.isInteger(rx1DrOffset) || rx1DrOffset < 0 || rx1DrOffset > MAX_RX1_DR_OFFSET) {
    throw new LorawanError(
      'INVALID_FIELD',
      `RX1DROffset must be an integer from 0 to ${MAX_RX1_DR_OFFSET} in ${NAME}, got ${rx1DrOffset}`,
    );
  }
  return Math.max(0, uplinkDr - rx1DrOffset);
}

function assertFrequency(frequencyHz: number, what: string): void {
  if (
    !Number.isInteger(frequencyHz) ||
    frequencyHz < MIN_FREQUENCY_HZ ||
    frequencyHz > MAX_FREQUENCY_HZ
  ) {
    throw new LorawanError(
      'INVALID_FIELD',
      `${what} must be an integer number of Hz from 863 to 870 MHz in ${NAME}, got ${frequencyHz}`,
    );
  }
}

function rx1FrequencyHz(uplinkFrequencyHz: number): number {
  assertFrequency(uplinkFrequencyHz, 'uplink frequency');
  return uplinkFrequencyHz;
}

function subBandFor(frequencyHz: number): SubBand | undefined {
  return SUB_BANDS.find((b) => frequencyHz >= b.minFrequencyHz && frequencyHz < b.maxFrequencyHz);
}

function downlinkTxPowerDbm(frequencyHz: number): number {
  assertFrequency(frequencyHz, 'downlink frequency');
  return subBandFor(frequencyHz)?.maxErpDbm ?? DEFAULT_DOWNLINK_TX_POWER_DBM;
}

function isDefined(channel: Channel | null | undefined): channel is Channel {
  return channel !== null && channel !== undefined && channel.frequencyHz !== 0;
}

function assertChannelPlan(channels: ChannelPlan): void {
  if (channels.length > MAX_CHANNELS) {
    throw new LorawanError(
      'INVALID_FIELD',
      `${NAME} devices hold at most ${MAX_CHANNELS} channels, the plan has ${channels.length}`,
    );
  }
}

/**
 * RP002 §2.4.5 with LoRaWAN 1.0.4 §5.3: the contiguous LinkADRReq of one downlink form one
 * atomic command, applied in order. ChMaskCntl 0: ChMask sets channels 0-15 (replacing the
 * previous mask, as EU868 has no more channels); 6: every defined channel on, whatever ChMask
 * says; 1-5 and 7: RFU. The whole command is refused (Channel mask ACK cleared, channels left
 * as they were) if any block is RFU, or if the resulting mask enables a channel that is not
 * defined, or enables none.
 */
function applyLinkAdrChannelMask(input: LinkAdrChannelMaskInput): LinkAdrChannelMaskResult {
  const { channels, blocks } = input;
  assertChannelPlan(channels);
  if (blocks.length === 0) {
    throw new LorawanError('INVALID_FIELD', 'a LinkADRReq channel mask needs at least one block');
  }
  blocks.forEach((block, i) => {
    assertUint(block.chMask, 16, `ChMask of LinkADRReq ${i + 1}`);
    assertUint(block.chMaskCntl, 3, `ChMaskCntl of LinkADRReq ${i + 1}`);
  });
  const defined: number[] = [];
  const current: number[] = [];
  channels.forEach((channel, index) => {
    if (!isDefined(channel)) return;
    defined.push(index);
    if (channel.enabled) current.push(index);
  });
  const refuse = (reason: string): LinkAdrChannelMaskResult => ({
    ok: false,
    enabledChannels: current,
    reason,
  });

  let enabled: number[] = current;
  for (const [i, { chMask, chMaskCntl }] of blocks.entries()) {
    if (chMaskCntl === 0) {
      enabled = [];
      for (let bit = 0; bit < MAX_CHANNELS; bit++) if ((chMask >> bit) & 1) enabled.push(bit);
    } else if (chMaskCntl === 6) {
      enabled = [...defined];
    } else {
      return refuse(
        `ChMaskCntl ${chMaskCntl} is reserved in ${NAME} (LinkADRReq ${i + 1} of ${blocks.length}); only 0 and 6 are defined`,
      );
    }
  }
  const undefinedEnabled = enabled.filter((index) => !isDefined(channels[index]));
  if (undefinedEnabled.length > 0) {
    return refuse(`the channel mask enables undefined channel(s) ${undefinedEnabled.join(', ')}`);
  }
  if (enabled.length === 0) return refuse('the channel mask disables every channel');
  return { ok: true, enabledChannels: enabled };
}

/**
 * The CFList (type 0) for channels 3-7 of a plan. Channels 0-2 are the defaults and are not in
 * it; channels 8-15 cannot be sent in a JoinAccept (NewChannelReq sets them). A CFList channel
 * is always DR0-DR5, so a channel 3-7 with another range is refused.
 */
function encodeEu868CfList(channels: ChannelPlan): Uint8Array {
  assertChannelPlan(channels);
  const frequenciesHz: number[] = [];
  for (let i = 0; i < CFLIST_FREQUENCY_COUNT; i++) {
    const index = FIRST_CFLIST_CHANNEL + i;
    const channel = channels[index];
    if (!isDefined(channel)) {
      frequenciesHz.push(0);
      continue;
    }
    assertFrequency(channel.frequencyHz, `frequency of channel ${index}`);
    if (channel.minDr !== CFLIST_MIN_DR || channel.maxDr !== CFLIST_MAX_DR) {
      throw new LorawanError(
        'INVALID_FIELD',
        `channel ${index} uses DR${channel.minDr}-DR${channel.maxDr}, but a CFList channel is always DR${CFLIST_MIN_DR}-DR${CFLIST_MAX_DR} in ${NAME}; set it with NewChannelReq`,
      );
    }
    frequenciesHz.push(channel.frequencyHz);
  }
  return encodeCfList({ type: 'frequencies', frequenciesHz });
}

/**
 * The channels a device holds after a JoinAccept with this CFList: the three defaults, then
 * channels 3-7 (DR0-DR5, enabled); `null` where the CFList has no channel. Trailing empty
 * channels are left out.
 */
function decodeEu868CfList(bytes: Uint8Array): (Channel | null)[] {
  const cfList = decodeCfList(bytes);
  if (cfList.type !== 'frequencies') {
    throw new LorawanError(
      'INVALID_FIELD',
      `${NAME} uses CFList type 0 (frequencies), got a channel mask list (type 1)`,
    );
  }
  const plan: (Channel | null)[] = DEFAULT_CHANNELS.map((channel) => ({ ...channel }));
  cfList.frequenciesHz.forEach((frequencyHz, i) => {
    if (frequencyHz === 0) {
      plan.push(null);
      return;
    }
    assertFrequency(frequencyHz, `CFList frequency of channel ${FIRST_CFLIST_CHANNEL + i}`);
    plan.push({ frequencyHz, minDr: CFLIST_MIN_DR, maxDr: CFLIST_MAX_DR, enabled: true });
  });
  while (plan.length > 0 && plan[plan.length - 1] === null) plan.pop();
  return plan;
}

export const EU868: Region = Object.freeze({
  name: NAME,
  regionalParameters: 'RP002-1.0.4',
  frequencyRangeHz: Object.freeze({ min: MIN_FREQUENCY_HZ, max: MAX_FREQUENCY_HZ }),

  dataRates: DATA_RATES,
  maxAdrDataRate: 5,
  joinDataRates: Object.freeze({ min: 0, max: 5 }),

  maxChannels: MAX_CHANNELS,
  defaultChannels: DEFAULT_CHANNELS,
  joinChannels: Object.freeze([0, 1, 2]),
  cfListType: 'frequencies',

  rx2Default: Object.freeze({ frequencyHz: 869_525_000, dataRate: 0 }),
  maxRx1DrOffset: MAX_RX1_DR_OFFSET,
  receiveDelay1Ms: 1_000,
  receiveDelay2Ms: 2_000,
  joinAcceptDelay1Ms: 5_000,
  joinAcceptDelay2Ms: 6_000,
  maxFCntGap: DEFAULT_MAX_FCNT_GAP,
  adrAckLimit: 64,
  adrAckDelay: 32,

  defaultMaxEirpDbm: DEFAULT_MAX_EIRP_DBM,
  supportsTxParamSetup: false,
  subBands: SUB_BANDS,

  dataRate,
  dataRateName: (dr: number) => nameOfDataRate(dataRate(dr)),
  dataRateFromRx,
  maxPayloadSize,
  txPowerDbm,
  rx1DataRate,
  rx1FrequencyHz,
  downlinkTxPowerDbm,
  subBandFor,
  applyLinkAdrChannelMask,
  encodeCfList: encodeEu868CfList,
  decodeCfList: decodeEu868CfList,
} satisfies Region);
