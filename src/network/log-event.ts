import type { NetworkContext } from './context.js';
import { deviceInfo } from './device-info.js';
import type { NetworkDevice } from './store.js';

/** Stores and publishes a `log` event (ChirpStack v4 shape) about one device. */
export async function emitLogEvent(
  ctx: NetworkContext,
  device: NetworkDevice,
  level: 'INFO' | 'WARNING' | 'ERROR',
  code: string,
  description: string,
  context: Record<string, unknown> = {},
): Promise<void> {
  const time = new Date(ctx.now()).toISOString();
  await ctx.emit({
    type: 'log',
    devEui: device.devEui,
    applicationId: device.applicationId,
    time,
    body: { time, deviceInfo: deviceInfo(device), level, code, description, context },
  });
}
