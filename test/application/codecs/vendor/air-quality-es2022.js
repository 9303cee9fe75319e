// biome-ignore-all lint: a vendor-style codec, written the way device makers write them
/**
 * AirSense Pro (fictional) indoor air quality sensor. TS013 codec written in ES2022:
 * classes with private fields, a Map registry, BigInt for 48-bit counters, ??=, at(),
 * Object.fromEntries, optional catch binding.
 *
 * Every uplink (fPort 3) is a TLV list: type(1) then a value whose size depends on the type.
 * normalizeUplink maps the result to the TTN normalized payload (air.*).
 */

class Reader {
  #bytes;
  #offset = 0;

  constructor(bytes) {
    this.#bytes = Uint8Array.from(bytes);
  }

  get remaining() {
    return this.#bytes.length - this.#offset;
  }

  get offset() {
    return this.#offset;
  }

  u8() {
    this.#need(1);
    return this.#bytes[this.#offset++];
  }

  uint(size) {
    this.#need(size);
    let value = 0n;
    for (let i = 0; i < size; i++) value = (value << 8n) | BigInt(this.#bytes[this.#offset++]);
    return value;
  }

  int(size) {
    const value = this.uint(size);
    const half = 1n << BigInt(size * 8 - 1);
    return value >= half ? value - (half << 1n) : value;
  }

  #need(size) {
    if (this.remaining < size) {
      throw new RangeError(
        `need ${size} byte(s) at offset ${this.#offset}, ${this.remaining} left`,
      );
    }
  }
}

const FIELDS = new Map([
  [0x01, { name: 'temperature', read: (r) => Number(r.int(2)) / 10, unit: '°C' }],
  [0x02, { name: 'humidity', read: (r) => r.u8() / 2, unit: '%' }],
  [0x03, { name: 'co2', read: (r) => Number(r.uint(2)), unit: 'ppm' }],
  [0x04, { name: 'pm2_5', read: (r) => Number(r.uint(2)) / 10, unit: 'µg/m³' }],
  [0x05, { name: 'pm10', read: (r) => Number(r.uint(2)) / 10, unit: 'µg/m³' }],
  [0x06, { name: 'pressure', read: (r) => Number(r.uint(3)) / 100, unit: 'hPa' }],
  [0x07, { name: 'vocIndex', read: (r) => Number(r.uint(2)), unit: '' }],
  [0x08, { name: 'uptimeSeconds', read: (r) => Number(r.uint(6)), unit: 's' }],
]);

const CO2_LEVELS = [
  [800, 'good'],
  [1200, 'moderate'],
  [2000, 'poor'],
  [Infinity, 'bad'],
];

function co2Level(ppm) {
  return CO2_LEVELS.find(([limit]) => ppm < limit)?.at(1) ?? 'unknown';
}

function decodeUplink({ bytes, fPort }) {
  if (fPort !== 3) return { errors: [`unexpected fPort ${fPort}`] };
  const reader = new Reader(bytes);
  const values = [];
  const warnings = [];
  const seen = new Set();
  try {
    while (reader.remaining > 0) {
      const at = reader.offset;
      const type = reader.u8();
      const field = FIELDS.get(type);
      if (!field) {
        return {
          errors: [`unknown TLV type 0x${type.toString(16).padStart(2, '0')} at offset ${at}`],
          warnings,
        };
      }
      if (seen.has(field.name)) warnings.push(`${field.name} appears twice, the last value wins`);
      seen.add(field.name);
      values.push([field.name, field.read(reader)]);
    }
  } catch (error) {
    return { errors: [`truncated payload: ${error.message}`], warnings };
  }
  const data = Object.fromEntries(values);
  if (data.co2 !== undefined) data.co2Level = co2Level(data.co2);
  data.units ??= Object.fromEntries(
    values.map(([name]) => [name, [...FIELDS.values()].find((f) => f.name === name).unit]),
  );
  return { data, warnings, errors: [] };
}

function normalizeUplink({ data }) {
  const air = {};
  if (data.temperature !== undefined) air.temperature = data.temperature;
  if (data.humidity !== undefined) air.relativeHumidity = data.humidity;
  if (data.pressure !== undefined) air.pressure = data.pressure;
  if (data.co2 !== undefined) air.co2 = data.co2;
  const out = { air };
  if (data.pm2_5 !== undefined || data.pm10 !== undefined) {
    out.air.particulateMatter = { pm25: data.pm2_5, pm10: data.pm10 };
  }
  return { data: out, warnings: [], errors: [] };
}
