/** LoRaWAN MAC versions Galet serves. */
export type MacVersion = '1.0.2' | '1.0.3' | '1.0.4' | '1.1.0';

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
