/** LoRaWAN MAC versions Galet serves. */
export type MacVersion = '1.0.2' | '1.0.3' | '1.0.4' | '1.1.0';

/**
 * The AppSKey of a session: in clear when the application role runs in this process, or only
 * wrapped (RFC 3394) under the provider's application KEK (operator-blind: the network never
 * holds it and forwards FRMPayloads encrypted). Exactly one of the two.
 */
export type AppSessionKey =
  | { appSKey: Uint8Array; appSKeyEnvelope?: undefined }
  | { appSKey?: undefined; appSKeyEnvelope: { kekLabel: string; aesKey: Uint8Array } };

/** Session keys of an activated device, as bytes. */
export type SessionKeys =
  | ({ lorawan: '1.0'; nwkSKey: Uint8Array } & AppSessionKey)
  | ({
      lorawan: '1.1';
      fNwkSIntKey: Uint8Array;
      sNwkSIntKey: Uint8Array;
      nwkSEncKey: Uint8Array;
    } & AppSessionKey);
