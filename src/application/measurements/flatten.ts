import { escapeSegment } from './field-path.js';

/**
 * One stored value of a decoded object. Numbers and booleans are numeric (a boolean is 1 or 0,
 * so that `avg` gives the share of `true`); strings are text. Null, non-finite numbers and
 * anything that is not JSON (functions, symbols, bigints) are skipped.
 */
export interface FlatMeasurement {
  field: string;
  numberValue: number | null;
  textValue: string | null;
}

export interface FlattenLimits {
  /** Nesting levels followed below the top object (default 8): deeper values are skipped. */
  maxDepth?: number;
  /** Values kept per decoded object (default 256): the rest is skipped, `truncated` says so. */
  maxRows?: number;
  /** Longest field path kept, characters (default 200). */
  maxFieldLength?: number;
  /** Longest text value kept, characters (default 1024); longer texts are skipped, not cut. */
  maxTextLength?: number;
}

export interface FlattenResult {
  measurements: FlatMeasurement[];
  /** Values left out: too deep, path or text too long, null, non-finite or not JSON. */
  skipped: number;
  /** True when `maxRows` stopped the walk (the object held more values). */
  truncated: boolean;
}

export const DEFAULT_FLATTEN_LIMITS: Required<FlattenLimits> = {
  maxDepth: 8,
  maxRows: 256,
  maxFieldLength: 200,
  maxTextLength: 1024,
};

/**
 * The values of a decoded object as rows, in walk order (keys in insertion order, arrays by
 * index): nested objects and arrays become dotted paths (`field-path.ts`). Only own enumerable
 * keys are read, so a hostile `__proto__` key is just a key. Never throws on any input; a
 * non-object input gives no rows.
 */
export function flattenDecoded(object: unknown, limits?: FlattenLimits): FlattenResult {
  const { maxDepth, maxRows, maxFieldLength, maxTextLength } = {
    ...DEFAULT_FLATTEN_LIMITS,
    ...limits,
  };
  const result: FlattenResult = { measurements: [], skipped: 0, truncated: false };
  if (!isContainer(object)) return result;

  const walk = (value: unknown, path: string, depth: number): void => {
    if (result.truncated) return;
    if (isContainer(value)) {
      if (depth > maxDepth) {
        result.skipped += 1;
        return;
      }
      const entries: Array<[string, unknown]> = Array.isArray(value)
        ? value.map((item, index) => [String(index), item])
        : Object.entries(value);
      for (const [key, item] of entries) {
        const segment = escapeSegment(key);
        walk(item, depth === 0 ? segment : `${path}.${segment}`, depth + 1);
        if (result.truncated) return;
      }
      return;
    }
    const measurement = toMeasurement(value, path, maxFieldLength, maxTextLength);
    if (measurement === undefined) {
      result.skipped += 1;
    } else if (result.measurements.length >= maxRows) {
      result.truncated = true;
    } else {
      result.measurements.push(measurement);
    }
  };
  walk(object, '', 0);
  return result;
}

function isContainer(value: unknown): value is Record<string, unknown> | unknown[] {
  return typeof value === 'object' && value !== null;
}

function toMeasurement(
  value: unknown,
  field: string,
  maxFieldLength: number,
  maxTextLength: number,
): FlatMeasurement | undefined {
  if (field === '' || field.length > maxFieldLength) return undefined;
  switch (typeof value) {
    case 'number':
      return Number.isFinite(value) ? { field, numberValue: value, textValue: null } : undefined;
    case 'boolean':
      return { field, numberValue: value ? 1 : 0, textValue: null };
    case 'string':
      return value.length <= maxTextLength
        ? { field, numberValue: null, textValue: value }
        : undefined;
    default:
      return undefined;
  }
}
