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
  return {
    gatewayId: rx.gatewayId,
    uplinkId: rx.uplinkId,
    ...(rx.gwTime === undefined ? {} : { gwTime: rx.gwTime }),
    nsTime: new Date(rx.receivedAtMs).toISOString(),
    ...(rx.timeSinceGpsEpochMs === undefined
      ? {}
      : { timeSinceGpsEpoch: `${(rx.timeSinceGpsEpochMs / 1000).toFixed(3)}s` }),
    rssi: rx.rssi,
    snr: rx.snr,
    channel: rx.channel,
    rfChain: rx.rfChain,
    ...(rx.location === undefined ? {} : { location: rx.location }),
    context: Buffer.from(uint32Be(rx.timestampUs)).toString('base64'),
    crcStatus: rx.crcStatus === 'ok' ? 'CRC_OK' : rx.crcStatus === 'bad' ? 'BAD_CRC' : 'NO_CRC',
  };
}

function uint32Be(value: number): Uint8Array {
  const out = new Uint8Array(4);
  new DataView(out.buffer).setUint32(0, value >>> 0);
  return out;
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
