/**
 * Gateway traffic as the network server sees it, whatever protocol carried it (Semtech UDP now,
 * Basics Station later). Field names follow ChirpStack v4's rxInfo/txInfo so that events can
 * carry them as they are.
 */

/** LoRa or FSK modulation of a frame. */
export type Modulation =
  | {
      lora: {
        bandwidthHz: number;
        spreadingFactor: number;
        /** e.g. 'CR_4_5' */
        codeRate: string;
        /** true for downlinks to devices (inverted IQ). */
        polarizationInversion?: boolean;
      };
    }
  | { fsk: { datarate: number; frequencyDeviationHz?: number } };

export interface UplinkTxInfo {
  frequencyHz: number;
  modulation: Modulation;
}

export interface UplinkRxInfo {
  /** Gateway EUI, lower-case hex. */
  gatewayId: string;
  /** Identifies this reception for downlink scheduling (unique per gateway frame). */
  uplinkId: number;
  /** The gateway's 32-bit microsecond counter at the end of reception (Semtech `tmst`). */
  timestampUs: number;
  /** GPS or gateway time of reception, when the gateway has it (ISO 8601). */
  gwTime?: string;
  /** Time since the GPS epoch in ms, when the gateway has it (Semtech `tmms`). */
  timeSinceGpsEpochMs?: number;
  rssi: number;
  snr: number;
  channel: number;
  rfChain: number;
  /** CRC status as the gateway reported it: only 'ok' frames reach the network server. */
  crcStatus: 'ok' | 'bad' | 'none';
  /** Server time when the datagram carrying this copy arrived (ms since the Unix epoch). */
  receivedAtMs: number;
  location?: GatewayLocation;
}

export interface GatewayLocation {
  latitude: number;
  longitude: number;
  altitude: number;
}

/** One copy of a frame received by one gateway. */
export interface GatewayUplink {
  phyPayload: Uint8Array;
  txInfo: UplinkTxInfo;
  rxInfo: UplinkRxInfo;
}

/** All copies of one PHYPayload heard within the window, merged. */
export interface DeduplicatedUplink {
  phyPayload: Uint8Array;
  txInfo: UplinkTxInfo;
  /** One entry per copy, in arrival order (a gateway heard twice keeps its best copy). */
  rxInfo: UplinkRxInfo[];
  /** Server time of the first and last copy's arrival (ms since the Unix epoch). */
  firstReceivedAtMs: number;
  lastReceivedAtMs: number;
  /**
   * What a frame annotator (`FrameAnnotatorLink`) computed for this frame beside the socket:
   * opaque to the gateway layer; the module that made it reads it.
   */
  annotation?: unknown;
}

/** When a gateway must transmit. */
export type DownlinkTiming =
  /** At the gateway's counter value (Class A: uplink timestampUs + RX delay), modulo 2^32. */
  | { kind: 'counter'; timestampUs: number }
  /** As soon as possible (Class C). */
  | { kind: 'immediately' };

export interface GatewayDownlink {
  gatewayId: string;
  /** Chosen by the network server; the TX acknowledgement refers to it. */
  downlinkId: number;
  phyPayload: Uint8Array;
  frequencyHz: number;
  powerDbm: number;
  modulation: Modulation;
  timing: DownlinkTiming;
  rfChain?: number;
}

/** Semtech TX_ACK error names; 'NONE' means the gateway accepted the frame for transmission. */
export type TxAckStatus =
  | 'NONE'
  | 'TOO_LATE'
  | 'TOO_EARLY'
  | 'COLLISION_PACKET'
  | 'COLLISION_BEACON'
  | 'TX_FREQ'
  | 'TX_POWER'
  | 'GPS_UNLOCKED'
  | 'UNKNOWN';

export interface GatewayTxAck {
  gatewayId: string;
  downlinkId: number;
  status: TxAckStatus;
}

/** Statistics a gateway reports periodically (Semtech `stat`). */
export interface GatewayStats {
  gatewayId: string;
  time?: string;
  location?: GatewayLocation;
  rxReceived: number;
  rxReceivedOk: number;
  rxForwarded: number;
  ackRatio?: number;
  txReceived: number;
  txEmitted: number;
  receivedAtMs: number;
}

/** What the network server needs from a gateway protocol backend. */
export interface GatewayBackend {
  onUplink(handler: (uplink: GatewayUplink) => void): void;
  onStats(handler: (stats: GatewayStats) => void): void;
  onTxAck(handler: (ack: GatewayTxAck) => void): void;
  /**
   * Present when the backend merges the copies of a frame itself (see Deduplicator): it then
   * emits each frame once, after its window, here and not through `onUplink`; `flush` emits the
   * frames whose window is still open (shutdown). The backend applies the gateway allow-list.
   */
  readonly deduplication?: {
    onUplink(handler: (uplink: DeduplicatedUplink) => void): void;
    flush(): Promise<void>;
  };
  /**
   * Present when the backend runs a frame annotator next to its socket (a module of the network
   * server loaded in the gateway worker, which fills `DeduplicatedUplink.annotation`): `update`
   * hands it data (plain, structured-cloned); `onStarted` listeners run each time it (re)starts
   * with an empty state.
   */
  readonly frameAnnotator?: FrameAnnotatorLink;
  /** A gateway is no longer registered: forget any allow-list answer kept for it. */
  gatewayRemoved?(gatewayId: string): void;
  /** Sends a downlink; resolves false when the gateway is unknown or has no downlink path. */
  sendDownlink(downlink: GatewayDownlink): Promise<boolean>;
  close(): Promise<void>;
}

/** The main thread's handle on a frame annotator that runs in the gateway worker. */
export interface FrameAnnotatorLink {
  update(message: unknown): void;
  onStarted(listener: () => void): void;
}

/**
 * What a frame annotator module exports (`createFrameAnnotator`): `annotate` runs for every
 * merged frame in the worker and must not throw for any input; `update` takes the messages sent
 * through `FrameAnnotatorLink.update`.
 */
export interface FrameAnnotator {
  annotate(uplink: DeduplicatedUplink): unknown;
  update(message: unknown): void;
}
