export type { Catalogue, CatalogueEntry, CodecReference } from './catalogue.js';
export type { CodecExample, CodecFunction } from './codec-definition.js';
export {
  DeviceRepositoryError,
  type DeviceRepositoryErrorCode,
  type ImportFailure,
  type ImportFailureCode,
} from './errors.js';
export type { ExampleCodec } from './example-runner.js';
export {
  type CodecLoader,
  type CodecSummary,
  type ImportOptions,
  type ImportProgress,
  type ImportReport,
  importDeviceRepository,
} from './importer.js';
export { jsonDifferences } from './json-compare.js';
