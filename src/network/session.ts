/** LoRaWAN MAC versions Galet serves. */
export const MAC_VERSIONS = ['1.0.2', '1.0.3', '1.0.4', '1.1.0'] as const;
export type MacVersion = (typeof MAC_VERSIONS)[number];

export function isMacVersion(value: unknown): value is MacVersion {
  return typeof value === 'string' && (MAC_VERSIONS as readonly string[]).includes(value);
}

/** Session keys of an activated device, as bytes. */
export type SessionKeys =
  | { lorawan: '1.0'; nwkSKey: Uint8Array; appSKey: Uint8Array }
  | {
      lorawan: '1.1';
      fNwkSIntKey: Uint8Array;
      sNwkSIntKey: Uint8Array;
      nwkSEncKey: Uint8Array;
      appSKey: Uint8Array;
    };
