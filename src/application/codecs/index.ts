export { CAYENNE_LPP_TYPES, decodeCayenneLpp, encodeCayenneLpp } from './cayenne-lpp.js';
export { CayenneLppCodec } from './cayenne-lpp-codec.js';
export {
  CodecEngine,
  type CodecEngineOptions,
  type CodecEngineStats,
  DEFAULT_CODEC_LIMITS,
  DEFAULT_MAX_ISOLATES,
  DEFAULT_MAX_SOURCE_CHARS,
} from './codec-engine.js';
export {
  CodecProcess,
  type CodecProcessOptions,
  type CodecProcessStats,
  RemoteCodec,
} from './codec-process.js';
export {
  type CodecLoader,
  DeviceRepositoryError,
  type ImportFailure,
  type ImportProgress,
  type ImportReport,
  importDeviceRepository,
} from './device-repository/index.js';
export { CodecError, type CodecErrorCode, isCodecError } from './errors.js';
export { type CodecLimits, SandboxedCodec } from './sandboxed-codec.js';
export type {
  CodecFailure,
  CodecSignatures,
  DecodeOutcome,
  DownlinkDecodeInput,
  DownlinkEncodeInput,
  EncodeOutcome,
  JsonValue,
  NormalizeInput,
  PayloadCodec,
  UplinkInput,
} from './types.js';
