import { createHash } from 'node:crypto';
import type { GaletEvent } from '../events.js';
import type { SessionKeys } from '../session.js';
import type { DeviceSession, QueuedDownlink } from '../store.js';

/**
 * Downlinks of operator-blind sessions (issue 5). The network holds no AppSKey: the provider's
 * application role encrypts each FRMPayload for one downlink counter of one session, and the
 * network may transmit it with that counter only. When the counter moved on (another frame went
 * first, a confirmed downlink is sent again) or the session changed (a new join), the item is
 * handed back to the provider, which encrypts it again; it stays pending meanwhile.
 */

/** The AppSKey as the network carries it: wrapped under the provider's application KEK. */
export interface AppSKeyEnvelope {
  kekLabel: string;
  aesKey: Uint8Array;
}

/**
 * Names a session's AppSKey without revealing it: SHA-256 over the envelope (KEK label and
 * wrapped key), first 16 bytes in hex. Both sides compute it from the same envelope.
 */
export function appSessionKeyId(envelope: AppSKeyEnvelope): string {
  return createHash('sha256')
    .update(envelope.kekLabel)
    .update(Uint8Array.of(0))
    .update(envelope.aesKey)
    .digest('hex')
    .slice(0, 32);
}

/**
 * The counter the next application downlink of a session uses: the shared FCntDown in 1.0.x,
 * AFCntDown in 1.1 (LoRaWAN 1.1 §4.3.1.5: FPort > 0 counts with AFCntDown).
 */
export function nextApplicationFCntDown(
  session: Pick<DeviceSession, 'keys' | 'nFCntDown' | 'aFCntDown'>,
): number {
  return session.keys.lorawan === '1.1' ? session.aFCntDown : session.nFCntDown;
}

/**
 * How far the network skips its downlink counter for an item encrypted for a later one
 * (LoRaWAN 1.0.1's MAX_FCNT_GAP): a farther counter is handed back instead, so a provider
 * cannot use up the session's counters.
 */
export const MAX_SKIPPED_FCNT_DOWN = 16384;

export type QueuedItemFate =
  /** Plaintext with the AppSKey here, or encrypted for this very session and counter. */
  | { kind: 'send' }
  /** Encrypted for another counter or session: the provider must encrypt it again. */
  | { kind: 'handBack'; reason: string }
  /** This network can never transmit it (it would go out unreadable). */
  | { kind: 'refuse'; reason: string };

/** Whether the queued item may go out now as the session's next application downlink. */
export function queuedItemFate(
  keys: SessionKeys,
  item: Pick<QueuedDownlink, 'encryptedFor'>,
  nextFCntDown: number,
): QueuedItemFate {
  const encryptedFor = item.encryptedFor ?? null;
  if (keys.appSKeyEnvelope === undefined) {
    return encryptedFor === null
      ? { kind: 'send' }
      : {
          kind: 'refuse',
          reason: 'encrypted by a provider, but this session is not operator-blind',
        };
  }
  if (encryptedFor === null) {
    return {
      kind: 'refuse',
      reason:
        'the network role holds no AppSKey for this operator-blind session: queue downlinks on the provider',
    };
  }
  if (encryptedFor.sessionKeyId !== appSessionKeyId(keys.appSKeyEnvelope)) {
    return { kind: 'handBack', reason: 'encrypted for an earlier session' };
  }
  // A later counter is sent as it is, the counters before it skipped (LoRaWAN allows gaps in
  // FCntDown): the provider never encrypts two items for one counter, so one it used for an
  // item it withdrew, or for an item queued behind, is never offered again.
  if (
    encryptedFor.fCntDown < nextFCntDown ||
    encryptedFor.fCntDown - nextFCntDown > MAX_SKIPPED_FCNT_DOWN
  ) {
    return {
      kind: 'handBack',
      reason: `encrypted for FCntDown ${encryptedFor.fCntDown}, the next one is ${nextFCntDown}`,
    };
  }
  return { kind: 'send' };
}

/** What the provider needs to encrypt an item again (no key in clear). */
export interface HandBackRequest {
  applicationId: string;
  devEui: string;
  itemId: string;
  devAddr: number;
  fCntDown: number;
  appSKeyEnvelope: AppSKeyEnvelope;
  reason: string;
}

/** The network's link to the providers of operator-blind sessions, for downlinks. */
export interface BlindDownlinkRelay {
  /**
   * Asks the provider to encrypt the item again; returns at once (the answer updates the item
   * and wakes the scheduler). Repeated calls for an item already handed back are ignored.
   */
  handBack(request: HandBackRequest): void;
  /** A `txack` or `ack` event of an item of an operator-blind session: to its provider, durably. */
  report(event: GaletEvent): Promise<void>;
}
