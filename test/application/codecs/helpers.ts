import assert from 'node:assert/strict';
import { readFileSync } from 'node:fs';
import type {
  CodecErrorCode,
  DecodeOutcome,
  EncodeOutcome,
  JsonValue,
} from '../../../src/application/codecs/index.js';
import { bytesToHex, hexToBytes } from '../../../src/lorawan/bytes.js';

/** The source of a vendor-style test codec in ./vendor/. */
export function vendorCodec(file: string): string {
  return readFileSync(new URL(`./vendor/${file}`, import.meta.url), 'utf8');
}

export function vendorCodecPath(file: string): string {
  return new URL(`./vendor/${file}`, import.meta.url).pathname;
}

/** Hex with spaces between fields, as the vectors are written; a typo fails loudly. */
export function hex(text: string): Uint8Array {
  return hexToBytes(text.replace(/\s+/g, ''));
}

export const toHex = bytesToHex;

export function assertData(outcome: DecodeOutcome, data: JsonValue, warnings: string[] = []): void {
  assert.ok(outcome.ok, `expected data, got ${JSON.stringify(outcome)}`);
  assert.deepEqual(outcome.data, data);
  assert.deepEqual(outcome.warnings, warnings);
}

export function assertFailure(
  outcome: DecodeOutcome | EncodeOutcome,
  code: CodecErrorCode,
  message?: RegExp | string,
): void {
  assert.equal(outcome.ok, false, `expected ${code}, got ${JSON.stringify(outcome)}`);
  if (outcome.ok) return;
  assert.equal(outcome.error.code, code, outcome.error.message);
  if (typeof message === 'string') assert.equal(outcome.error.message, message);
  else if (message !== undefined) assert.match(outcome.error.message, message);
}

export function assertReportedErrors(
  outcome: DecodeOutcome | EncodeOutcome,
  errors: string[],
  warnings: string[] = [],
): void {
  assertFailure(outcome, 'CODEC_REPORTED_ERRORS');
  if (outcome.ok) return;
  assert.deepEqual(outcome.error.errors, errors);
  assert.deepEqual(outcome.warnings, warnings);
}

export function assertEncoded(
  outcome: EncodeOutcome,
  bytesHex: string,
  fPort: number,
  warnings: string[] = [],
): void {
  assert.ok(outcome.ok, `expected bytes, got ${JSON.stringify(outcome)}`);
  assert.equal(toHex(outcome.bytes), bytesHex.replace(/\s+/g, ''));
  assert.equal(outcome.fPort, fPort);
  assert.deepEqual(outcome.warnings, warnings);
}
