import { CliInputError } from './fail.js';
import { readInteger } from './frame-inputs.js';

/** Values of the API commands' options, checked before anything is sent. */

/** A finite number (`--latitude 45.5`). */
export function number(value: unknown, what: string): number {
  const n = Number(value);
  if (typeof value !== 'string' || value.trim() === '' || !Number.isFinite(n)) {
    throw new CliInputError(`${what} must be a number, got ${String(value)}`);
  }
  return n;
}

/** A JSON object given on the command line (`--json-settings`). */
export function jsonObject(value: unknown, what: string): Record<string, unknown> {
  let parsed: unknown;
  try {
    parsed = JSON.parse(String(value));
  } catch (error) {
    throw new CliInputError(`${what} must be a JSON object: ${(error as Error).message}`);
  }
  if (typeof parsed !== 'object' || parsed === null || Array.isArray(parsed)) {
    throw new CliInputError(`${what} must be a JSON object, got ${String(value)}`);
  }
  return parsed as Record<string, unknown>;
}

/** `{[field]: value}` when the option was given, else nothing: for building bodies. */
export function optional(field: string, value: unknown): Record<string, unknown> {
  return value === undefined ? {} : { [field]: value };
}

/** An integer, or `none` for "no limit" (null). */
export function integerOrNone(value: unknown, what: string): number | null {
  return value === 'none' ? null : readInteger(value, 31, what);
}

/** An id, or `none` to remove the reference (null). */
export function idOrNone(value: unknown): string | null {
  return value === 'none' ? null : String(value);
}

/** commander's collector of a repeated `--tag key=value`. */
export function collectTag(
  value: string,
  previous: Record<string, string> | undefined,
): Record<string, string> {
  const equals = value.indexOf('=');
  if (equals <= 0) throw new CliInputError(`--tag must be key=value, got "${value}"`);
  return { ...previous, [value.slice(0, equals)]: value.slice(equals + 1) };
}

/** The `tags` of a body: the `--tag` options, `{}` with `--no-tags`, else nothing. */
export function tagsField(o: Record<string, unknown>): Record<string, unknown> {
  if (o['tags'] === false) return { tags: {} };
  return optional('tags', o['tag']);
}

/** A `--location`: `latitude,longitude[,altitude]`; `none` removes it (null). */
export function location(value: unknown, what: string): Record<string, number> | null {
  if (value === 'none') return null;
  const parts = String(value).split(',');
  if (parts.length < 2 || parts.length > 3) {
    throw new CliInputError(
      `${what} must be latitude,longitude[,altitude] or none, got ${String(value)}`,
    );
  }
  const [latitude, longitude, altitude] = parts;
  return {
    latitude: number(latitude, `${what} latitude`),
    longitude: number(longitude, `${what} longitude`),
    ...(altitude === undefined ? {} : { altitude: number(altitude, `${what} altitude`) }),
  };
}

/** A path segment. */
export function segment(value: string): string {
  return encodeURIComponent(value);
}
