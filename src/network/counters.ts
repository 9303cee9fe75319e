/**
 * Named counters of the network server, read by the metrics endpoint and by tests. Each bad
 * input has its own counter so that an operator sees what is being dropped and why.
 */
export const NETWORK_COUNTERS = [
  'uplinkCopies',
  'uplinksDeduplicated',
  'uplinksMalformed',
  'uplinksUnknownDevAddr',
  'uplinksMicFailed',
  'uplinksReplayed',
  'uplinksRetransmitted',
  'uplinksFCntGapTooLarge',
  'uplinksFCntRace',
  'uplinksAccepted',
  /** Data uplinks whose MIC was checked (and payload decrypted) in the gateway worker. */
  'uplinksPrechecked',
  'uplinksFromUnknownGateway',
  'joinRequests',
  'joinsAccepted',
  'joinsRejected',
  'downlinksScheduled',
  'downlinksNoGatewayPath',
  'downlinksTooLate',
  'downlinksRx2Fallback',
  'downlinksDutyCycleRefused',
  'classCDownlinksScheduled',
  'txAcksOk',
  'txAcksError',
  'macCommandsMalformed',
  'confirmedDownlinksAcked',
  'confirmedDownlinksUnacked',
  'confirmedDownlinksRetried',
  'macStatesSaved',
  'adrRequests',
  'rejoinRequests',
  'rejoinsAccepted',
  'rejoinsRejected',
  'uplinksOnPreviousSession',
  'uplinksForwarded',
  'uplinksForwardFailed',
  // Operator-blind downlinks (issue 5, downlink/blind-downlinks.ts).
  'downlinksRefused',
  'blindDownlinksHandedBack',
] as const;

export type NetworkCounterName = (typeof NETWORK_COUNTERS)[number];

export class Counters<Name extends string> {
  readonly #values = new Map<Name, number>();

  constructor(names: readonly Name[]) {
    for (const name of names) this.#values.set(name, 0);
  }

  increment(name: Name, by = 1): void {
    this.#values.set(name, (this.#values.get(name) ?? 0) + by);
  }

  get(name: Name): number {
    return this.#values.get(name) ?? 0;
  }

  snapshot(): Record<Name, number> {
    return Object.fromEntries(this.#values) as Record<Name, number>;
  }
}

export type NetworkCounters = Counters<NetworkCounterName>;

export function createNetworkCounters(): NetworkCounters {
  return new Counters(NETWORK_COUNTERS);
}
