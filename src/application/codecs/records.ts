/**
 * Records: how results leave a codec's isolate (and the codec process). One record is a JSON
 * array `[kind, ...]`; a batch is a JSON array of records, one per frame, in order. Whoever
 * parses them treats them as untrusted input: any shape other than these is a sandbox error.
 *
 *   [0, data, warnings]            decoded (or normalised) data
 *   [0, bytes, fPort|null, warnings] encoded downlink
 *   [1, errors, warnings]          the codec's own errors
 *   [2, message]                   the codec threw
 *   [3, message]                   invalid result (shape, or not JSON-compatible)
 *   [4, message]                   output over the cap
 *   [5, message]                   the codec has no function for this call
 *   [6, code, message]             failed outside the codec's code (time or memory cap, input
 *                                  refused, sandbox error): written by the host, not the harness
 */
import type { CodecErrorCode } from './errors.js';
import type { CodecFailure, DecodeOutcome, EncodeOutcome, JsonValue } from './types.js';

export const RECORD = {
  ok: 0,
  reportedErrors: 1,
  threw: 2,
  invalidResult: 3,
  outputTooLarge: 4,
  functionMissing: 5,
  hostFailure: 6,
} as const;

const HARNESS_FAILURES: Record<number, CodecErrorCode> = {
  [RECORD.threw]: 'CODEC_THREW',
  [RECORD.invalidResult]: 'CODEC_INVALID_RESULT',
  [RECORD.outputTooLarge]: 'CODEC_OUTPUT_TOO_LARGE',
  [RECORD.functionMissing]: 'CODEC_FUNCTION_MISSING',
};

const CODES: ReadonlySet<string> = new Set<CodecErrorCode>([
  'CODEC_COMPILE_ERROR',
  'CODEC_FUNCTION_MISSING',
  'CODEC_THREW',
  'CODEC_REPORTED_ERRORS',
  'CODEC_TIMEOUT',
  'CODEC_MEMORY_LIMIT',
  'CODEC_INVALID_RESULT',
  'CODEC_OUTPUT_TOO_LARGE',
  'CODEC_INVALID_INPUT',
  'CODEC_SANDBOX_ERROR',
]);

type Failed = { ok: false; error: CodecFailure; warnings: string[] };

export function failed(error: CodecFailure, warnings: string[] = []): Failed {
  return { ok: false, error, warnings };
}

/** Parses record text; undefined when it is not a JSON array. */
export function parseRecordText(raw: unknown): unknown[] | undefined {
  if (typeof raw !== 'string') return undefined;
  let value: unknown;
  try {
    // The harness refuses "__proto__" keys already; this guards the host whatever happened.
    value = raw.includes('"__proto__"') ? JSON.parse(raw, dropProtoKeys) : JSON.parse(raw);
  } catch {
    return undefined;
  }
  return Array.isArray(value) ? value : undefined;
}

function dropProtoKeys(key: string, value: unknown): unknown {
  return key === '__proto__' ? undefined : value;
}

function isStringArray(value: unknown): value is string[] {
  return Array.isArray(value) && value.every((item) => typeof item === 'string');
}

export function malformed(): CodecFailure {
  return { code: 'CODEC_SANDBOX_ERROR', message: 'the sandbox returned a malformed record' };
}

export function decodeOutcome(record: unknown[] | undefined): DecodeOutcome {
  if (record === undefined) return failed(malformed());
  if (record[0] === RECORD.ok) {
    const warnings = record[2];
    if (record.length !== 3 || !isStringArray(warnings)) return failed(malformed());
    return { ok: true, data: record[1] as JsonValue, warnings };
  }
  return failedRecord(record);
}

export function encodeOutcome(
  record: unknown[] | undefined,
  inputFPort: number | undefined,
): EncodeOutcome {
  if (record === undefined) return failed(malformed());
  if (record[0] !== RECORD.ok) return failedRecord(record);
  const [, bytes, fPort, warnings] = record;
  if (
    record.length !== 4 ||
    !Array.isArray(bytes) ||
    !bytes.every((b) => typeof b === 'number' && b === (b & 255)) ||
    !isStringArray(warnings)
  ) {
    return failed(malformed());
  }
  const port = fPort === null ? inputFPort : fPort;
  if (port === undefined) {
    return failed({
      code: 'CODEC_INVALID_RESULT',
      message: 'the codec returned no fPort and the request gave none',
    });
  }
  if (!isApplicationFPort(port)) {
    return failed({
      code: 'CODEC_INVALID_RESULT',
      message: `the codec returned fPort ${String(port)}, not an application port 1-223`,
    });
  }
  return { ok: true, bytes: Uint8Array.from(bytes as number[]), fPort: port, warnings };
}

export function isApplicationFPort(value: unknown): value is number {
  return typeof value === 'number' && Number.isInteger(value) && value >= 1 && value <= 223;
}

function failedRecord(record: unknown[]): Failed {
  const kind = record[0];
  if (kind === RECORD.reportedErrors) {
    const [, errors, warnings] = record;
    if (record.length !== 3 || !isStringArray(errors) || !isStringArray(warnings)) {
      return failed(malformed());
    }
    return failed(
      {
        code: 'CODEC_REPORTED_ERRORS',
        message: `the codec reported errors: ${errors.join('; ')}`,
        errors,
      },
      warnings,
    );
  }
  if (kind === RECORD.hostFailure) {
    const [, code, message] = record;
    if (record.length !== 3 || typeof code !== 'string' || !CODES.has(code)) {
      return failed(malformed());
    }
    if (typeof message !== 'string') return failed(malformed());
    return failed({ code: code as CodecErrorCode, message });
  }
  const code = typeof kind === 'number' ? HARNESS_FAILURES[kind] : undefined;
  const message = record[1];
  if (code === undefined || typeof message !== 'string' || record.length !== 2) {
    return failed(malformed());
  }
  return failed({ code, message });
}

/** The record text of a failure decided by the host. */
export function failureRecordText(failure: CodecFailure): string {
  if (failure.code === 'CODEC_REPORTED_ERRORS') {
    return JSON.stringify([RECORD.reportedErrors, failure.errors ?? [failure.message], []]);
  }
  return JSON.stringify([RECORD.hostFailure, failure.code, failure.message]);
}

/** The outcomes of a batch's record text; every frame fails when the text is malformed. */
export function outcomesFromRecordsText(text: unknown, count: number): DecodeOutcome[] {
  const records = parseRecordText(text);
  if (records === undefined || records.length !== count) {
    const failure = failed(malformed());
    return Array.from({ length: count }, () => failure);
  }
  return records.map((record) => decodeOutcome(Array.isArray(record) ? record : undefined));
}
