import type { JsonValue } from '../types.js';
import { isJsonObject, show } from './json-values.js';

/** The three parts of a codec definition, each naming its JavaScript file. */
export const CODEC_FUNCTIONS = ['uplinkDecoder', 'downlinkEncoder', 'downlinkDecoder'] as const;
export type CodecFunction = (typeof CODEC_FUNCTIONS)[number];

/** What a decode example expects; absent `warnings`/`errors` mean none. */
export interface ExpectedDecode {
  /** Absent: the data is not compared. */
  data?: JsonValue;
  warnings: string[];
  errors: string[];
}

export interface ExpectedEncode {
  bytes?: number[];
  fPort?: number;
  warnings: string[];
  errors: string[];
}

export interface Frame {
  fPort: number;
  bytes: number[];
  /** ISO-8601, passed to decodeUplink as `recvTime` when the example gives one. */
  recvTime?: string;
}

export type CodecExample =
  | {
      function: 'uplinkDecoder';
      description: string;
      input: Frame;
      output: ExpectedDecode;
      /** Compared with `normalizeUplink` applied to the decoded data, its result as a list. */
      normalizedOutput?: ExpectedDecode;
    }
  | { function: 'downlinkDecoder'; description: string; input: Frame; output: ExpectedDecode }
  | {
      function: 'downlinkEncoder';
      description: string;
      input: { data: JsonValue; fPort?: number };
      output: ExpectedEncode;
    };

/** An example as read: runnable, or refused with the reason. */
export type ReadExample =
  | { ok: true; example: CodecExample }
  | { ok: false; description: string; reason: string };

export interface CodecPart {
  function: CodecFunction;
  fileName: string;
  examples: ReadExample[];
}

/** A part that is present but unusable (no `fileName`, `examples` not a list). */
export interface CodecPartProblem {
  function: CodecFunction;
  reason: string;
}

/**
 * The parts of a codec definition (`uplinkDecoder`, `downlinkEncoder`, `downlinkDecoder`,
 * each `{fileName, examples}`), with each example checked against the documented shape.
 */
export function readCodecDefinition(document: JsonValue): {
  parts: CodecPart[];
  problems: CodecPartProblem[];
} {
  const parts: CodecPart[] = [];
  const problems: CodecPartProblem[] = [];
  if (!isJsonObject(document)) {
    return {
      parts,
      problems: [{ function: 'uplinkDecoder', reason: 'the definition is not a map' }],
    };
  }
  for (const fn of CODEC_FUNCTIONS) {
    const part = document[fn];
    if (part === undefined || part === null) continue;
    if (!isJsonObject(part) || typeof part['fileName'] !== 'string' || part['fileName'] === '') {
      problems.push({ function: fn, reason: `${fn}.fileName is not a file name` });
      continue;
    }
    const examples = part['examples'] ?? [];
    if (!Array.isArray(examples)) {
      problems.push({ function: fn, reason: `${fn}.examples is not a list` });
      continue;
    }
    parts.push({
      function: fn,
      fileName: part['fileName'],
      examples: examples.map((example, i) => readExample(fn, example, i)),
    });
  }
  return { parts, problems };
}

class ShapeError extends Error {}

function readExample(fn: CodecFunction, value: JsonValue, index: number): ReadExample {
  const fallback = `${fn} example ${index + 1}`;
  const description =
    isJsonObject(value) && typeof value['description'] === 'string' && value['description'] !== ''
      ? value['description']
      : fallback;
  try {
    if (!isJsonObject(value)) throw new ShapeError('the example is not a map');
    const input = value['input'];
    const output = value['output'];
    if (!isJsonObject(input)) throw new ShapeError('input is not a map');
    if (!isJsonObject(output)) throw new ShapeError('output is not a map');
    switch (fn) {
      case 'uplinkDecoder': {
        const normalized = value['normalizedOutput'];
        return {
          ok: true,
          example: {
            function: fn,
            description,
            input: readFrame(input, true),
            output: readExpectedDecode(output, 'output'),
            ...(normalized === undefined || normalized === null
              ? {}
              : { normalizedOutput: readExpectedDecode(normalized, 'normalizedOutput') }),
          },
        };
      }
      case 'downlinkDecoder':
        return {
          ok: true,
          example: {
            function: fn,
            description,
            input: readFrame(input, false),
            output: readExpectedDecode(output, 'output'),
          },
        };
      case 'downlinkEncoder': {
        if (!('data' in input)) throw new ShapeError('input.data is missing');
        const fPort = input['fPort'];
        return {
          ok: true,
          example: {
            function: fn,
            description,
            input: {
              data: input['data']!,
              ...(fPort === undefined ? {} : { fPort: readFPort(fPort, 'input.fPort') }),
            },
            output: readExpectedEncode(output),
          },
        };
      }
    }
  } catch (error) {
    if (!(error instanceof ShapeError)) throw error;
    return { ok: false, description, reason: error.message };
  }
}

function readFrame(input: { [key: string]: JsonValue }, withTime: boolean): Frame {
  const frame: Frame = {
    fPort: readFPort(input['fPort'], 'input.fPort'),
    bytes: readBytes(input['bytes'], 'input.bytes'),
  };
  const recvTime = input['recvTime'];
  if (withTime && recvTime !== undefined) {
    if (typeof recvTime !== 'string' || Number.isNaN(Date.parse(recvTime))) {
      throw new ShapeError(`input.recvTime is not an ISO-8601 time: ${show(recvTime)}`);
    }
    frame.recvTime = recvTime;
  }
  return frame;
}

function readExpectedDecode(value: JsonValue, where: string): ExpectedDecode {
  if (!isJsonObject(value)) throw new ShapeError(`${where} is not a map`);
  return {
    ...('data' in value ? { data: value['data']! } : {}),
    warnings: readStrings(value['warnings'], `${where}.warnings`),
    errors: readStrings(value['errors'], `${where}.errors`),
  };
}

function readExpectedEncode(value: { [key: string]: JsonValue }): ExpectedEncode {
  const expected: ExpectedEncode = {
    warnings: readStrings(value['warnings'], 'output.warnings'),
    errors: readStrings(value['errors'], 'output.errors'),
  };
  if (value['bytes'] !== undefined) expected.bytes = readBytes(value['bytes'], 'output.bytes');
  if (value['fPort'] !== undefined) expected.fPort = readFPort(value['fPort'], 'output.fPort');
  if (expected.bytes === undefined && expected.errors.length === 0) {
    throw new ShapeError('output has neither bytes nor errors');
  }
  return expected;
}

function readFPort(value: JsonValue | undefined, where: string): number {
  if (typeof value !== 'number' || !Number.isInteger(value) || value < 0 || value > 255) {
    throw new ShapeError(`${where} is not an FPort (0-255): ${show(value)}`);
  }
  return value;
}

function readBytes(value: JsonValue | undefined, where: string): number[] {
  if (!Array.isArray(value))
    throw new ShapeError(`${where} is not a list of bytes: ${show(value)}`);
  value.forEach((byte, i) => {
    if (typeof byte !== 'number' || !Number.isInteger(byte) || byte < 0 || byte > 255) {
      throw new ShapeError(`${where}[${i}] is not a byte: ${show(byte)}`);
    }
  });
  return value as number[];
}

function readStrings(value: JsonValue | undefined, where: string): string[] {
  if (value === undefined || value === null) return [];
  if (!Array.isArray(value)) throw new ShapeError(`${where} is not a list: ${show(value)}`);
  // YAML writes `- 12` as a number; the codec's messages are strings.
  return value.map((item) => (typeof item === 'string' ? item : JSON.stringify(item)));
}
