import type { MacCommandOf } from '../../lorawan/mac-commands.js';

/** Demodulation floor per spreading factor, dB (SX1276 datasheet, as LoRaWAN servers use it). */
export const REQUIRED_SNR_DB: Readonly<Record<number, number>> = {
  7: -7.5,
  8: -10,
  9: -12.5,
  10: -15,
  11: -17.5,
  12: -20,
};

/**
 * LinkCheckAns (LoRaWAN §5.2): the link margin of the best reception in dB above the demodulation
 * floor of the uplink's spreading factor (0..254), and how many gateways heard the uplink.
 */
export function linkCheckAnswer(
  bestSnrDb: number,
  spreadingFactor: number,
  gatewayCount: number,
): MacCommandOf<'LinkCheckAns'> {
  const floor = REQUIRED_SNR_DB[spreadingFactor] ?? -20;
  const margin = Math.max(0, Math.min(254, Math.floor(bestSnrDb - floor)));
  return { cid: 'LinkCheckAns', margin, gatewayCount: Math.min(255, gatewayCount) };
}
