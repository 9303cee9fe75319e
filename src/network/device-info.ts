import type { DeviceInfo } from './events.js';
import type { NetworkDevice } from './store.js';

export function deviceInfo(device: NetworkDevice): DeviceInfo {
  return {
    applicationId: device.applicationId,
    deviceName: device.name,
    devEui: device.devEui,
    deviceClassEnabled: device.deviceClass === 'C' ? 'CLASS_C' : 'CLASS_A',
    tags: { ...device.tags },
  };
}
