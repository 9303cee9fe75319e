export type { AdrAlgorithm, AdrDecision, AdrInput, AdrProfile } from './algorithm.js';
export {
  adrDataRateRange,
  adrDecisionChanges,
  DEFAULT_INSTALLATION_MARGIN_DB,
  MAX_ADR_NB_TRANS,
  txPowerIndexRange,
} from './algorithm.js';
export {
  ADR_STEP_DB,
  defaultAdr,
  maxSnrAtTxPowerDb,
  nbTransForLossRate,
} from './default-adr.js';
export type { UplinkHistory, UplinkHistoryEntry } from './history.js';
export {
  ADR_HISTORY_LENGTH,
  appendUplink,
  packetLossRate,
  uplinkHistoryFromJson,
} from './history.js';
