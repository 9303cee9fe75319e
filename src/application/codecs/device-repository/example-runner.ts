import type {
  DecodeOutcome,
  DownlinkDecodeInput,
  DownlinkEncodeInput,
  EncodeOutcome,
  NormalizeInput,
  UplinkInput,
} from '../types.js';
import type { CodecExample, ExpectedDecode, ExpectedEncode } from './codec-definition.js';
import type { ImportFailureCode } from './errors.js';
import { jsonDifferences } from './json-compare.js';
import { show } from './json-values.js';

/** What running examples needs of a codec: a `RemoteCodec` (codec process) or an adapter. */
export interface ExampleCodec {
  decodeUplink(input: UplinkInput): Promise<DecodeOutcome>;
  decodeDownlink(input: DownlinkDecodeInput): Promise<DecodeOutcome>;
  encodeDownlink(input: DownlinkEncodeInput): Promise<EncodeOutcome>;
  normalizeUplink(input: NormalizeInput): Promise<DecodeOutcome>;
}

export type ExampleResult =
  | { passed: true }
  | {
      passed: false;
      code: Extract<ImportFailureCode, 'CODEC_FAILED' | 'OUTPUT_MISMATCH'>;
      reason: string;
    };

const PASSED: ExampleResult = { passed: true };

/**
 * The FPort given to an encode result when neither the example nor the codec gives one. TTN's
 * harness calls `encodeDownlink({data})` and compares what it returns; an encoder that returns
 * only `{bytes}` is valid there. The sandbox needs a port for a result, so it gets this one,
 * which is never compared (the example expects no FPort) and never shown to the codec.
 */
const UNCOMPARED_FPORT = 1;

/** Runs one example through the codec and compares its result (see `jsonDifferences`). */
export async function runExample(
  codec: ExampleCodec,
  example: CodecExample,
): Promise<ExampleResult> {
  switch (example.function) {
    case 'uplinkDecoder': {
      const { input } = example;
      const outcome = await codec.decodeUplink({
        bytes: Uint8Array.from(input.bytes),
        fPort: input.fPort,
        ...(input.recvTime === undefined ? {} : { recvTime: Date.parse(input.recvTime) }),
      });
      const result = compareDecode(outcome, example.output, '');
      if (!result.passed || example.normalizedOutput === undefined || !outcome.ok) return result;
      // As TTN's harness does, the normalizer gets the example's data (equal to the decoded data
      // here, except for a property the codec left undefined, which the example writes as null).
      const normalized = await codec.normalizeUplink({
        data: example.output.data ?? outcome.data,
      });
      return compareDecode(asList(normalized), example.normalizedOutput, 'normalizedOutput.');
    }
    case 'downlinkDecoder':
      return compareDecode(
        await codec.decodeDownlink({
          bytes: Uint8Array.from(example.input.bytes),
          fPort: example.input.fPort,
        }),
        example.output,
        '',
      );
    case 'downlinkEncoder': {
      const { input, output } = example;
      const portless = input.fPort === undefined && output.fPort === undefined;
      return compareEncode(
        await codec.encodeDownlink(portless ? { ...input, defaultFPort: UNCOMPARED_FPORT } : input),
        output,
      );
    }
  }
}

/**
 * TTN's harness compares normalized data as a list: `normalizeUplink` may return one measurement
 * (any truthy value that is not an array), which counts as a list of one.
 */
function asList(outcome: DecodeOutcome): DecodeOutcome {
  if (!outcome.ok || !outcome.data || Array.isArray(outcome.data)) return outcome;
  return { ...outcome, data: [outcome.data] };
}

/**
 * A decode matches when its errors and warnings equal the expected ones (absent counts as
 * empty) and, when the example gives `data` and the codec reported no errors, its data equals
 * the expected data. A codec that reports errors has its data dropped by the sandbox, so an
 * example expecting errors is compared on errors and warnings only.
 */
function compareDecode(
  outcome: DecodeOutcome,
  expected: ExpectedDecode,
  prefix: string,
): ExampleResult {
  const errors = reportedErrors(outcome);
  if (errors === undefined) return codecFailed(outcome, prefix);
  const mismatch =
    errorsMismatch(expected.errors, errors, prefix) ??
    listMismatch(expected.warnings, outcome.warnings, `${prefix}warnings`);
  if (mismatch !== undefined) return mismatch;
  if (!outcome.ok || expected.data === undefined) return PASSED;
  return differences(jsonDifferences(expected.data, outcome.data, `${prefix}data`));
}

function compareEncode(outcome: EncodeOutcome, expected: ExpectedEncode): ExampleResult {
  const errors = reportedErrors(outcome);
  if (errors === undefined) return codecFailed(outcome, '');
  const mismatch =
    errorsMismatch(expected.errors, errors, '') ??
    listMismatch(expected.warnings, outcome.warnings, 'warnings');
  if (mismatch !== undefined) return mismatch;
  if (!outcome.ok) return PASSED;
  const found: string[] = [];
  if (expected.bytes !== undefined) {
    found.push(...jsonDifferences(expected.bytes, Array.from(outcome.bytes), 'bytes'));
  }
  if (expected.fPort !== undefined && expected.fPort !== outcome.fPort) {
    found.push(`fPort: expected ${expected.fPort}, got ${outcome.fPort}`);
  }
  return differences(found);
}

/** The codec's own errors ([] when it returned a result); undefined when it failed otherwise. */
function reportedErrors(outcome: DecodeOutcome | EncodeOutcome): string[] | undefined {
  if (outcome.ok) return [];
  if (outcome.error.code === 'CODEC_REPORTED_ERRORS')
    return outcome.error.errors ?? [outcome.error.message];
  return undefined;
}

function codecFailed(outcome: DecodeOutcome | EncodeOutcome, prefix: string): ExampleResult {
  if (outcome.ok) return PASSED;
  const what = prefix === '' ? '' : `${prefix.slice(0, -1)}: `;
  return {
    passed: false,
    code: 'CODEC_FAILED',
    reason: `${what}${outcome.error.code}: ${outcome.error.message}`,
  };
}

function errorsMismatch(
  expected: string[],
  actual: string[],
  prefix: string,
): ExampleResult | undefined {
  if (expected.length > 0 && actual.length === 0) {
    return mismatch(`${prefix}errors: expected ${show(expected)}, the codec returned a result`);
  }
  if (expected.length === 0 && actual.length > 0) {
    return mismatch(`${prefix}errors: the codec reported ${show(actual)}`);
  }
  return listMismatch(expected, actual, `${prefix}errors`);
}

function listMismatch(
  expected: string[],
  actual: string[],
  path: string,
): ExampleResult | undefined {
  const found = jsonDifferences(expected, actual, path, 1);
  return found.length === 0
    ? undefined
    : mismatch(`${path}: expected ${show(expected)}, got ${show(actual)}`);
}

function differences(found: string[]): ExampleResult {
  return found.length === 0 ? PASSED : mismatch(found.join('; '));
}

function mismatch(reason: string): ExampleResult {
  return { passed: false, code: 'OUTPUT_MISMATCH', reason };
}
