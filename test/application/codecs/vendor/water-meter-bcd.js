// biome-ignore-all lint: a vendor-style codec, written the way device makers write them
/*
 * AquaPulse WM-3 water meter module (fictional), TTN v2 "Decoder" payload format.
 *
 * Port 1 - index report
 *   0..3  meter serial number, 8 BCD digits
 *   4     status: bit0 leak, bit1 burst, bit2 backflow, bit3 tamper, bits4-7 battery level 0-15
 *   5..8  index in litres, unsigned 32-bit little endian
 *   9..   0 or more hourly deltas, unsigned 16-bit little endian, oldest first
 * Port 2 - legacy register frame (WM-2 firmware)
 *   0..4  index in litres, 10 BCD digits
 *   5     status (as above)
 * Port 3 - daily snapshot
 *   0..3  timestamp, unix seconds, big endian
 *   4..7  index in litres, little endian
 *   8..9  minimum flow l/h, little endian
 *   10..11 maximum flow l/h, little endian
 */

function bcdByte(b, position) {
  var hi = b >> 4;
  var lo = b & 0x0f;
  if (hi > 9 || lo > 9) {
    throw new Error('invalid BCD digit in byte ' + position);
  }
  return hi * 10 + lo;
}

function bcdString(bytes, start, count) {
  var s = '';
  for (var i = start; i < start + count; i++) {
    var v = bcdByte(bytes[i], i);
    s += (v < 10 ? '0' : '') + v;
  }
  return s;
}

function u32le(bytes, i) {
  return (bytes[i] | (bytes[i + 1] << 8) | (bytes[i + 2] << 16) | (bytes[i + 3] << 24)) >>> 0;
}

function u32be(bytes, i) {
  return ((bytes[i] << 24) | (bytes[i + 1] << 16) | (bytes[i + 2] << 8) | bytes[i + 3]) >>> 0;
}

function u16le(bytes, i) {
  return bytes[i] | (bytes[i + 1] << 8);
}

function status(b) {
  return {
    alarms: {
      leak: !!(b & 0x01),
      burst: !!(b & 0x02),
      backflow: !!(b & 0x04),
      tamper: !!(b & 0x08),
    },
    batteryPercent: Math.round(((b >> 4) * 100) / 15),
  };
}

function Decoder(bytes, port) {
  var decoded = {};
  var st;
  if (port === 1) {
    if (bytes.length < 9) {
      return { error: 'frame too short: ' + bytes.length + ' bytes' };
    }
    if ((bytes.length - 9) % 2 !== 0) {
      return { error: 'odd number of delta bytes' };
    }
    decoded.serial = bcdString(bytes, 0, 4);
    st = status(bytes[4]);
    decoded.alarms = st.alarms;
    decoded.batteryPercent = st.batteryPercent;
    decoded.indexLiters = u32le(bytes, 5);
    decoded.volumeM3 = decoded.indexLiters / 1000;
    decoded.hourlyDeltas = [];
    for (var i = 9; i < bytes.length; i += 2) {
      decoded.hourlyDeltas.push(u16le(bytes, i));
    }
    return decoded;
  }
  if (port === 2) {
    if (bytes.length !== 6) {
      return { error: 'port 2 frames are 6 bytes' };
    }
    decoded.indexLiters = parseInt(bcdString(bytes, 0, 5), 10);
    decoded.volumeM3 = decoded.indexLiters / 1000;
    st = status(bytes[5]);
    decoded.alarms = st.alarms;
    decoded.batteryPercent = st.batteryPercent;
    return decoded;
  }
  if (port === 3) {
    if (bytes.length !== 12) {
      return { error: 'port 3 frames are 12 bytes' };
    }
    var t = u32be(bytes, 0);
    decoded.time = new Date(t * 1000).toISOString();
    decoded.indexLiters = u32le(bytes, 4);
    decoded.minFlowLph = u16le(bytes, 8);
    decoded.maxFlowLph = u16le(bytes, 10);
    return decoded;
  }
  return { error: 'unknown port ' + port };
}
