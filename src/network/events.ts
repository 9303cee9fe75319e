import { EventEmitter } from 'node:events';
import type { Modulation, UplinkRxInfo, UplinkTxInfo } from '../gateway/types.js';

/**
 * Integration events in ChirpStack v4's JSON shape (field names as its `up`, `join`, `ack`,
 * `txack` and `log` events), so that existing consumers work unchanged.
 */
export type EventType = 'up' | 'join' | 'ack' | 'txack' | 'log' | 'status';

export interface DeviceInfo {
  applicationId: string;
  applicationName?: string;
  deviceName: string;
  devEui: string;
  deviceClassEnabled: 'CLASS_A' | 'CLASS_B' | 'CLASS_C';
  tags: Record<string, string>;
}

export interface GaletEvent {
  type: EventType;
  devEui: string;
  applicationId: string;
  /** ISO 8601 UTC. */
  time: string;
  body: Record<string, unknown>;
}

export function chirpstackModulation(modulation: Modulation): Record<string, unknown> {
  if ('fsk' in modulation) return { fsk: { datarate: modulation.fsk.datarate } };
  const { bandwidthHz, spreadingFactor, codeRate, polarizationInversion } = modulation.lora;
  return {
    lora: {
      bandwidth: bandwidthHz,
      spreadingFactor,
      codeRate,
      ...(polarizationInversion === undefined ? {} : { polarizationInversion }),
    },
  };
}

export function chirpstackTxInfo(txInfo: UplinkTxInfo): Record<string, unknown> {
  return { frequency: txInfo.frequencyHz, modulation: chirpstackModulation(txInfo.modulation) };
}

export function chirpstackRxInfo(rx: UplinkRxInfo): Record<string, unknown> {
  // Built key by key in ChirpStack's order (no spread of temporary objects: three per uplink).
  const out: Record<string, unknown> = { gatewayId: rx.gatewayId, uplinkId: rx.uplinkId };
  if (rx.gwTime !== undefined) out['gwTime'] = rx.gwTime;
  out['nsTime'] = new Date(rx.receivedAtMs).toISOString();
  if (rx.timeSinceGpsEpochMs !== undefined) {
    out['timeSinceGpsEpoch'] = `${(rx.timeSinceGpsEpochMs / 1000).toFixed(3)}s`;
  }
  out['rssi'] = rx.rssi;
  out['snr'] = rx.snr;
  out['channel'] = rx.channel;
  out['rfChain'] = rx.rfChain;
  if (rx.location !== undefined) out['location'] = rx.location;
  out['context'] = uint32BeBase64(rx.timestampUs);
  out['crcStatus'] =
    rx.crcStatus === 'ok' ? 'CRC_OK' : rx.crcStatus === 'bad' ? 'BAD_CRC' : 'NO_CRC';
  return out;
}

const BASE64 = 'ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/';

/** Base64 of a 32-bit value's 4 big-endian bytes (the gateway's counter as ChirpStack's context). */
export function uint32BeBase64(value: number): string {
  const v = value >>> 0;
  const b0 = v >>> 24;
  const b1 = (v >>> 16) & 0xff;
  const b2 = (v >>> 8) & 0xff;
  const b3 = v & 0xff;
  return (
    BASE64[b0 >>> 2]! +
    BASE64[((b0 & 0x03) << 4) | (b1 >>> 4)]! +
    BASE64[((b1 & 0x0f) << 2) | (b2 >>> 6)]! +
    BASE64[b2 & 0x3f]! +
    BASE64[b3 >>> 2]! +
    BASE64[(b3 & 0x03) << 4]! +
    '=='
  );
}

/** In-process fan-out of events to live consumers (SSE, MQTT, tests). */
export class EventBus {
  readonly #emitter = new EventEmitter();

  constructor() {
    this.#emitter.setMaxListeners(0);
  }

  publish(event: GaletEvent): void {
    this.#emitter.emit('event', event);
  }

  subscribe(listener: (event: GaletEvent) => void): () => void {
    this.#emitter.on('event', listener);
    return () => this.#emitter.off('event', listener);
  }
}
