import { randomBytes } from 'node:crypto';
import type { NewDevice, Storage } from '../../src/storage/index.js';

/**
 * A LoRaWAN 1.0.4 class A meter stored with a random DevEUI, in a new application unless one is
 * given: OTAA with a random AppKey by default; `fields` change any of it (an ABP device, root
 * keys held elsewhere, a device profile, ...).
 */
export async function storedMeter(
  storage: Storage,
  fields: Partial<NewDevice> = {},
): Promise<{ devEui: string; applicationId: string }> {
  const applicationId =
    fields.applicationId ?? (await storage.applications.create({ name: 'water' })).id;
  const devEui = fields.devEui ?? randomBytes(8).toString('hex');
  const activation = fields.activation ?? 'otaa';
  const appKey =
    activation === 'otaa' && fields.rootKeysElsewhere !== true ? { appKey: randomBytes(16) } : {};
  await storage.devices.create({
    devEui,
    joinEui: '70b3d57ed0000000',
    name: 'meter',
    applicationId,
    macVersion: '1.0.4',
    deviceClass: 'A',
    activation,
    ...appKey,
    ...fields,
  });
  return { devEui, applicationId };
}
