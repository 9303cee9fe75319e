// biome-ignore-all lint: a vendor-style codec, written the way device makers write them
/**
 * FlowCount PC-1 people counter (fictional). TS013 codec with bit-packed history records.
 *
 * fPort 7  history: header(1) = version(3 bits) | record count(5 bits),
 *          base time(4, unix seconds BE), then count records of 20 bits each, MSB first:
 *          in(10 bits) out(10 bits); record i covers base + i x 15 minutes. Padding bits are 0.
 * fPort 8  status: alarm bits(2 BE), then battery(7 bits) + mounted(1 bit)
 * Downlink fPort 9 (bit-packed too): mode(2 bits) sensitivity(4 bits) led(1 bit) reserved(1 bit),
 *          period minutes(12 bits) + 4 bits 0
 */

var ALARMS = [
  'tamper',
  'lens_covered',
  'low_battery',
  'temperature_high',
  'temperature_low',
  'fifo_overflow',
  'clock_lost',
  'reboot',
];
var MODES = ['normal', 'eco', 'burst', 'test'];

function BitReader(bytes, offset) {
  this.bytes = bytes;
  this.bit = offset * 8;
}

BitReader.prototype.read = function (n) {
  var value = 0;
  for (var i = 0; i < n; i++) {
    var byte = this.bytes[this.bit >> 3];
    if (byte === undefined) throw new RangeError('read past the end at bit ' + this.bit);
    value = (value << 1) | ((byte >> (7 - (this.bit & 7))) & 1);
    this.bit++;
  }
  return value;
};

function BitWriter() {
  this.bytes = [];
  this.bit = 0;
}

BitWriter.prototype.write = function (value, n) {
  for (var i = n - 1; i >= 0; i--) {
    if ((this.bit & 7) === 0) this.bytes.push(0);
    if ((value >> i) & 1) this.bytes[this.bytes.length - 1] |= 1 << (7 - (this.bit & 7));
    this.bit++;
  }
};

function decodeHistory(bytes) {
  var version = bytes[0] >> 5;
  var count = bytes[0] & 0x1f;
  var needed = 5 + Math.ceil((count * 20) / 8);
  if (bytes.length !== needed) {
    return {
      errors: ['history of ' + count + ' records needs ' + needed + ' bytes, got ' + bytes.length],
    };
  }
  var base = ((bytes[1] << 24) >>> 0) + (bytes[2] << 16) + (bytes[3] << 8) + bytes[4];
  var reader = new BitReader(bytes, 5);
  var records = [];
  var totalIn = 0;
  var totalOut = 0;
  for (var i = 0; i < count; i++) {
    var entered = reader.read(10);
    var left = reader.read(10);
    totalIn += entered;
    totalOut += left;
    records.push({
      time: new Date((base + i * 900) * 1000).toISOString(),
      in: entered,
      out: left,
    });
  }
  var warnings = [];
  if (version !== 1) warnings.push('unknown history version ' + version);
  if (
    records.some(function (r) {
      return r.in === 1023 || r.out === 1023;
    })
  ) {
    warnings.push('a counter saturated at 1023');
  }
  return {
    data: {
      records: records,
      totals: { in: totalIn, out: totalOut, occupancy: totalIn - totalOut },
    },
    warnings: warnings,
    errors: [],
  };
}

function decodeStatus(bytes) {
  if (bytes.length !== 3) return { errors: ['status frame must be 3 bytes'] };
  var bits = (bytes[0] << 8) | bytes[1];
  var alarms = ALARMS.filter(function (name, i) {
    return (bits >> i) & 1;
  });
  var unknown = bits >> ALARMS.length;
  return {
    data: { alarms: alarms, battery: bytes[2] >> 1, mounted: (bytes[2] & 1) === 1 },
    warnings: unknown ? ['unknown alarm bits 0x' + (unknown << ALARMS.length).toString(16)] : [],
    errors: [],
  };
}

function decodeUplink(input) {
  if (input.fPort === 7) return decodeHistory(input.bytes);
  if (input.fPort === 8) return decodeStatus(input.bytes);
  return { errors: ['unknown fPort ' + input.fPort] };
}

function encodeDownlink(input) {
  var d = input.data;
  var mode = MODES.indexOf(d.mode);
  var errors = [];
  if (mode < 0) errors.push('mode must be one of ' + MODES.join(', '));
  if (!(d.sensitivity >= 0 && d.sensitivity <= 15)) errors.push('sensitivity must be 0-15');
  if (!(d.periodMinutes >= 1 && d.periodMinutes <= 4095))
    errors.push('periodMinutes must be 1-4095');
  if (errors.length) return { errors: errors };
  var w = new BitWriter();
  w.write(mode, 2);
  w.write(d.sensitivity, 4);
  w.write(d.led ? 1 : 0, 1);
  w.write(0, 1);
  w.write(d.periodMinutes, 12);
  w.write(0, 4);
  return { bytes: w.bytes, fPort: 9, warnings: [], errors: [] };
}

function decodeDownlink(input) {
  var r = new BitReader(input.bytes, 0);
  try {
    var mode = MODES[r.read(2)];
    var sensitivity = r.read(4);
    var led = r.read(1) === 1;
    r.read(1);
    var period = r.read(12);
    return {
      data: { mode: mode, sensitivity: sensitivity, led: led, periodMinutes: period },
      warnings: [],
      errors: [],
    };
  } catch (e) {
    return { errors: [e.message] };
  }
}
