import type { DeviceSession } from '../../src/network/store.js';
import type { DeviceSessionInput } from '../../src/storage/index.js';

type SessionFields = Pick<DeviceSession, 'devEui' | 'devAddr' | 'keys'> &
  Partial<DeviceSessionInput>;

/** A session as `deviceSessions.upsert` takes it, with the defaults of a fresh ABP session. */
export function deviceSessionInput(fields: SessionFields): DeviceSessionInput {
  return {
    macVersion: fields.keys.lorawan === '1.0' ? '1.0.4' : '1.1.0',
    fCntUp: null,
    nFCntDown: 0,
    aFCntDown: 0,
    rx1DelaySeconds: 1,
    rx1DrOffset: 0,
    rx2Dr: 0,
    rx2FrequencyHz: 869_525_000,
    ...fields,
  };
}

/** A network session as the session cache holds it, with the defaults of a fresh ABP session. */
export function deviceSession(fields: SessionFields & Partial<DeviceSession>): DeviceSession {
  return {
    awaitingAck: null,
    macState: null,
    createdAt: '2026-11-29T00:00:00.000Z',
    updatedAt: '2026-11-29T00:00:00.000Z',
    ...deviceSessionInput(fields),
  };
}
