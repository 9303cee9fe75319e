import type { Random } from './random.js';

/**
 * Application payloads of the sensors a commune's network carries, in made-up but vendor-like
 * binary formats (documented below, big-endian, fixed size per message type). Each format has
 * a typed reading, an encoder and a decoder; a generator draws plausible, slowly varying
 * readings from a seeded Random, so a run is reproducible.
 *
 * | kind          | FPort | bytes | content                                                        |
 * |---------------|-------|-------|----------------------------------------------------------------|
 * | roadWeather   | 10    | 11    | road surface + air temperature, humidity, dew point, state     |
 * | streetLight   | 20    | 10    | lamp status, dimming level, energy counter (Wh), power, hours  |
 * | soil          | 30    | 9     | volumetric water content, soil water tension, temperature      |
 * | airQuality    | 40    | 13    | CO2, PM2.5, PM10, NO2, temperature, humidity                   |
 * | waterLevel    | 50    | 7     | level above gauge zero, water temperature, battery             |
 * | parkingSpot   | 60/61 | 1/4   | occupancy change (60), heartbeat with battery and count (61)   |
 * | waterMeter    | 70    | 17    | index (litres), last six hourly volumes, alarm flags           |
 * | gpsTracker    | 80    | 11    | latitude, longitude (1e-7 degree), battery, flags              |
 */

export type PayloadKind =
  | 'roadWeather'
  | 'streetLight'
  | 'soil'
  | 'airQuality'
  | 'waterLevel'
  | 'parkingSpot'
  | 'waterMeter'
  | 'gpsTracker';

export const PAYLOAD_KINDS: readonly PayloadKind[] = Object.freeze([
  'roadWeather',
  'streetLight',
  'soil',
  'airQuality',
  'waterLevel',
  'parkingSpot',
  'waterMeter',
  'gpsTracker',
]);

export interface SensorPayload {
  fPort: number;
  bytes: Uint8Array;
}

// ---------------------------------------------------------------------------------------------
// Byte helpers: fixed-point values, clamped to their field so that a reading never wraps.

function clamp(value: number, min: number, max: number): number {
  return Math.min(max, Math.max(min, value));
}

function putInt16(view: DataView, offset: number, value: number, scale: number): void {
  view.setInt16(offset, clamp(Math.round(value * scale), -32768, 32767));
}

function putUint16(view: DataView, offset: number, value: number, scale: number): void {
  view.setUint16(offset, clamp(Math.round(value * scale), 0, 0xffff));
}

function putUint8(view: DataView, offset: number, value: number, scale = 1): void {
  view.setUint8(offset, clamp(Math.round(value * scale), 0, 0xff));
}

function frame(length: number): { bytes: Uint8Array; view: DataView } {
  const bytes = new Uint8Array(length);
  return { bytes, view: new DataView(bytes.buffer) };
}

function viewOf(bytes: Uint8Array, length: number, what: string): DataView {
  if (bytes.length !== length) {
    throw new RangeError(`${what} payload is ${length} bytes, got ${bytes.length}`);
  }
  return new DataView(bytes.buffer, bytes.byteOffset, bytes.byteLength);
}

function round(value: number, decimals: number): number {
  const factor = 10 ** decimals;
  return Math.round(value * factor) / factor;
}

// ---------------------------------------------------------------------------------------------
// Road weather station, FPort 10, 11 bytes:
//  0     message type 0x01
//  1-2   road surface temperature, int16, 0.01 °C
//  3-4   air temperature, int16, 0.01 °C
//  5     relative humidity, uint8, 0.5 %
//  6-7   dew point, int16, 0.01 °C
//  8     surface state: 0 dry, 1 damp, 2 wet, 3 frost, 4 ice, 5 snow
//  9     battery, %
//  10    flags: bit 0 freezing risk (surface <= 1 °C and not dry), bit 1 sensor fault

export const ROAD_SURFACE_STATES = ['dry', 'damp', 'wet', 'frost', 'ice', 'snow'] as const;
export type RoadSurfaceState = (typeof ROAD_SURFACE_STATES)[number];

export interface RoadWeatherReading {
  roadSurfaceTemperatureC: number;
  airTemperatureC: number;
  humidityPercent: number;
  dewPointC: number;
  surfaceState: RoadSurfaceState;
  batteryPercent: number;
  freezingRisk: boolean;
  sensorFault: boolean;
}

export function encodeRoadWeather(reading: RoadWeatherReading): SensorPayload {
  const { bytes, view } = frame(11);
  view.setUint8(0, 0x01);
  putInt16(view, 1, reading.roadSurfaceTemperatureC, 100);
  putInt16(view, 3, reading.airTemperatureC, 100);
  putUint8(view, 5, reading.humidityPercent, 2);
  putInt16(view, 6, reading.dewPointC, 100);
  view.setUint8(8, ROAD_SURFACE_STATES.indexOf(reading.surfaceState));
  putUint8(view, 9, reading.batteryPercent);
  view.setUint8(10, (reading.freezingRisk ? 1 : 0) | (reading.sensorFault ? 2 : 0));
  return { fPort: 10, bytes };
}

export function decodeRoadWeather(bytes: Uint8Array): RoadWeatherReading {
  const view = viewOf(bytes, 11, 'road weather');
  const flags = view.getUint8(10);
  return {
    roadSurfaceTemperatureC: view.getInt16(1) / 100,
    airTemperatureC: view.getInt16(3) / 100,
    humidityPercent: view.getUint8(5) / 2,
    dewPointC: view.getInt16(6) / 100,
    surfaceState: ROAD_SURFACE_STATES[view.getUint8(8)] ?? 'dry',
    batteryPercent: view.getUint8(9),
    freezingRisk: (flags & 1) !== 0,
    sensorFault: (flags & 2) !== 0,
  };
}

/** Magnus formula (Alduchov and Eskridge coefficients). */
function dewPointC(airTemperatureC: number, humidityPercent: number): number {
  const a = 17.625;
  const b = 243.04;
  const gamma =
    Math.log(Math.max(humidityPercent, 1) / 100) + (a * airTemperatureC) / (b + airTemperatureC);
  return (b * gamma) / (a - gamma);
}

// ---------------------------------------------------------------------------------------------
// Street-light controller, FPort 20, 10 bytes:
//  0     status: bit 0 lamp on, bit 1 lamp failure, bit 2 mains failure, bit 3 manual override
//  1     dimming level, %
//  2-5   energy counter, uint32, Wh
//  6-7   active power, uint16, 0.1 W
//  8-9   lamp burning hours, uint16 (wraps)

export interface StreetLightReading {
  lampOn: boolean;
  lampFailure: boolean;
  mainsFailure: boolean;
  manualOverride: boolean;
  dimmingPercent: number;
  energyWh: number;
  powerW: number;
  burningHours: number;
}

export function encodeStreetLight(reading: StreetLightReading): SensorPayload {
  const { bytes, view } = frame(10);
  view.setUint8(
    0,
    (reading.lampOn ? 1 : 0) |
      (reading.lampFailure ? 2 : 0) |
      (reading.mainsFailure ? 4 : 0) |
      (reading.manualOverride ? 8 : 0),
  );
  putUint8(view, 1, clamp(reading.dimmingPercent, 0, 100));
  view.setUint32(2, Math.round(reading.energyWh) >>> 0);
  putUint16(view, 6, reading.powerW, 10);
  view.setUint16(8, Math.round(reading.burningHours) & 0xffff);
  return { fPort: 20, bytes };
}

export function decodeStreetLight(bytes: Uint8Array): StreetLightReading {
  const view = viewOf(bytes, 10, 'street light');
  const status = view.getUint8(0);
  return {
    lampOn: (status & 1) !== 0,
    lampFailure: (status & 2) !== 0,
    mainsFailure: (status & 4) !== 0,
    manualOverride: (status & 8) !== 0,
    dimmingPercent: view.getUint8(1),
    energyWh: view.getUint32(2),
    powerW: view.getUint16(6) / 10,
    burningHours: view.getUint16(8),
  };
}

// ---------------------------------------------------------------------------------------------
// Soil probe, FPort 30, 9 bytes:
//  0     message type 0x03
//  1-2   volumetric water content, uint16, 0.1 %
//  3-4   soil water tension, uint16, 0.1 kPa (centibar)
//  5-6   soil temperature, int16, 0.01 °C
//  7-8   battery, uint16, mV

export interface SoilReading {
  waterContentPercent: number;
  waterTensionKpa: number;
  soilTemperatureC: number;
  batteryMv: number;
}

export function encodeSoil(reading: SoilReading): SensorPayload {
  const { bytes, view } = frame(9);
  view.setUint8(0, 0x03);
  putUint16(view, 1, reading.waterContentPercent, 10);
  putUint16(view, 3, reading.waterTensionKpa, 10);
  putInt16(view, 5, reading.soilTemperatureC, 100);
  putUint16(view, 7, reading.batteryMv, 1);
  return { fPort: 30, bytes };
}

export function decodeSoil(bytes: Uint8Array): SoilReading {
  const view = viewOf(bytes, 9, 'soil');
  return {
    waterContentPercent: view.getUint16(1) / 10,
    waterTensionKpa: view.getUint16(3) / 10,
    soilTemperatureC: view.getInt16(5) / 100,
    batteryMv: view.getUint16(7),
  };
}

// ---------------------------------------------------------------------------------------------
// Air quality station, FPort 40, 13 bytes:
//  0     message type 0x04
//  1-2   CO2, uint16, ppm
//  3-4   PM2.5, uint16, 0.1 µg/m³
//  5-6   PM10, uint16, 0.1 µg/m³
//  7-8   NO2, uint16, 0.1 µg/m³
//  9-10  air temperature, int16, 0.01 °C
//  11    relative humidity, uint8, 0.5 %
//  12    flags: bit 0 sensors warming up, bit 1 particle sensor fault

export interface AirQualityReading {
  co2Ppm: number;
  pm25: number;
  pm10: number;
  no2: number;
  airTemperatureC: number;
  humidityPercent: number;
  warmingUp: boolean;
  particleSensorFault: boolean;
}

export function encodeAirQuality(reading: AirQualityReading): SensorPayload {
  const { bytes, view } = frame(13);
  view.setUint8(0, 0x04);
  putUint16(view, 1, reading.co2Ppm, 1);
  putUint16(view, 3, reading.pm25, 10);
  putUint16(view, 5, reading.pm10, 10);
  putUint16(view, 7, reading.no2, 10);
  putInt16(view, 9, reading.airTemperatureC, 100);
  putUint8(view, 11, reading.humidityPercent, 2);
  view.setUint8(12, (reading.warmingUp ? 1 : 0) | (reading.particleSensorFault ? 2 : 0));
  return { fPort: 40, bytes };
}

export function decodeAirQuality(bytes: Uint8Array): AirQualityReading {
  const view = viewOf(bytes, 13, 'air quality');
  const flags = view.getUint8(12);
  return {
    co2Ppm: view.getUint16(1),
    pm25: view.getUint16(3) / 10,
    pm10: view.getUint16(5) / 10,
    no2: view.getUint16(7) / 10,
    airTemperatureC: view.getInt16(9) / 100,
    humidityPercent: view.getUint8(11) / 2,
    warmingUp: (flags & 1) !== 0,
    particleSensorFault: (flags & 2) !== 0,
  };
}

// ---------------------------------------------------------------------------------------------
// River or tank level gauge, FPort 50, 7 bytes:
//  0     message type 0x05
//  1-2   water level above gauge zero, int16, mm
//  3-4   water temperature, int16, 0.01 °C
//  5     battery, %
//  6     flags: bit 0 alert threshold exceeded, bit 1 probe out of water

export interface WaterLevelReading {
  levelMm: number;
  waterTemperatureC: number;
  batteryPercent: number;
  alert: boolean;
  probeDry: boolean;
}

export function encodeWaterLevel(reading: WaterLevelReading): SensorPayload {
  const { bytes, view } = frame(7);
  view.setUint8(0, 0x05);
  putInt16(view, 1, reading.levelMm, 1);
  putInt16(view, 3, reading.waterTemperatureC, 100);
  putUint8(view, 5, reading.batteryPercent);
  view.setUint8(6, (reading.alert ? 1 : 0) | (reading.probeDry ? 2 : 0));
  return { fPort: 50, bytes };
}

export function decodeWaterLevel(bytes: Uint8Array): WaterLevelReading {
  const view = viewOf(bytes, 7, 'water level');
  const flags = view.getUint8(6);
  return {
    levelMm: view.getInt16(1),
    waterTemperatureC: view.getInt16(3) / 100,
    batteryPercent: view.getUint8(5),
    alert: (flags & 1) !== 0,
    probeDry: (flags & 2) !== 0,
  };
}

// ---------------------------------------------------------------------------------------------
// Parking / EV-charging spot sensor:
//  FPort 60, 1 byte, sent on every change: bit 0 occupied, bit 1 charging cable connected,
//    bits 4-7 change sequence number (mod 16, lets the application spot a lost change)
//  FPort 61, 4 bytes, heartbeat when nothing changed: byte 0 as above, byte 1 battery %,
//    bytes 2-3 uint16 changes since the previous heartbeat

export interface ParkingSpotReading {
  occupied: boolean;
  charging: boolean;
  sequence: number;
  /** Heartbeats only. */
  heartbeat?: { batteryPercent: number; changesSinceLastHeartbeat: number };
}

function parkingStatus(reading: ParkingSpotReading): number {
  return (reading.occupied ? 1 : 0) | (reading.charging ? 2 : 0) | ((reading.sequence & 0x0f) << 4);
}

export function encodeParkingSpot(reading: ParkingSpotReading): SensorPayload {
  if (reading.heartbeat === undefined) {
    return { fPort: 60, bytes: new Uint8Array([parkingStatus(reading)]) };
  }
  const { bytes, view } = frame(4);
  view.setUint8(0, parkingStatus(reading));
  putUint8(view, 1, reading.heartbeat.batteryPercent);
  putUint16(view, 2, reading.heartbeat.changesSinceLastHeartbeat, 1);
  return { fPort: 61, bytes };
}

export function decodeParkingSpot(fPort: number, bytes: Uint8Array): ParkingSpotReading {
  const view = viewOf(bytes, fPort === 61 ? 4 : 1, 'parking spot');
  const status = view.getUint8(0);
  const reading: ParkingSpotReading = {
    occupied: (status & 1) !== 0,
    charging: (status & 2) !== 0,
    sequence: status >>> 4,
  };
  if (fPort === 61) {
    reading.heartbeat = {
      batteryPercent: view.getUint8(1),
      changesSinceLastHeartbeat: view.getUint16(2),
    };
  }
  return reading;
}

// ---------------------------------------------------------------------------------------------
// Water meter, FPort 70, 17 bytes (one message every six hours):
//  0-3   index, uint32, litres
//  4-15  six uint16 hourly volumes in litres, oldest first, ending at the index time
//  16    flags: bit 0 leak (flow in each of the six hours), bit 1 backflow, bit 2 tamper,
//        bit 3 low battery

export interface WaterMeterReading {
  indexLitres: number;
  hourlyLitres: number[];
  leak: boolean;
  backflow: boolean;
  tamper: boolean;
  lowBattery: boolean;
}

export function encodeWaterMeter(reading: WaterMeterReading): SensorPayload {
  if (reading.hourlyLitres.length !== 6) {
    throw new RangeError(
      `a water meter message has 6 hourly volumes, got ${reading.hourlyLitres.length}`,
    );
  }
  const { bytes, view } = frame(17);
  view.setUint32(0, Math.round(reading.indexLitres) >>> 0);
  reading.hourlyLitres.forEach((litres, i) => {
    putUint16(view, 4 + 2 * i, litres, 1);
  });
  view.setUint8(
    16,
    (reading.leak ? 1 : 0) |
      (reading.backflow ? 2 : 0) |
      (reading.tamper ? 4 : 0) |
      (reading.lowBattery ? 8 : 0),
  );
  return { fPort: 70, bytes };
}

export function decodeWaterMeter(bytes: Uint8Array): WaterMeterReading {
  const view = viewOf(bytes, 17, 'water meter');
  const flags = view.getUint8(16);
  return {
    indexLitres: view.getUint32(0),
    hourlyLitres: Array.from({ length: 6 }, (_, i) => view.getUint16(4 + 2 * i)),
    leak: (flags & 1) !== 0,
    backflow: (flags & 2) !== 0,
    tamper: (flags & 4) !== 0,
    lowBattery: (flags & 8) !== 0,
  };
}

// ---------------------------------------------------------------------------------------------
// GPS tracker ("pebble" on a bin, a bike, a boat), FPort 80, 11 bytes:
//  0     message type 0x08
//  1-4   latitude, int32, 1e-7 degree
//  5-8   longitude, int32, 1e-7 degree
//  9     battery, %
//  10    flags: bit 0 moving, bit 1 no GPS fix (position is the last known one)

export interface GpsTrackerReading {
  latitude: number;
  longitude: number;
  batteryPercent: number;
  moving: boolean;
  noFix: boolean;
}

export function encodeGpsTracker(reading: GpsTrackerReading): SensorPayload {
  const { bytes, view } = frame(11);
  view.setUint8(0, 0x08);
  view.setInt32(1, Math.round(clamp(reading.latitude, -90, 90) * 1e7));
  view.setInt32(5, Math.round(clamp(reading.longitude, -180, 180) * 1e7));
  putUint8(view, 9, reading.batteryPercent);
  view.setUint8(10, (reading.moving ? 1 : 0) | (reading.noFix ? 2 : 0));
  return { fPort: 80, bytes };
}

export function decodeGpsTracker(bytes: Uint8Array): GpsTrackerReading {
  const view = viewOf(bytes, 11, 'GPS tracker');
  const flags = view.getUint8(10);
  return {
    latitude: view.getInt32(1) / 1e7,
    longitude: view.getInt32(5) / 1e7,
    batteryPercent: view.getUint8(9),
    moving: (flags & 1) !== 0,
    noFix: (flags & 2) !== 0,
  };
}

// ---------------------------------------------------------------------------------------------
// Generators.

export interface PayloadGenerator {
  readonly kind: PayloadKind;
  /** The next message; readings drift from one call to the next like a real sensor's. */
  next(): SensorPayload;
}

export interface PayloadGeneratorOptions {
  /** GPS tracker: where it roams (default: Quimper, Brittany). */
  home?: { latitude: number; longitude: number };
  /** Parking spot: one heartbeat at least every this many messages (default 6). */
  heartbeatEvery?: number;
}

/** A bounded random walk: each step moves by a gaussian, pulled back towards `centre`. */
function walker(
  random: Random,
  start: number,
  centre: number,
  step: number,
  min: number,
  max: number,
) {
  let value = start;
  return (): number => {
    value += random.gaussian(step) + (centre - value) * 0.05;
    value = clamp(value, min, max);
    return value;
  };
}

export function createPayloadGenerator(
  kind: PayloadKind,
  random: Random,
  options: PayloadGeneratorOptions = {},
): PayloadGenerator {
  const next = generatorFor(kind, random, options);
  return { kind, next };
}

function generatorFor(
  kind: PayloadKind,
  random: Random,
  options: PayloadGeneratorOptions,
): () => SensorPayload {
  switch (kind) {
    case 'roadWeather': {
      const air = walker(random, random.float(-3, 12), 4, 0.6, -25, 40);
      const humidity = walker(random, random.float(60, 95), 82, 3, 15, 100);
      let battery = random.int(70, 100);
      return () => {
        const airTemperatureC = round(air(), 2);
        const humidityPercent = round(humidity(), 1);
        const roadSurfaceTemperatureC = round(airTemperatureC + random.gaussian(1.2) - 0.8, 2);
        const dewPoint = round(dewPointC(airTemperatureC, humidityPercent), 2);
        let surfaceState: RoadSurfaceState = 'dry';
        if (roadSurfaceTemperatureC <= dewPoint + 0.5) {
          surfaceState =
            roadSurfaceTemperatureC <= 0 ? (random.chance(0.3) ? 'ice' : 'frost') : 'damp';
        } else if (humidityPercent > 95) {
          surfaceState = roadSurfaceTemperatureC <= 0 ? 'snow' : 'wet';
        }
        if (random.chance(0.01)) battery = Math.max(0, battery - 1);
        return encodeRoadWeather({
          roadSurfaceTemperatureC,
          airTemperatureC,
          humidityPercent,
          dewPointC: dewPoint,
          surfaceState,
          batteryPercent: battery,
          freezingRisk: roadSurfaceTemperatureC <= 1 && surfaceState !== 'dry',
          sensorFault: random.chance(0.002),
        });
      };
    }
    case 'streetLight': {
      let energyWh = random.int(0, 2_000_000);
      let burningHours = random.int(0, 40_000);
      let message = random.int(0, 23);
      const ratedPowerW = random.pick([36, 54, 72]);
      return () => {
        // One message per hour: lit from 18:00 to 07:00, dimmed to 50 % in the small hours.
        const hour = message++ % 24;
        const lampOn = hour >= 18 || hour < 7;
        const dimmingPercent = !lampOn ? 0 : hour >= 23 || hour < 5 ? 50 : 100;
        const lampFailure = lampOn && random.chance(0.003);
        const powerW =
          lampOn && !lampFailure
            ? (ratedPowerW * dimmingPercent) / 100 + random.float(-0.5, 0.5)
            : 0;
        energyWh += powerW;
        if (lampOn) burningHours++;
        return encodeStreetLight({
          lampOn,
          lampFailure,
          mainsFailure: false,
          manualOverride: false,
          dimmingPercent,
          energyWh,
          powerW: round(Math.max(0, powerW), 1),
          burningHours,
        });
      };
    }
    case 'soil': {
      const water = walker(random, random.float(18, 35), 27, 0.7, 5, 50);
      const temperature = walker(random, random.float(6, 18), 12, 0.3, -5, 35);
      let batteryMv = random.int(3300, 3600);
      return () => {
        const waterContentPercent = round(water(), 1);
        // Drier soil holds its water harder: a rough retention curve, kPa.
        const waterTensionKpa = round(
          clamp(2000 * Math.exp(-waterContentPercent / 4.5), 0, 1500),
          1,
        );
        if (random.chance(0.02)) batteryMv = Math.max(2500, batteryMv - 1);
        return encodeSoil({
          waterContentPercent,
          waterTensionKpa,
          soilTemperatureC: round(temperature(), 2),
          batteryMv,
        });
      };
    }
    case 'airQuality': {
      const co2 = walker(random, random.float(420, 600), 480, 15, 380, 5000);
      const pm25 = walker(random, random.float(5, 20), 10, 1.5, 0, 500);
      const no2 = walker(random, random.float(10, 40), 25, 2, 0, 400);
      const temperature = walker(random, random.float(5, 20), 13, 0.4, -20, 45);
      const humidity = walker(random, random.float(50, 80), 70, 2, 10, 100);
      let messages = 0;
      return () => {
        const pm25Value = round(pm25(), 1);
        return encodeAirQuality({
          co2Ppm: Math.round(co2()),
          pm25: pm25Value,
          pm10: round(pm25Value * random.float(1.3, 2.0), 1),
          no2: round(no2(), 1),
          airTemperatureC: round(temperature(), 2),
          humidityPercent: round(humidity(), 1),
          warmingUp: messages++ < 2,
          particleSensorFault: random.chance(0.002),
        });
      };
    }
    case 'waterLevel': {
      const level = walker(random, random.float(300, 900), 600, 25, -200, 5000);
      const temperature = walker(random, random.float(6, 16), 11, 0.2, 0, 30);
      let battery = random.int(60, 100);
      return () => {
        const levelMm = Math.round(level());
        if (random.chance(0.01)) battery = Math.max(0, battery - 1);
        return encodeWaterLevel({
          levelMm,
          waterTemperatureC: round(temperature(), 2),
          batteryPercent: battery,
          alert: levelMm > 1500,
          probeDry: levelMm < 0,
        });
      };
    }
    case 'parkingSpot': {
      const heartbeatEvery = options.heartbeatEvery ?? 6;
      let occupied = random.chance(0.5);
      let charging = false;
      let sequence = 0;
      let changes = 0;
      let sinceHeartbeat = 0;
      let battery = random.int(80, 100);
      return () => {
        sinceHeartbeat++;
        if (sinceHeartbeat < heartbeatEvery && random.chance(0.6)) {
          occupied = !occupied;
          charging = occupied && random.chance(0.7);
          sequence = (sequence + 1) & 0x0f;
          changes++;
          return encodeParkingSpot({ occupied, charging, sequence });
        }
        sinceHeartbeat = 0;
        if (random.chance(0.05)) battery = Math.max(0, battery - 1);
        const heartbeat = { batteryPercent: battery, changesSinceLastHeartbeat: changes };
        changes = 0;
        return encodeParkingSpot({ occupied, charging, sequence, heartbeat });
      };
    }
    case 'waterMeter': {
      let indexLitres = random.int(10_000, 900_000);
      let hour = random.int(0, 23);
      const leaking = random.chance(0.05);
      return () => {
        const hourlyLitres: number[] = [];
        for (let i = 0; i < 6; i++) {
          const h = hour++ % 24;
          const daytime = h >= 7 && h < 23;
          let litres = daytime && random.chance(0.6) ? random.int(5, 120) : 0;
          if (leaking) litres += random.int(2, 6);
          hourlyLitres.push(litres);
          indexLitres += litres;
        }
        return encodeWaterMeter({
          indexLitres,
          hourlyLitres,
          leak: hourlyLitres.every((litres) => litres > 0),
          backflow: false,
          tamper: random.chance(0.001),
          lowBattery: false,
        });
      };
    }
    case 'gpsTracker': {
      const home = options.home ?? { latitude: 47.996, longitude: -4.1024 };
      let latitude = home.latitude + random.gaussian(0.002);
      let longitude = home.longitude + random.gaussian(0.003);
      let battery = random.int(50, 100);
      return () => {
        const moving = random.chance(0.3);
        if (moving) {
          latitude += random.gaussian(0.0008) + (home.latitude - latitude) * 0.1;
          longitude += random.gaussian(0.0012) + (home.longitude - longitude) * 0.1;
        }
        if (random.chance(0.02)) battery = Math.max(0, battery - 1);
        return encodeGpsTracker({
          latitude: round(latitude, 7),
          longitude: round(longitude, 7),
          batteryPercent: battery,
          moving,
          noFix: random.chance(0.03),
        });
      };
    }
  }
}

/** Decodes any of the formats above (for tests, demos and example codecs). */
export function decodeSensorPayload(kind: PayloadKind, payload: SensorPayload): object {
  switch (kind) {
    case 'roadWeather':
      return decodeRoadWeather(payload.bytes);
    case 'streetLight':
      return decodeStreetLight(payload.bytes);
    case 'soil':
      return decodeSoil(payload.bytes);
    case 'airQuality':
      return decodeAirQuality(payload.bytes);
    case 'waterLevel':
      return decodeWaterLevel(payload.bytes);
    case 'parkingSpot':
      return decodeParkingSpot(payload.fPort, payload.bytes);
    case 'waterMeter':
      return decodeWaterMeter(payload.bytes);
    case 'gpsTracker':
      return decodeGpsTracker(payload.bytes);
  }
}
