// biome-ignore-all lint: a vendor-style codec, written the way device makers write them
/*
 * EM-3P three-phase energy meter interface (fictional). TS013 decodeUplink.
 *
 * fPort 4: instantaneous values, IEEE 754 float32 big endian:
 *   voltage L1 L2 L3 (V), current L1 L2 L3 (A), frequency (Hz)  -> 7 floats, 28 bytes
 * fPort 5: counters:
 *   active energy import Wh (u32 BE), export Wh (u32 BE), reactive varh (u32 BE),
 *   power factor x 1000 (i16 BE), tariff (1)
 * fPort 6: the same floats as fPort 4, little endian (firmware 1.x sends these)
 */

// Classic hand-written float decoder, as found in many vendor codecs.
function bytesToFloat(b0, b1, b2, b3) {
  var bits = (b0 << 24) | (b1 << 16) | (b2 << 8) | b3;
  var sign = bits >>> 31 === 0 ? 1.0 : -1.0;
  var e = (bits >>> 23) & 0xff;
  var m = e === 0 ? (bits & 0x7fffff) << 1 : (bits & 0x7fffff) | 0x800000;
  if (e === 0xff) {
    return m & 0x7fffff ? NaN : sign * Infinity;
  }
  return sign * m * Math.pow(2, e - 150);
}

function round(value, digits) {
  var f = Math.pow(10, digits);
  return Math.round(value * f) / f;
}

function readFloats(bytes, littleEndian) {
  var values = [];
  for (var i = 0; i + 3 < bytes.length; i += 4) {
    var v = littleEndian
      ? bytesToFloat(bytes[i + 3], bytes[i + 2], bytes[i + 1], bytes[i])
      : bytesToFloat(bytes[i], bytes[i + 1], bytes[i + 2], bytes[i + 3]);
    values.push(v);
  }
  return values;
}

function instantaneous(bytes, littleEndian) {
  if (bytes.length !== 28) {
    return { errors: ['expected 28 bytes of float32 values, got ' + bytes.length] };
  }
  var f = readFloats(bytes, littleEndian);
  for (var i = 0; i < f.length; i++) {
    if (!isFinite(f[i])) {
      return { errors: ['value ' + i + ' is not a finite number'] };
    }
  }
  var phases = [];
  for (var p = 0; p < 3; p++) {
    phases.push({
      phase: 'L' + (p + 1),
      voltage: round(f[p], 2),
      current: round(f[p + 3], 3),
      apparentPower: round(f[p] * f[p + 3], 1),
    });
  }
  var warnings = [];
  if (Math.abs(f[6] - 50) > 0.5) warnings.push('grid frequency out of tolerance');
  return {
    data: { phases: phases, frequency: round(f[6], 3) },
    warnings: warnings,
    errors: [],
  };
}

function u32(bytes, i) {
  return bytes[i] * 16777216 + (bytes[i + 1] << 16) + (bytes[i + 2] << 8) + bytes[i + 3];
}

function counters(bytes) {
  if (bytes.length !== 15) {
    return { errors: ['expected 15 bytes, got ' + bytes.length] };
  }
  var pf = (bytes[12] << 8) | bytes[13];
  if (pf & 0x8000) pf = pf - 0x10000;
  return {
    data: {
      activeImportKWh: u32(bytes, 0) / 1000,
      activeExportKWh: u32(bytes, 4) / 1000,
      reactiveKvarh: u32(bytes, 8) / 1000,
      powerFactor: pf / 1000,
      tariff: bytes[14] === 1 ? 'peak' : bytes[14] === 2 ? 'off-peak' : 'unknown',
    },
    warnings: [],
    errors: [],
  };
}

function decodeUplink(input) {
  switch (input.fPort) {
    case 4:
      return instantaneous(input.bytes, false);
    case 5:
      return counters(input.bytes);
    case 6:
      return instantaneous(input.bytes, true);
  }
  return { errors: ['unknown fPort ' + input.fPort] };
}
