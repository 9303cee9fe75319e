/**
 * Why a part of a Device Repository checkout could not be used, or why an example failed. These
 * are reported (one `ImportFailure` each), never thrown; only `DeviceRepositoryError` is thrown,
 * for a path that is not a checkout at all or a vendor it does not list (usage errors).
 */
export type ImportFailureCode =
  /** A file the repository refers to does not exist (or is not a regular file). */
  | 'FILE_MISSING'
  /** A file is larger than the importer reads. */
  | 'FILE_TOO_LARGE'
  /** A YAML file does not parse, or holds values JSON cannot carry (`.nan`, `.inf`). */
  | 'YAML_INVALID'
  /** A YAML file parses but does not have the shape the layout needs. */
  | 'DEFINITION_INVALID'
  /** A `fileName` or a symbolic link leads outside the vendor's folder (or the checkout). */
  | 'PATH_OUTSIDE_VENDOR'
  /** The codec's JavaScript does not compile, or its top-level code fails. */
  | 'CODEC_LOAD_FAILED'
  /** An example is not of the documented shape (e.g. `bytes` that are not bytes). */
  | 'EXAMPLE_INVALID'
  /** The codec failed (threw, timed out...) where the example expects a result. */
  | 'CODEC_FAILED'
  /** The codec's result differs from the example's expected output. */
  | 'OUTPUT_MISMATCH';

/**
 * One failure in the report. `codec` is `<vendor>/<codec id>` when a codec is concerned, else
 * the repository-relative path of the file at fault; `description` is the example's own
 * description, or names the part at fault (`codec definition`, `uplinkDecoder`...).
 */
export interface ImportFailure {
  codec: string;
  description: string;
  reason: string;
  code: ImportFailureCode;
}

export type DeviceRepositoryErrorCode = 'NOT_A_REPOSITORY' | 'UNKNOWN_VENDOR';

export class DeviceRepositoryError extends Error {
  override readonly name = 'DeviceRepositoryError';
  constructor(
    readonly code: DeviceRepositoryErrorCode,
    message: string,
  ) {
    super(message);
  }
}

/** A problem with one file, carried up to the place that knows which codec it concerns. */
export class RepositoryFileProblem extends Error {
  override readonly name = 'RepositoryFileProblem';
  constructor(
    readonly code: ImportFailureCode,
    message: string,
  ) {
    super(message);
  }
}
