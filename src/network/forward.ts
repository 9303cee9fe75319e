/**
 * An uplink of an operator-blind session (the network holds no AppSKey): what goes to the
 * application role, which alone can decrypt it.
 */
export interface EncryptedUplink {
  applicationId: string;
  devEui: string;
  devAddr: number;
  /** 32-bit uplink counter (the FRMPayload's keystream input). */
  fCnt: number;
  fPort: number;
  /** The FRMPayload as received, encrypted with the AppSKey. */
  frmPayload: Uint8Array;
  /** The AppSKey wrapped for the application role. */
  appSKeyEnvelope: { kekLabel: string; aesKey: Uint8Array };
  /** The network's `up` event body: metadata and `frmPayload`, no `data`. */
  event: Record<string, unknown>;
}

/** Hands an encrypted uplink on (durably: resolves once it is kept for delivery). */
export type UplinkForwarder = (uplink: EncryptedUplink) => Promise<void>;
