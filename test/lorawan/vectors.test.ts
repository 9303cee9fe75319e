import assert from 'node:assert/strict';
import { readFileSync } from 'node:fs';
import { describe, it } from 'node:test';
import { loraTimeOnAirMs } from '../../src/lorawan/airtime.js';
import { bytesToHex, hexToBytes, parseHexUint } from '../../src/lorawan/bytes.js';
import { unwrapKey, wrapKey } from '../../src/lorawan/crypto/key-wrap.js';
import {
  deriveJoinServerKeys,
  deriveSessionKeys10,
  deriveSessionKeys11,
} from '../../src/lorawan/crypto/session-keys.js';
import { describeFrame, type FrameDescriptionInputs } from '../../src/lorawan/describe-frame.js';

interface Vector {
  id: string;
  kind: string;
  expect?: Record<string, unknown>;
  [key: string]: unknown;
}

const fixture = JSON.parse(
  readFileSync(new URL('../fixtures/lorawan-vectors.json', import.meta.url), 'utf8'),
) as { vectors: Vector[] };

function keyOf(vector: Vector, name: string): Uint8Array | undefined {
  const value = vector[name];
  return typeof value === 'string' ? hexToBytes(value) : undefined;
}

function frameInputs(vector: Vector): FrameDescriptionInputs {
  const inputs: FrameDescriptionInputs = {};
  for (const name of [
    'nwkSKey',
    'appSKey',
    'appKey',
    'nwkKey',
    'fNwkSIntKey',
    'sNwkSIntKey',
    'nwkSEncKey',
  ] as const) {
    const key = keyOf(vector, name);
    if (key !== undefined) inputs[name] = key;
  }
  for (const name of ['txDr', 'txCh', 'confFCnt'] as const) {
    const value = vector[name];
    if (typeof value === 'number') inputs[name] = value;
  }
  return inputs;
}

describe('public known-answer vectors', () => {
  assert.ok(fixture.vectors.length >= 17, 'the fixture holds every shared vector');
  for (const vector of fixture.vectors) {
    it(`${vector.id} (${vector.kind})`, () => {
      const expect = vector.expect ?? {};
      switch (vector.kind) {
        case 'data':
        case 'joinRequest':
        case 'joinAccept': {
          const described = describeFrame(hexToBytes(vector['phy'] as string), frameInputs(vector));
          for (const [field, value] of Object.entries(expect)) {
            assert.deepEqual(described[field], value, `${vector.id}: ${field}`);
          }
          break;
        }
        case 'sessionKeys': {
          const appKey = keyOf(vector, 'appKey')!;
          const joinNonce = vector['joinNonce'] as number;
          const devNonce = vector['devNonce'] as number;
          const keys =
            vector['lorawan'] === '1.0'
              ? deriveSessionKeys10(
                  appKey,
                  joinNonce,
                  parseHexUint(vector['netId'] as string, 3, 'NetID'),
                  devNonce,
                )
              : deriveSessionKeys11(
                  keyOf(vector, 'nwkKey')!,
                  appKey,
                  joinNonce,
                  vector['joinEui'] as string,
                  devNonce,
                );
          const hex = Object.fromEntries(Object.entries(keys).map(([k, v]) => [k, bytesToHex(v)]));
          assert.deepEqual(hex, expect);
          break;
        }
        case 'jsKeys': {
          const keys = deriveJoinServerKeys(keyOf(vector, 'nwkKey')!, vector['devEui'] as string);
          assert.deepEqual(
            { jsIntKey: bytesToHex(keys.jsIntKey), jsEncKey: bytesToHex(keys.jsEncKey) },
            expect,
          );
          break;
        }
        case 'airtime': {
          const ms = loraTimeOnAirMs({
            spreadingFactor: vector['sf'] as number,
            bandwidthKhz: vector['bw'] as number,
            payloadSize: vector['payloadSize'] as number,
            codingRate: vector['codingRate'] as '4/5',
            crc: vector['crc'] as boolean,
            preambleSymbols: vector['preamble'] as number,
          });
          assert.ok(Math.abs(ms - (vector['expectMs'] as number)) < 1e-9, `${ms} ms`);
          break;
        }
        case 'keyWrap': {
          const kek = keyOf(vector, 'kek')!;
          const key = keyOf(vector, 'key')!;
          const wrapped = wrapKey(kek, key);
          assert.equal(bytesToHex(wrapped), expect['wrapped']);
          assert.equal(bytesToHex(unwrapKey(kek, wrapped)), bytesToHex(key));
          break;
        }
        default:
          assert.fail(`vector kind ${vector.kind} has no check`);
      }
    });
  }
});
