/**
 * ChirpStack v4's MQTT topics: events on `{prefix}/{applicationId}/device/{devEui}/event/{type}`,
 * downlink commands on `{prefix}/{applicationId}/device/{devEui}/command/down`. Pure.
 */

/** One topic level: not empty, no "/", no wildcard, no NUL (MQTT 3.1.1 §4.7). */
export function isTopicLevel(text: string): boolean {
  return text !== '' && !/[/#+]/.test(text) && !text.includes(String.fromCharCode(0));
}

/** A topic prefix: one or more plain topic levels. */
export function isValidTopicPrefix(prefix: string): boolean {
  return (
    typeof prefix === 'string' && prefix.length <= 200 && prefix.split('/').every(isTopicLevel)
  );
}

export function eventTopic(
  prefix: string,
  applicationId: string,
  devEui: string,
  eventType: string,
): string {
  return `${prefix}/${applicationId}/device/${devEui}/event/${eventType}`;
}

/** The subscription that receives every application's downlink commands. */
export function commandSubscription(prefix: string): string {
  return `${prefix}/+/device/+/command/down`;
}

/** The application and device a command topic names, or undefined when it is not one. */
export function parseCommandTopic(
  prefix: string,
  topic: string,
): { applicationId: string; devEui: string } | undefined {
  if (!topic.startsWith(`${prefix}/`)) return undefined;
  const levels = topic.slice(prefix.length + 1).split('/');
  if (levels.length !== 5) return undefined;
  const [applicationId, device, devEui, command, down] = levels as [
    string,
    string,
    string,
    string,
    string,
  ];
  if (device !== 'device' || command !== 'command' || down !== 'down') return undefined;
  if (applicationId === '' || devEui === '') return undefined;
  return { applicationId, devEui };
}
