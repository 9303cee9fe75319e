// biome-ignore-all lint: a vendor-style codec, written the way device makers write them
/**
 * HydroValve V2 irrigation valve controller (fictional). TS013 codec with downlink encoding.
 *
 * Every downlink (fPort 20) is: command(1) length(1) payload(length) crc8(1)
 * where crc8 (poly 0x07, init 0x00) covers command, length and payload.
 *   0x01 open                    (no payload)
 *   0x02 close                   (no payload)
 *   0x03 position                percent(1)
 *   0x04 schedule                n x (start minute of day(2 BE) duration minutes(1))
 *   0x05 flow alarm threshold    litres per minute x 10 (2 BE)
 * Uplink (fPort 21): position %(1) flow l/min x 10(2 BE) total litres(4 BE) errors(1)
 *   error bits: 0 motor stuck, 1 low battery, 2 sensor fault, 3 schedule overrun
 */

var COMMANDS = { open: 0x01, close: 0x02, position: 0x03, schedule: 0x04, flowAlarm: 0x05 };
var ERROR_BITS = ['motorStuck', 'lowBattery', 'sensorFault', 'scheduleOverrun'];

function crc8(bytes) {
  var crc = 0;
  for (var i = 0; i < bytes.length; i++) {
    crc ^= bytes[i];
    for (var bit = 0; bit < 8; bit++) {
      crc = crc & 0x80 ? ((crc << 1) ^ 0x07) & 0xff : (crc << 1) & 0xff;
    }
  }
  return crc;
}

function frame(command, payload) {
  var body = [command, payload.length].concat(payload);
  body.push(crc8(body));
  return body;
}

function parseTime(text) {
  var match = /^(\d{1,2}):(\d{2})$/.exec(text);
  if (!match) return -1;
  var h = parseInt(match[1], 10);
  var m = parseInt(match[2], 10);
  if (h > 23 || m > 59) return -1;
  return h * 60 + m;
}

function pad2(n) {
  return (n < 10 ? '0' : '') + n;
}

function encodeDownlink(input) {
  var data = input.data;
  var errors = [];
  var warnings = [];
  var bytes;
  switch (data.command) {
    case 'open':
    case 'close':
      bytes = frame(COMMANDS[data.command], []);
      break;
    case 'position':
      if (typeof data.percent !== 'number' || data.percent < 0 || data.percent > 100) {
        errors.push('percent must be 0-100');
        break;
      }
      if (data.percent % 1 !== 0) warnings.push('percent rounded to ' + Math.round(data.percent));
      bytes = frame(COMMANDS.position, [Math.round(data.percent)]);
      break;
    case 'schedule':
      var payload = [];
      var slots = data.slots || [];
      if (slots.length === 0 || slots.length > 8) {
        errors.push('schedule needs 1 to 8 slots');
        break;
      }
      for (var i = 0; i < slots.length; i++) {
        var start = parseTime(slots[i].start);
        if (start < 0) {
          errors.push('slot ' + i + ': start must be HH:MM');
          continue;
        }
        if (!(slots[i].minutes >= 1 && slots[i].minutes <= 255)) {
          errors.push('slot ' + i + ': minutes must be 1-255');
          continue;
        }
        payload.push(start >> 8, start & 0xff, slots[i].minutes);
      }
      bytes = frame(COMMANDS.schedule, payload);
      break;
    case 'flowAlarm':
      var tenths = Math.round(data.litresPerMinute * 10);
      if (!(tenths >= 0 && tenths <= 0xffff)) {
        errors.push('litresPerMinute must be 0-6553.5');
        break;
      }
      bytes = frame(COMMANDS.flowAlarm, [tenths >> 8, tenths & 0xff]);
      break;
    default:
      errors.push('unknown command ' + JSON.stringify(data.command));
  }
  if (errors.length) return { errors: errors, warnings: warnings };
  return { bytes: bytes, fPort: 20, warnings: warnings, errors: [] };
}

function decodeDownlink(input) {
  var b = input.bytes;
  if (b.length < 3 || b.length !== b[1] + 3) {
    return { errors: ['bad frame length'] };
  }
  if (crc8(b.slice(0, b.length - 1)) !== b[b.length - 1]) {
    return { errors: ['CRC mismatch'] };
  }
  var payload = b.slice(2, b.length - 1);
  switch (b[0]) {
    case 0x01:
      return { data: { command: 'open' }, warnings: [], errors: [] };
    case 0x02:
      return { data: { command: 'close' }, warnings: [], errors: [] };
    case 0x03:
      return { data: { command: 'position', percent: payload[0] }, warnings: [], errors: [] };
    case 0x04:
      var slots = [];
      for (var i = 0; i + 2 < payload.length; i += 3) {
        var start = (payload[i] << 8) | payload[i + 1];
        slots.push({
          start: pad2(Math.floor(start / 60)) + ':' + pad2(start % 60),
          minutes: payload[i + 2],
        });
      }
      return { data: { command: 'schedule', slots: slots }, warnings: [], errors: [] };
    case 0x05:
      return {
        data: { command: 'flowAlarm', litresPerMinute: ((payload[0] << 8) | payload[1]) / 10 },
        warnings: [],
        errors: [],
      };
  }
  return { errors: ['unknown command 0x' + b[0].toString(16)] };
}

function decodeUplink(input) {
  var b = input.bytes;
  if (input.fPort !== 21 || b.length !== 8) {
    return { errors: ['expected an 8-byte status frame on fPort 21'] };
  }
  var errorBits = b[7];
  var active = [];
  for (var i = 0; i < ERROR_BITS.length; i++) {
    if (errorBits & (1 << i)) active.push(ERROR_BITS[i]);
  }
  return {
    data: {
      positionPercent: b[0],
      flowLitresPerMinute: ((b[1] << 8) | b[2]) / 10,
      totalLitres: ((b[3] << 24) >>> 0) + (b[4] << 16) + (b[5] << 8) + b[6],
      faults: active,
    },
    warnings: active.length ? ['device reports: ' + active.join(', ')] : [],
    errors: [],
  };
}
