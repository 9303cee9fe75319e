import type { CodecErrorCode } from './errors.js';

/** What a codec may return as `data`: plain JSON, nothing else. */
export type JsonValue =
  | null
  | boolean
  | number
  | string
  | JsonValue[]
  | { [key: string]: JsonValue };

/** An uplink to decode (TS013 `decodeUplink` input, plus ChirpStack's `variables`). */
export interface UplinkInput {
  /** The decrypted FRMPayload. */
  bytes: Uint8Array;
  fPort: number;
  /** When the network received the uplink; the engine's `now()` when absent. */
  recvTime?: Date | number;
  /** ChirpStack device variables, passed as `input.variables` (an empty object when absent). */
  variables?: Readonly<Record<string, string>>;
}

/** A downlink to decode back into data (TS013 `decodeDownlink`). */
export interface DownlinkDecodeInput {
  bytes: Uint8Array;
  fPort: number;
  variables?: Readonly<Record<string, string>>;
}

/** Data to encode into a downlink (TS013 / ChirpStack `encodeDownlink`, legacy `Encoder`). */
export interface DownlinkEncodeInput {
  data: JsonValue;
  /** Passed to the codec; also the FPort of the result when the codec does not choose one. */
  fPort?: number;
  /**
   * The FPort of the result when neither the codec nor `fPort` gives one; not passed to the
   * codec. For callers that only want the bytes (a Device Repository example without an FPort).
   */
  defaultFPort?: number;
  variables?: Readonly<Record<string, string>>;
}

/** Decoded data to normalise (TS013 `normalizeUplink`). */
export interface NormalizeInput {
  data: JsonValue;
}

export interface CodecFailure {
  code: CodecErrorCode;
  message: string;
  /** The codec's own `errors` array, for `CODEC_REPORTED_ERRORS`. */
  errors?: string[];
}

/** The result of a decode (uplink, downlink) or a normalisation. Never thrown: returned. */
export type DecodeOutcome =
  | { ok: true; data: JsonValue; warnings: string[] }
  | { ok: false; error: CodecFailure; warnings: string[] };

/** The result of an encode: the FRMPayload and its FPort. */
export type EncodeOutcome =
  | { ok: true; bytes: Uint8Array; fPort: number; warnings: string[] }
  | { ok: false; error: CodecFailure; warnings: string[] };

/**
 * Which function of the source answers each call. TTN / TS013 and ChirpStack v4 both name
 * theirs `decodeUplink`/`encodeDownlink` (the input carries both `recvTime` and `variables`);
 * `Decoder`/`Encoder` are TTN v2's, `Decode`/`Encode` ChirpStack v3's.
 */
export interface CodecSignatures {
  uplinkDecoder: 'decodeUplink' | 'Decoder' | 'Decode' | null;
  downlinkEncoder: 'encodeDownlink' | 'Encoder' | 'Encode' | null;
  downlinkDecoder: 'decodeDownlink' | null;
  uplinkNormalizer: 'normalizeUplink' | null;
}

/**
 * One payload codec, sandboxed JavaScript or built in. The pipeline sees only this: every call
 * returns an outcome, none throws for what the codec does.
 */
export interface PayloadCodec {
  readonly kind: 'javascript' | 'cayenne-lpp';
  readonly signatures: CodecSignatures;
  decodeUplink(input: UplinkInput): DecodeOutcome;
  /** Many uplinks in as few sandbox calls as possible; outcomes in input order. */
  decodeMany(inputs: readonly UplinkInput[]): DecodeOutcome[];
  /** `decodeMany` that runs off the event loop (in the sandbox's own thread). */
  decodeManyAsync(inputs: readonly UplinkInput[]): Promise<DecodeOutcome[]>;
  decodeDownlink(input: DownlinkDecodeInput): DecodeOutcome;
  encodeDownlink(input: DownlinkEncodeInput): EncodeOutcome;
  normalizeUplink(input: NormalizeInput): DecodeOutcome;
}
