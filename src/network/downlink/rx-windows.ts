import type { Modulation } from '../../gateway/types.js';
import type { DataRate, Region } from '../../lorawan/regions/index.js';

/** A receive window the device opens after its uplink: when and how it listens. */
export interface ReceiveWindow {
  name: 'RX1' | 'RX2';
  frequencyHz: number;
  dataRate: number;
  /** Gateway counter value (µs, modulo 2^32) at which to transmit. */
  timestampUs: number;
  /** Delay after the end of the uplink, ms: used to tell whether there is still time. */
  delayMs: number;
}

export interface DeviceRxSettings {
  /** RxDelay in seconds (0 means 1). */
  rx1DelaySeconds: number;
  rx1DrOffset: number;
  rx2Dr: number;
  rx2FrequencyHz: number;
}

/**
 * The two Class A windows of an uplink (LoRaWAN §3.3): RX1 on the uplink's frequency (or the
 * one DlChannelReq set for its channel) and RX1 data rate, RECEIVE_DELAY1 (or the device's
 * RxDelay) after the end of the uplink, or JOIN_ACCEPT_DELAY1 for a JoinAccept; RX2 one second
 * later on the RX2 parameters.
 */
export function classAWindows(params: {
  region: Region;
  uplinkFrequencyHz: number;
  /**
   * The device's RX1 frequency for the uplink's channel (see `dataRx1FrequencyHz`); absent: the
   * region's rule from the uplink frequency.
   */
  rx1FrequencyHz?: number;
  uplinkDr: number;
  uplinkTimestampUs: number;
  isJoinAccept: boolean;
  settings: DeviceRxSettings;
}): [ReceiveWindow, ReceiveWindow] {
  const { region, settings } = params;
  const rx1DelayMs = params.isJoinAccept
    ? region.joinAcceptDelay1Ms
    : Math.max(1, settings.rx1DelaySeconds) * 1000;
  const rx2DelayMs = rx1DelayMs + 1000;
  // A JoinAccept uses the region's default RX1 offset and RX2 (the device has no session yet).
  const rx1DrOffset = params.isJoinAccept ? 0 : settings.rx1DrOffset;
  const rx2 = params.isJoinAccept
    ? region.rx2Default
    : { frequencyHz: settings.rx2FrequencyHz, dataRate: settings.rx2Dr };
  return [
    {
      name: 'RX1',
      frequencyHz: params.rx1FrequencyHz ?? region.rx1FrequencyHz(params.uplinkFrequencyHz),
      dataRate: region.rx1DataRate(params.uplinkDr, rx1DrOffset),
      timestampUs: (params.uplinkTimestampUs + rx1DelayMs * 1000) >>> 0,
      delayMs: rx1DelayMs,
    },
    {
      name: 'RX2',
      frequencyHz: rx2.frequencyHz,
      dataRate: rx2.dataRate,
      timestampUs: (params.uplinkTimestampUs + rx2DelayMs * 1000) >>> 0,
      delayMs: rx2DelayMs,
    },
  ];
}

/** A region data rate as the modulation a gateway transmits a downlink with. */
export function downlinkModulation(dataRate: DataRate): Modulation {
  if (dataRate.modulation === 'FSK') return { fsk: { datarate: dataRate.bitRate } };
  return {
    lora: {
      spreadingFactor: dataRate.spreadingFactor,
      bandwidthHz: dataRate.bandwidthKhz * 1000,
      codeRate: 'CR_4_5',
      polarizationInversion: true,
    },
  };
}

/** The uplink's data rate index from its modulation. */
export function uplinkDataRate(region: Region, modulation: Modulation): number {
  if ('fsk' in modulation) return region.dataRateFromRx(modulation.fsk.datarate, 'uplink');
  const { spreadingFactor, bandwidthHz } = modulation.lora;
  return region.dataRateFromRx(`SF${spreadingFactor}BW${bandwidthHz / 1000}`, 'uplink');
}
