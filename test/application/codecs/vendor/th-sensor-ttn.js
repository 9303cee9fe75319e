// biome-ignore-all lint: a vendor-style codec, written the way device makers write them
/**
 * Indoor temperature / humidity sensor "TH-20" (fictional vendor, TTN / TS013 style).
 *
 * Uplinks
 *   fPort 1  measurement: version(1) battery mV(2) temperature 0.01 C(2, signed)
 *            humidity 0.5 %(1) flags(1) [counter(2)]
 *   fPort 2  configuration report: tag 0x02, interval min(2), high C(1, signed),
 *            low C(1, signed), options(1)
 *   fPort 3  alarm: type(1) temperature 0.01 C(2, signed)
 * Downlinks (fPort 10), commands may be chained
 *   0x01 interval(2)   0x02 high(1) low(1)   0x03 led(1)
 */

var ALARM_TYPES = {
  1: 'temperature_high',
  2: 'temperature_low',
  3: 'sensor_fault',
};

function readUInt16BE(bytes, offset) {
  return (bytes[offset] << 8) | bytes[offset + 1];
}

function readInt16BE(bytes, offset) {
  var value = readUInt16BE(bytes, offset);
  return value > 0x7fff ? value - 0x10000 : value;
}

function readInt8(byte) {
  return byte > 0x7f ? byte - 0x100 : byte;
}

function decodeMeasurement(bytes, warnings, errors) {
  if (bytes.length !== 7 && bytes.length !== 9) {
    errors.push('fPort 1 frame must be 7 or 9 bytes, got ' + bytes.length);
    return null;
  }
  var flags = bytes[6];
  var data = {
    version: bytes[0],
    batteryVoltage: readUInt16BE(bytes, 1) / 1000,
    temperature: readInt16BE(bytes, 3) / 100,
    humidity: bytes[5] / 2,
    buttonPressed: (flags & 0x01) !== 0,
    alarms: {
      high: (flags & 0x02) !== 0,
      low: (flags & 0x04) !== 0,
    },
  };
  if (flags & 0x08) {
    warnings.push('sensor error flag set');
  }
  if (data.humidity > 100) {
    warnings.push('humidity ' + data.humidity + '% out of range');
  }
  if (bytes.length === 9) {
    data.counter = readUInt16BE(bytes, 7);
  }
  return data;
}

function decodeConfiguration(bytes, errors) {
  if (bytes.length !== 6 || bytes[0] !== 0x02) {
    errors.push('not a configuration report');
    return null;
  }
  return {
    intervalMinutes: readUInt16BE(bytes, 1),
    thresholds: {
      high: readInt8(bytes[3]),
      low: readInt8(bytes[4]),
    },
    ledEnabled: (bytes[5] & 0x01) === 0x01,
    confirmedUplinks: (bytes[5] & 0x02) === 0x02,
  };
}

function decodeAlarm(bytes, errors) {
  if (bytes.length !== 3) {
    errors.push('fPort 3 frame must be 3 bytes, got ' + bytes.length);
    return null;
  }
  var type = ALARM_TYPES[bytes[0]];
  if (!type) {
    errors.push('unknown alarm type ' + bytes[0]);
    return null;
  }
  return { alarm: type, temperature: readInt16BE(bytes, 1) / 100 };
}

function decodeUplink(input) {
  var warnings = [];
  var errors = [];
  var data = null;
  switch (input.fPort) {
    case 1:
      data = decodeMeasurement(input.bytes, warnings, errors);
      break;
    case 2:
      data = decodeConfiguration(input.bytes, errors);
      break;
    case 3:
      data = decodeAlarm(input.bytes, errors);
      break;
    default:
      errors.push('unknown fPort ' + input.fPort);
  }
  if (errors.length > 0) {
    return { errors: errors, warnings: warnings };
  }
  return { data: data, warnings: warnings, errors: [] };
}

function encodeDownlink(input) {
  var data = input.data || {};
  var bytes = [];
  var errors = [];
  if (data.intervalMinutes !== undefined) {
    var interval = data.intervalMinutes;
    if (typeof interval !== 'number' || interval % 1 !== 0 || interval < 1 || interval > 1440) {
      errors.push('intervalMinutes must be an integer 1-1440');
    } else {
      bytes.push(0x01, (interval >> 8) & 0xff, interval & 0xff);
    }
  }
  if (data.thresholds !== undefined) {
    var high = data.thresholds.high;
    var low = data.thresholds.low;
    if (high < -40 || high > 85 || low < -40 || low > 85 || low >= high) {
      errors.push('thresholds must satisfy -40 <= low < high <= 85');
    } else {
      bytes.push(0x02, high & 0xff, low & 0xff);
    }
  }
  if (data.led !== undefined) {
    bytes.push(0x03, data.led ? 1 : 0);
  }
  if (errors.length === 0 && bytes.length === 0) {
    errors.push('no command in data');
  }
  if (errors.length > 0) {
    return { errors: errors };
  }
  return { bytes: bytes, fPort: 10, warnings: [], errors: [] };
}

function decodeDownlink(input) {
  var bytes = input.bytes;
  var data = {};
  var i = 0;
  while (i < bytes.length) {
    var command = bytes[i++];
    if (command === 0x01) {
      data.intervalMinutes = readUInt16BE(bytes, i);
      i += 2;
    } else if (command === 0x02) {
      data.thresholds = { high: readInt8(bytes[i]), low: readInt8(bytes[i + 1]) };
      i += 2;
    } else if (command === 0x03) {
      data.led = bytes[i] === 1;
      i += 1;
    } else {
      return { errors: ['unknown command 0x' + command.toString(16)] };
    }
  }
  return { data: data, warnings: [], errors: [] };
}
