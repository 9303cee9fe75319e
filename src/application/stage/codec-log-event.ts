import type { FeedEvent, NewEvent } from '../../storage/index.js';
import type { CodecFailure } from '../codecs/index.js';

/** ChirpStack v4's log code for an uplink its codec could not decode. */
export const UPLINK_CODEC_LOG_CODE = 'UPLINK_CODEC';

/**
 * The `log` event (ChirpStack v4 shape) of an uplink whose decode failed: level ERROR, code
 * UPLINK_CODEC, the failure as the description, the uplink's deduplicationId as context.
 */
export function codecFailureLogEvent(up: FeedEvent, failure: CodecFailure, time: string): NewEvent {
  const body = up.body as Record<string, unknown>;
  return {
    devEui: up.devEui,
    applicationId: up.applicationId,
    type: 'log',
    time,
    body: {
      time,
      ...(body['deviceInfo'] === undefined ? {} : { deviceInfo: body['deviceInfo'] }),
      level: 'ERROR',
      code: UPLINK_CODEC_LOG_CODE,
      description: `${failure.message} (${failure.code})`,
      context: {
        deduplicationId: deduplicationIdOf(up),
        fCnt: typeof body['fCnt'] === 'number' ? body['fCnt'] : null,
        codecError: failure.code,
        ...(failure.errors === undefined ? {} : { errors: failure.errors }),
      },
    },
  };
}

export function deduplicationIdOf(event: { body: unknown }): string | null {
  const id = (event.body as { deduplicationId?: unknown } | null)?.deduplicationId;
  return typeof id === 'string' ? id : null;
}

/** Whether `event` is the UPLINK_CODEC log event of the uplink with this deduplicationId. */
export function isCodecLogOf(
  event: { type: string; body: unknown },
  deduplicationId: string,
): boolean {
  if (event.type !== 'log') return false;
  const body = event.body as { code?: unknown; context?: { deduplicationId?: unknown } } | null;
  return body?.code === UPLINK_CODEC_LOG_CODE && body.context?.deduplicationId === deduplicationId;
}
