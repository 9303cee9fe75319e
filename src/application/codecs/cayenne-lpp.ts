/**
 * Cayenne Low Power Payload (myDevices "Cayenne LPP", the IPSO types a LoRaWAN device sends as
 * `channel, type, value...`). The JSON shape is ChirpStack's: one object per sensor kind, keyed
 * by channel, e.g. `{"temperatureSensor": {"3": 27.2}, "gpsLocation": {"1": {...}}}`.
 */
import type { JsonValue } from './types.js';

type Scalar = { kind: 'scalar'; bytes: number; signed: boolean; scale: number };
type Vector = {
  kind: 'vector';
  bytes: number;
  signed: boolean;
  scales: readonly number[];
  fields: readonly string[];
};

interface LppType {
  type: number;
  name: string;
  value: Scalar | Vector;
}

const scalar = (bytes: number, signed: boolean, scale: number): Scalar => ({
  kind: 'scalar',
  bytes,
  signed,
  scale,
});

/** Data types, in the order ChirpStack writes them. Sizes are per value, big-endian. */
export const CAYENNE_LPP_TYPES: readonly LppType[] = [
  { type: 0, name: 'digitalInput', value: scalar(1, false, 1) },
  { type: 1, name: 'digitalOutput', value: scalar(1, false, 1) },
  { type: 2, name: 'analogInput', value: scalar(2, true, 100) },
  { type: 3, name: 'analogOutput', value: scalar(2, true, 100) },
  { type: 101, name: 'illuminanceSensor', value: scalar(2, false, 1) },
  { type: 102, name: 'presenceSensor', value: scalar(1, false, 1) },
  { type: 103, name: 'temperatureSensor', value: scalar(2, true, 10) },
  { type: 104, name: 'humiditySensor', value: scalar(1, false, 2) },
  {
    type: 113,
    name: 'accelerometer',
    value: {
      kind: 'vector',
      bytes: 2,
      signed: true,
      scales: [1000, 1000, 1000],
      fields: ['x', 'y', 'z'],
    },
  },
  { type: 115, name: 'barometer', value: scalar(2, false, 10) },
  {
    type: 134,
    name: 'gyrometer',
    value: {
      kind: 'vector',
      bytes: 2,
      signed: true,
      scales: [100, 100, 100],
      fields: ['x', 'y', 'z'],
    },
  },
  {
    type: 136,
    name: 'gpsLocation',
    value: {
      kind: 'vector',
      bytes: 3,
      signed: true,
      scales: [10000, 10000, 100],
      fields: ['latitude', 'longitude', 'altitude'],
    },
  },
];

const BY_TYPE = new Map(CAYENNE_LPP_TYPES.map((t) => [t.type, t]));
const BY_NAME = new Map(CAYENNE_LPP_TYPES.map((t) => [t.name, t]));

export type LppResult<T> = { ok: true; value: T } | { ok: false; error: string };

function valueSize(value: Scalar | Vector): number {
  return value.kind === 'scalar' ? value.bytes : value.bytes * value.fields.length;
}

function readInt(bytes: Uint8Array, offset: number, size: number, signed: boolean): number {
  let n = 0;
  for (let i = 0; i < size; i++) n = n * 256 + bytes[offset + i]!;
  const half = 2 ** (8 * size - 1);
  return signed && n >= half ? n - 2 * half : n;
}

function writeInt(out: number[], n: number, size: number): void {
  const unsigned = n < 0 ? n + 2 ** (8 * size) : n;
  for (let i = size - 1; i >= 0; i--) out.push(Math.floor(unsigned / 2 ** (8 * i)) % 256);
}

/** Decodes an LPP payload. A truncated entry or an unknown type is an error, never a guess. */
export function decodeCayenneLpp(bytes: Uint8Array): LppResult<{ [name: string]: JsonValue }> {
  const out: { [name: string]: { [channel: string]: JsonValue } } = {};
  let offset = 0;
  while (offset < bytes.length) {
    if (bytes.length - offset < 2) {
      return {
        ok: false,
        error: `Cayenne LPP: 1 byte left at offset ${offset}, an entry needs at least 3`,
      };
    }
    const channel = bytes[offset]!;
    const typeCode = bytes[offset + 1]!;
    const type = BY_TYPE.get(typeCode);
    if (type === undefined) {
      return {
        ok: false,
        error: `Cayenne LPP: unknown data type ${typeCode} at offset ${offset + 1}`,
      };
    }
    const size = valueSize(type.value);
    if (bytes.length - offset - 2 < size) {
      return {
        ok: false,
        error: `Cayenne LPP: ${type.name} on channel ${channel} needs ${size} bytes, ${bytes.length - offset - 2} left`,
      };
    }
    offset += 2;
    let value: JsonValue;
    const v = type.value;
    if (v.kind === 'scalar') {
      value = readInt(bytes, offset, v.bytes, v.signed) / v.scale;
    } else {
      const fields: { [field: string]: JsonValue } = {};
      v.fields.forEach((field, i) => {
        fields[field] = readInt(bytes, offset + i * v.bytes, v.bytes, v.signed) / v.scales[i]!;
      });
      value = fields;
    }
    offset += size;
    out[type.name] ??= {};
    out[type.name]![String(channel)] = value;
  }
  return { ok: true, value: out };
}

function encodeNumber(
  raw: unknown,
  bytes: number,
  signed: boolean,
  scale: number,
  what: string,
): LppResult<number> {
  if (typeof raw !== 'number' || !Number.isFinite(raw)) {
    return { ok: false, error: `${what} must be a finite number` };
  }
  const n = Math.round(raw * scale);
  const span = 2 ** (8 * bytes);
  const min = signed ? -span / 2 : 0;
  const max = signed ? span / 2 - 1 : span - 1;
  if (n < min || n > max) {
    return {
      ok: false,
      error: `${what} = ${raw} is out of range (${min / scale} to ${max / scale})`,
    };
  }
  return { ok: true, value: n };
}

/** Encodes the JSON shape `decodeCayenneLpp` returns (values rounded to the type's resolution). */
export function encodeCayenneLpp(data: unknown): LppResult<Uint8Array> {
  if (typeof data !== 'object' || data === null || Array.isArray(data)) {
    return {
      ok: false,
      error: 'Cayenne LPP data must be an object such as {"temperatureSensor": {"1": 21.5}}',
    };
  }
  const entries = data as Record<string, unknown>;
  for (const name of Object.keys(entries)) {
    if (!BY_NAME.has(name))
      return { ok: false, error: `Cayenne LPP: unknown sensor kind "${name}"` };
  }
  const out: number[] = [];
  for (const type of CAYENNE_LPP_TYPES) {
    const byChannel = entries[type.name];
    if (byChannel === undefined) continue;
    if (typeof byChannel !== 'object' || byChannel === null || Array.isArray(byChannel)) {
      return { ok: false, error: `${type.name} must be an object keyed by channel` };
    }
    const channels = Object.keys(byChannel)
      .map((key) => ({ key, channel: Number(key) }))
      .sort((a, b) => a.channel - b.channel);
    for (const { key, channel } of channels) {
      if (!/^\d+$/.test(key) || channel > 255) {
        return { ok: false, error: `${type.name}: channel "${key}" is not an integer 0-255` };
      }
      const raw = (byChannel as Record<string, unknown>)[key];
      out.push(channel, type.type);
      const v = type.value;
      if (v.kind === 'scalar') {
        const n = encodeNumber(raw, v.bytes, v.signed, v.scale, `${type.name}.${key}`);
        if (!n.ok) return n;
        writeInt(out, n.value, v.bytes);
        continue;
      }
      if (typeof raw !== 'object' || raw === null) {
        return {
          ok: false,
          error: `${type.name}.${key} must be an object {${v.fields.join(', ')}}`,
        };
      }
      for (let i = 0; i < v.fields.length; i++) {
        const field = v.fields[i]!;
        const n = encodeNumber(
          (raw as Record<string, unknown>)[field],
          v.bytes,
          v.signed,
          v.scales[i]!,
          `${type.name}.${key}.${field}`,
        );
        if (!n.ok) return n;
        writeInt(out, n.value, v.bytes);
      }
    }
  }
  return { ok: true, value: Uint8Array.from(out) };
}
