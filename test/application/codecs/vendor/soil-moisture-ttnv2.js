// biome-ignore-all lint: a vendor-style codec, written the way device makers write them
// SoilProbe SP-2 (fictional) - The Things Network v2 payload functions (Decoder / Encoder)
//
// port 1: moisture % x 10 at 3 depths (3 x u16 BE), soil temperature 0.1 C (i16 BE),
//         conductivity uS/cm (u16 BE), battery mV (u16 BE)
// port 9: boot message: ASCII firmware version (NUL padded, 8 bytes), reset cause (1)

var RESET_CAUSES = ['power-on', 'watchdog', 'brown-out', 'software', 'pin'];

function Decoder(bytes, port) {
  var decoded = {};
  if (port == 1) {
    decoded.moisture = {
      depth10cm: ((bytes[0] << 8) | bytes[1]) / 10,
      depth30cm: ((bytes[2] << 8) | bytes[3]) / 10,
      depth60cm: ((bytes[4] << 8) | bytes[5]) / 10,
    };
    var t = (bytes[6] << 8) | bytes[7];
    decoded.soilTemperature = (t & 0x8000 ? t - 65536 : t) / 10;
    decoded.conductivity = (bytes[8] << 8) | bytes[9];
    decoded.batteryV = ((bytes[10] << 8) | bytes[11]) / 1000;
    decoded.raw = bytes
      .map(function (b) {
        return ('0' + b.toString(16)).slice(-2);
      })
      .join('');
  } else if (port == 9) {
    var chars = [];
    for (var i = 0; i < 8 && bytes[i] !== 0; i++) chars.push(bytes[i]);
    decoded.firmware = String.fromCharCode.apply(null, chars);
    decoded.resetCause = RESET_CAUSES[bytes[8]] || 'unknown';
  }
  return decoded;
}

// port 2: set interval (minutes, u16 BE); port 3: calibration offsets (3 x i8, 0.1 %)
function Encoder(object, port) {
  var bytes = [];
  if (port === 2) {
    bytes[0] = (object.intervalMinutes >> 8) & 0xff;
    bytes[1] = object.intervalMinutes & 0xff;
  }
  if (port === 3) {
    var offsets = object.offsets || [0, 0, 0];
    for (var i = 0; i < 3; i++) {
      bytes.push(Math.round(offsets[i] * 10) & 0xff);
    }
  }
  return bytes;
}
