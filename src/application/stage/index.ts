export {
  APPLICATION_STAGE_CURSOR,
  ApplicationStage,
  type ApplicationStageCounters,
  type ApplicationStageOptions,
  type DecodedBatchListener,
  type DecodedListener,
  type DecodedUplink,
} from './application-stage.js';
export { UPLINK_CODEC_LOG_CODE } from './codec-log-event.js';
export { type DeviceCodec, DeviceCodecLookup } from './device-codecs.js';
export { type ActiveCodecSettings, isActiveCodec, PayloadCodecs } from './payload-codecs.js';
export {
  type ApplicationCodecs,
  type ApplicationStageSettings,
  type RunningApplicationStage,
  startApplicationStage,
} from './start-stage.js';
