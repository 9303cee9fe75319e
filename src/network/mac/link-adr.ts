import { LorawanError } from '../../lorawan/errors.js';
import type { LinkADRAns, LinkADRReq } from '../../lorawan/mac-commands.js';
import type {
  Channel,
  ChannelPlan,
  LinkAdrChannelMaskBlock,
  Region,
} from '../../lorawan/regions/region.js';

/**
 * LinkADRReq / LinkADRAns (LoRaWAN 1.0.4 §5.3, 1.1 §5.3): planning the block of commands that
 * moves a device to a data rate, TX power, NbTrans and channel mask, and reading the answers.
 *
 * The contiguous LinkADRReq of one downlink form one atomic block: the device applies the
 * channel masks in order and the DataRate, TXPower and NbTrans of the last command, and answers
 * every command with the same three ACK bits (1.0.3 onwards; LoRaWAN 1.0.2 devices may send one
 * answer for the block). If any bit is cleared, nothing changed. Devices before 1.0.2 processed
 * each command on its own; for EU868 the block is always one command, so that never matters.
 *
 * ADRACKReq (FCtrl bit of an uplink, LoRaWAN 1.0.4 §4.3.1.1): the device has sent ADR_ACK_LIMIT
 * uplinks without any downlink and asks for one within the next ADR_ACK_DELAY uplinks, after
 * which it starts lowering its data rate and raising its power. Any downlink answers it, an
 * empty one included; it does not have to carry a LinkADRReq, and the network need not answer in
 * the same RX window (it may wait for a better moment within ADR_ACK_DELAY uplinks). See
 * `processUplinkMac` (uplink/mac-layer.ts) asks for one.
 */

/** What the network wants the device to use, or what it believes the device uses. */
export interface LinkAdrState {
  readonly dr: number;
  readonly txPowerIndex: number;
  readonly nbTrans: number;
  /** Enabled uplink channel indices, ascending. */
  readonly enabledChannels: readonly number[];
}

/** A part of a LinkADRReq block the device refused, from the ACK bit that it cleared. */
export type LinkAdrRefusal = 'dataRate' | 'txPower' | 'channelMask';

export interface LinkAdrAnswerResult {
  /** The state after the answers: the requested one if accepted, else the previous one. */
  readonly state: LinkAdrState;
  /** Whether the device applied the block (all three ACK bits set in every answer). */
  readonly accepted: boolean;
  /** What the device refused, in the order dataRate, txPower, channelMask; empty if accepted. */
  readonly rejected: LinkAdrRefusal[];
}

export interface LinkAdrAnswerOptions {
  /**
   * The region and the device's channels before the block. With both, the channel mask after an
   * accepted block is predicted by `region.applyLinkAdrChannelMask` (any ChMaskCntl); without
   * them, only ChMaskCntl 0 of a 16-channel region such as EU868 is understood.
   */
  readonly region?: Region;
  readonly channels?: ChannelPlan;
  /**
   * False when the uplink carrying the answers had its ADR bit cleared. Such a device still
   * applies a valid channel mask (Channel mask ACK set) but answers Data rate ACK and Power ACK
   * cleared and keeps its data rate, power and NbTrans (LoRaWAN 1.0.4 §4.3.1.1 lets it ignore
   * them; Semtech's 1.0.4 device guide describes these answers). Default true: any cleared bit
   * means nothing changed.
   */
  readonly deviceAdrEnabled?: boolean;
}

/** 0xF in DataRate or TXPower: keep the current value (LoRaWAN 1.0.4 §5.3, 1.1). */
const KEEP = 0xf;
const CHANNELS_PER_MASK = 16;

function isDefined(channel: Channel | null | undefined): channel is Channel {
  return channel !== null && channel !== undefined && channel.frequencyHz !== 0;
}

function sameChannels(a: readonly number[], b: readonly number[]): boolean {
  return a.length === b.length && a.every((value, i) => value === b[i]);
}

function sortedUnique(values: readonly number[]): number[] {
  return [...new Set(values)].sort((x, y) => x - y);
}

function invalid(message: string): LorawanError {
  return new LorawanError('INVALID_FIELD', message);
}

/**
 * The LinkADRReq block (in downlink order) that moves a device with `deviceChannels` to
 * `target`. EU868, whose devices hold at most 16 channels, needs one command with ChMaskCntl 0.
 * Regions with more channels get one command per bank of 16 (ChMaskCntl = bank), and the result
 * is checked with `region.applyLinkAdrChannelMask`; UNSUPPORTED if that does not yield the wanted
 * channels. Every command carries the same DataRate, TXPower and NbTrans, since the device keeps
 * those of the last one.
 *
 * INVALID_FIELD for a target the device would refuse: a data rate the region does not define,
 * a TX power index it does not define, NbTrans outside 1-15, no channel, a channel the device
 * does not have, or no enabled channel allowing the data rate.
 */
export function buildLinkAdrRequests(
  region: Region,
  target: LinkAdrState,
  deviceChannels: ChannelPlan,
): LinkADRReq[] {
  const { dr, txPowerIndex, nbTrans } = target;
  if (!Number.isInteger(dr) || dr < 0 || dr >= KEEP || region.dataRates[dr] === undefined) {
    throw invalid(`LinkADRReq data rate DR${dr} is not defined in ${region.name}`);
  }
  if (txPowerIndex >= KEEP || region.txPowerDbm(txPowerIndex) === undefined) {
    throw invalid(`LinkADRReq TX power index ${txPowerIndex} is not defined in ${region.name}`);
  }
  if (!Number.isInteger(nbTrans) || nbTrans < 1 || nbTrans > 15) {
    throw invalid(`LinkADRReq NbTrans must be an integer from 1 to 15, got ${nbTrans}`);
  }
  const wanted = sortedUnique(target.enabledChannels);
  if (wanted.length === 0) throw invalid('a LinkADRReq must leave at least one channel enabled');
  for (const index of wanted) {
    if (!Number.isInteger(index) || !isDefined(deviceChannels[index])) {
      throw invalid(`LinkADRReq enables channel ${index}, which the device does not have`);
    }
  }
  const allowsDr = wanted.some((index) => {
    const channel = deviceChannels[index]!;
    return channel.minDr <= dr && dr <= channel.maxDr;
  });
  if (!allowsDr) {
    throw invalid(`no channel of ${wanted.join(', ')} allows DR${dr}; the device would refuse it`);
  }

  const banks = Math.max(1, Math.ceil(region.maxChannels / CHANNELS_PER_MASK));
  const blocks: LinkAdrChannelMaskBlock[] = [];
  for (let bank = 0; bank < banks; bank++) {
    let chMask = 0;
    for (const index of wanted) {
      const offset = index - bank * CHANNELS_PER_MASK;
      if (offset >= 0 && offset < CHANNELS_PER_MASK) chMask |= 1 << offset;
    }
    blocks.push({ chMask, chMaskCntl: bank });
  }
  const predicted = region.applyLinkAdrChannelMask({ channels: deviceChannels, blocks });
  if (!predicted.ok || !sameChannels(sortedUnique(predicted.enabledChannels), wanted)) {
    throw new LorawanError(
      'UNSUPPORTED',
      `cannot express channels ${wanted.join(', ')} as LinkADRReq channel masks in ${region.name}${predicted.reason ? `: ${predicted.reason}` : ''}`,
    );
  }
  return blocks.map(({ chMask, chMaskCntl }) => ({
    cid: 'LinkADRReq',
    dataRate: dr,
    txPower: txPowerIndex,
    chMask,
    chMaskCntl,
    nbTrans,
  }));
}

/** Enabled channels after an accepted block, as the device computes them. */
function channelsAfter(
  state: LinkAdrState,
  requested: readonly LinkADRReq[],
  options: LinkAdrAnswerOptions,
): readonly number[] {
  const blocks = requested.map(({ chMask, chMaskCntl }) => ({ chMask, chMaskCntl }));
  if (options.region && options.channels) {
    const predicted = options.region.applyLinkAdrChannelMask({
      channels: options.channels,
      blocks,
    });
    // The device acknowledged the mask; a refusal here means the network's copy of the device's
    // channels is out of date, so fall through to reading the mask bits.
    if (predicted.ok) return sortedUnique(predicted.enabledChannels);
  }
  if (options.region !== undefined && options.region.maxChannels > CHANNELS_PER_MASK) {
    return state.enabledChannels;
  }
  if (!blocks.every((block) => block.chMaskCntl === 0)) return state.enabledChannels;
  // ChMaskCntl 0 in a 16-channel region: each mask replaces the previous one.
  const { chMask } = blocks[blocks.length - 1]!;
  const enabled: number[] = [];
  for (let bit = 0; bit < CHANNELS_PER_MASK; bit++) if ((chMask >> bit) & 1) enabled.push(bit);
  return enabled;
}

/**
 * The device's state after its LinkADRAns to a LinkADRReq block. `answers` are the LinkADRAns
 * of the uplink that answers the block: one per command (LoRaWAN 1.0.3 onwards), or a single one
 * for the block (1.0.2). The block counts as applied only when every answer has all three ACK
 * bits set; the union of the cleared bits is reported, so that the caller can stop asking for a
 * data rate or a TX power the device refuses. DataRate or TXPower 0xF keep the current value,
 * NbTrans 0 means 1. INVALID_FIELD for an empty block or no answer (a caller's mistake).
 */
export function applyLinkAdrAnswers(
  state: LinkAdrState,
  requested: readonly LinkADRReq[],
  answers: readonly LinkADRAns[],
  options: LinkAdrAnswerOptions = {},
): LinkAdrAnswerResult {
  const last = requested[requested.length - 1];
  if (last === undefined) throw invalid('no LinkADRReq to match the LinkADRAns with');
  if (answers.length === 0) throw invalid('no LinkADRAns for the LinkADRReq block');

  const rejected: LinkAdrRefusal[] = [];
  if (answers.some((answer) => !answer.dataRateAck)) rejected.push('dataRate');
  if (answers.some((answer) => !answer.powerAck)) rejected.push('txPower');
  if (answers.some((answer) => !answer.channelMaskAck)) rejected.push('channelMask');

  if (rejected.length === 0) {
    return {
      state: {
        dr: last.dataRate === KEEP ? state.dr : last.dataRate,
        txPowerIndex: last.txPower === KEEP ? state.txPowerIndex : last.txPower,
        nbTrans: last.nbTrans === 0 ? 1 : last.nbTrans,
        enabledChannels: channelsAfter(state, requested, options),
      },
      accepted: true,
      rejected,
    };
  }
  if (options.deviceAdrEnabled === false && !rejected.includes('channelMask')) {
    return {
      state: { ...state, enabledChannels: channelsAfter(state, requested, options) },
      accepted: false,
      rejected,
    };
  }
  return { state, accepted: false, rejected };
}
