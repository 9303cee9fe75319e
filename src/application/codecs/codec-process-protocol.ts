// Messages between CodecProcess (the server) and its child process (codec-process-main.ts).
// Sent over the IPC channel with `serialization: 'advanced'`, so Uint8Arrays cross as such.
import type { CodecErrorCode } from './errors.js';
import type { CodecLimits } from './sandboxed-codec.js';
import type {
  CodecSignatures,
  DecodeOutcome,
  DownlinkDecodeInput,
  DownlinkEncodeInput,
  EncodeOutcome,
  NormalizeInput,
  UplinkInput,
} from './types.js';

/** Options of the child's CodecEngine. */
export interface ChildEngineOptions extends CodecLimits {
  maxIsolates: number;
  maxSourceChars: number;
}

interface RequestBase {
  id: number;
  codecId: string;
  /** Sent when the child may not have the codec yet (first use, or after a restart). */
  source?: string;
}

export type ToChild =
  | (RequestBase & { op: 'load' })
  | (RequestBase & { op: 'decodeUplink'; input: UplinkInput })
  | (RequestBase & { op: 'decodeMany'; inputs: UplinkInput[] })
  | (RequestBase & { op: 'decodeDownlink'; input: DownlinkDecodeInput })
  | (RequestBase & { op: 'encodeDownlink'; input: DownlinkEncodeInput })
  | (RequestBase & { op: 'normalizeUplink'; input: NormalizeInput });

export type FromChild =
  | { type: 'ready' }
  | { type: 'loaded'; id: number; signatures: CodecSignatures }
  | { type: 'outcome'; id: number; outcome: DecodeOutcome | EncodeOutcome }
  | { type: 'outcomes'; id: number; outcomes: DecodeOutcome[] }
  /** A batch as record text (records.ts), parsed once by the parent. */
  | { type: 'records'; id: number; text: string }
  | { type: 'failed'; id: number; code: CodecErrorCode; message: string };
