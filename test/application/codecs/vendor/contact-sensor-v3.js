// biome-ignore-all lint: a vendor-style codec, written the way device makers write them
// Door / window contact sensor DS-1 (fictional) - ChirpStack v3 codec (Decode / Encode).
//
// fPort 1: status(1) open count(3 BE) minutes since last change(2 BE)
//   status bit0 open, bit1 tamper, bit2 battery low, bit3 heartbeat (no change)
// fPort 2: device info: battery %(1) firmware major(1) minor(1) hardware rev(1, ASCII)
// Downlinks on fPort 2: { confirm: bool } -> 10 01|00 ; { reportIntervalHours: n } -> 11 nn

function Decode(fPort, bytes, variables) {
  if (fPort === 1) {
    var status = bytes[0];
    var out = {
      open: (status & 1) == 1,
      tamper: (status & 2) == 2,
      lowBattery: (status & 4) == 4,
      event: status & 8 ? 'heartbeat' : 'change',
      openCount: (bytes[1] << 16) + (bytes[2] << 8) + bytes[3],
      minutesSinceChange: (bytes[4] << 8) + bytes[5],
    };
    if (variables && variables.location) {
      out.location = variables.location;
    }
    return out;
  }
  if (fPort === 2) {
    return {
      battery: bytes[0],
      firmware: 'v' + bytes[1] + '.' + bytes[2],
      hardware: String.fromCharCode(bytes[3]),
    };
  }
  return {};
}

function Encode(fPort, obj, variables) {
  var bytes = [];
  if (obj.confirm !== undefined) {
    bytes.push(0x10, obj.confirm ? 1 : 0);
  }
  if (obj.reportIntervalHours !== undefined) {
    bytes.push(0x11, obj.reportIntervalHours & 0xff);
  }
  return bytes;
}
