// biome-ignore-all lint: a vendor-style codec, written the way device makers write them
/**
 * TrakLite T4 asset tracker (fictional). LoRa Alliance TS013 codec, modern JavaScript.
 *
 * fPort 1: position
 *   0      flags: bit0 fix, bit1 moving, bit2 SOS, bits3-7 satellites
 *   1..3   latitude, signed 24-bit, degrees * 2^23 / 90
 *   4..6   longitude, signed 24-bit, degrees * 2^23 / 180
 *   7..8   altitude m, signed 16-bit
 *   9      HDOP * 10
 *   10     battery %
 * fPort 2: heartbeat: battery %(1) temperature 0.1 C(2, signed) uptime s(4)
 * fPort 5: Wi-Fi scan: n x (BSSID(6) RSSI(1, signed))
 */

const SCALE_24 = 2 ** 23;

const int24 = (b, i) => ((b[i] << 24) >> 8) | (b[i + 1] << 8) | b[i + 2];

const round = (value, decimals) => {
  const f = 10 ** decimals;
  return Math.round(value * f) / f;
};

const hex = (n) => n.toString(16).padStart(2, '0');

function decodePosition(bytes) {
  if (bytes.length !== 11) {
    return { errors: [`position frame must be 11 bytes, got ${bytes.length}`] };
  }
  const view = new DataView(Uint8Array.from(bytes).buffer);
  const flags = view.getUint8(0);
  const data = {
    fix: (flags & 1) === 1,
    moving: (flags & 2) === 2,
    sos: (flags & 4) === 4,
    satellites: flags >> 3,
    battery: view.getUint8(10),
  };
  const warnings = [];
  if (data.fix) {
    data.location = {
      latitude: round((int24(bytes, 1) * 90) / SCALE_24, 6),
      longitude: round((int24(bytes, 4) * 180) / SCALE_24, 6),
      altitude: view.getInt16(7),
      hdop: view.getUint8(9) / 10,
    };
    if (data.location.hdop > 5) warnings.push(`poor accuracy (HDOP ${data.location.hdop})`);
  } else {
    warnings.push('no GPS fix');
  }
  if (data.sos) warnings.push('SOS button pressed');
  return { data, warnings, errors: [] };
}

function decodeHeartbeat(bytes) {
  if (bytes.length < 7) {
    return { errors: ['heartbeat frame too short'] };
  }
  const view = new DataView(new Uint8Array(bytes).buffer);
  const uptime = view.getUint32(3);
  return {
    data: {
      battery: view.getUint8(0),
      temperature: view.getInt16(1) / 10,
      uptime: {
        seconds: uptime,
        days: Math.floor(uptime / 86400),
      },
    },
    warnings: view.getUint8(0) < 10 ? ['battery low'] : [],
    errors: [],
  };
}

function decodeWifi(bytes) {
  if (bytes.length % 7 !== 0) {
    return { errors: ['Wi-Fi scan length must be a multiple of 7'] };
  }
  const accessPoints = Array.from({ length: bytes.length / 7 }, (_, n) => {
    const entry = bytes.slice(n * 7, n * 7 + 7);
    return {
      bssid: entry.slice(0, 6).map(hex).join(':'),
      rssi: (entry.at(-1) << 24) >> 24,
    };
  });
  accessPoints.sort((a, b) => b.rssi - a.rssi);
  return {
    data: { accessPoints, strongest: accessPoints[0]?.bssid ?? null },
    warnings: [],
    errors: [],
  };
}

function decodeUplink({ bytes, fPort }) {
  switch (fPort) {
    case 1:
      return decodePosition(bytes);
    case 2:
      return decodeHeartbeat(bytes);
    case 5:
      return decodeWifi(bytes);
    default:
      return { errors: [`unknown fPort ${fPort}`] };
  }
}

function normalizeUplink({ data }) {
  if (!data?.location) {
    return { data: {}, warnings: ['no position to normalise'], errors: [] };
  }
  const { latitude, longitude, altitude } = data.location;
  return {
    data: { position: { latitude, longitude, altitude } },
    warnings: [],
    errors: [],
  };
}
