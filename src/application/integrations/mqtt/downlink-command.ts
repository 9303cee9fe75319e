import { MAX_DOWNLINK_PAYLOAD_BYTES } from '../../../storage/index.js';

/**
 * A downlink command as ChirpStack v4 takes it on `.../command/down`:
 * `{devEui, confirmed, fPort, data}` with `data` in base64, or `object` for a codec to encode.
 * Parsing is pure; whether the device exists and belongs to the topic's application is the
 * integration's check.
 */
export interface DownlinkCommand {
  devEui: string;
  fPort: number;
  confirmed: boolean;
  /** The FRMPayload, or an object for the device profile's codec to encode. */
  payload: { data: Uint8Array } | { object: Record<string, unknown> };
}

export type DownlinkCommandRefusal =
  | 'too_large'
  | 'not_json'
  | 'not_an_object'
  | 'dev_eui_mismatch'
  | 'invalid_fport'
  | 'invalid_data'
  | 'invalid_confirmed'
  | 'object_needs_codec'
  | 'codec_failed'
  | 'unknown_device'
  | 'other_application'
  | 'enqueue_failed';

export type ParsedDownlinkCommand =
  | { ok: true; command: DownlinkCommand }
  | { ok: false; reason: DownlinkCommandRefusal; message: string };

/** Command payloads above this size are refused unread (a 242-byte payload is ~330 in base64). */
export const MAX_COMMAND_PAYLOAD_BYTES = 16_384;

const EUI = /^[0-9a-f]{16}$/;
const BASE64 = /^(?:[A-Za-z0-9+/]{4})*(?:[A-Za-z0-9+/]{2}==|[A-Za-z0-9+/]{3}=)?$/;

function refused(reason: DownlinkCommandRefusal, message: string): ParsedDownlinkCommand {
  return { ok: false, reason, message };
}

/** Reads a command published for `topicDevEui` (already lower-case checked by the caller). */
export function parseDownlinkCommand(
  payload: Uint8Array,
  topicDevEui: string,
): ParsedDownlinkCommand {
  if (payload.length > MAX_COMMAND_PAYLOAD_BYTES) {
    return refused(
      'too_large',
      `command payload of ${payload.length} bytes is over the ${MAX_COMMAND_PAYLOAD_BYTES}-byte limit`,
    );
  }
  let parsed: unknown;
  try {
    parsed = JSON.parse(Buffer.from(payload).toString('utf8'));
  } catch {
    return refused('not_json', 'command payload is not valid JSON');
  }
  if (typeof parsed !== 'object' || parsed === null || Array.isArray(parsed)) {
    return refused('not_an_object', 'command payload must be a JSON object');
  }
  const body = parsed as Record<string, unknown>;
  const devEui = body['devEui'];
  if (devEui !== undefined) {
    if (typeof devEui !== 'string' || devEui.toLowerCase() !== topicDevEui) {
      return refused(
        'dev_eui_mismatch',
        `devEui in the payload must be the topic's device ${topicDevEui}`,
      );
    }
  }
  const fPort = body['fPort'];
  if (typeof fPort !== 'number' || !Number.isInteger(fPort) || fPort < 1 || fPort > 223) {
    return refused('invalid_fport', 'fPort must be an integer from 1 to 223');
  }
  const confirmed = body['confirmed'] ?? false;
  if (typeof confirmed !== 'boolean') {
    return refused('invalid_confirmed', 'confirmed must be true or false');
  }
  const data = body['data'];
  const object = body['object'];
  if (data !== undefined && data !== null && object !== undefined && object !== null) {
    return refused('invalid_data', 'give the payload as either data (base64) or object, not both');
  }
  if (data === undefined || data === null) {
    if (typeof object === 'object' && object !== null && !Array.isArray(object)) {
      return {
        ok: true,
        command: {
          devEui: topicDevEui,
          fPort,
          confirmed,
          payload: { object: object as Record<string, unknown> },
        },
      };
    }
    return refused('invalid_data', 'data (base64) or object (a JSON object) is missing');
  }
  if (typeof data !== 'string' || !BASE64.test(data)) {
    return refused('invalid_data', 'data must be base64 text');
  }
  const bytes = Buffer.from(data, 'base64');
  if (bytes.length > MAX_DOWNLINK_PAYLOAD_BYTES) {
    return refused(
      'invalid_data',
      `data of ${bytes.length} bytes can never fit a downlink (at most ${MAX_DOWNLINK_PAYLOAD_BYTES})`,
    );
  }
  return {
    ok: true,
    command: { devEui: topicDevEui, fPort, confirmed, payload: { data: new Uint8Array(bytes) } },
  };
}

export function isDevEui(text: string): boolean {
  return EUI.test(text);
}
