import { createHmac, timingSafeEqual } from 'node:crypto';

/** The header that carries the signature: `t=<unix seconds>,v1=<hex HMAC-SHA256>`. */
export const SIGNATURE_HEADER = 'x-galet-signature';

/**
 * HMAC-SHA256 under the webhook's secret (its UTF-8 bytes) of `<t>.<body>`, where `t` is the
 * Unix time in seconds when the request was signed and `body` the exact request body. Signing
 * the time lets a receiver refuse a replayed old request.
 */
export function signatureHeader(secret: string, body: string, timeSeconds: number): string {
  return `t=${timeSeconds},v1=${hmacHex(secret, timeSeconds, body)}`;
}

export interface VerifyOptions {
  /** How far the signed time may be from now, in seconds (default 300). */
  toleranceSeconds?: number;
  nowSeconds?: number;
}

/**
 * Whether `header` is a valid signature of `body` under `secret`, signed within the tolerance.
 * What a receiver does (docs/webhooks.md shows the same in a few lines); constant-time compare.
 */
export function verifySignature(
  secret: string,
  header: string | undefined,
  body: string,
  options: VerifyOptions = {},
): boolean {
  if (typeof header !== 'string') return false;
  const fields = new Map<string, string[]>();
  for (const part of header.split(',')) {
    const equals = part.indexOf('=');
    if (equals <= 0) continue;
    const key = part.slice(0, equals).trim();
    fields.set(key, [...(fields.get(key) ?? []), part.slice(equals + 1).trim()]);
  }
  const time = fields.get('t')?.[0];
  if (time === undefined || !/^\d{1,12}$/.test(time)) return false;
  const nowSeconds = options.nowSeconds ?? Math.floor(Date.now() / 1000);
  if (Math.abs(nowSeconds - Number(time)) > (options.toleranceSeconds ?? 300)) return false;
  const expected = Buffer.from(hmacHex(secret, Number(time), body), 'hex');
  return (fields.get('v1') ?? []).some((candidate) => {
    if (!/^[0-9a-f]{64}$/.test(candidate)) return false;
    return timingSafeEqual(Buffer.from(candidate, 'hex'), expected);
  });
}

function hmacHex(secret: string, timeSeconds: number, body: string): string {
  return createHmac('sha256', Buffer.from(secret, 'utf8'))
    .update(`${timeSeconds}.`)
    .update(body, 'utf8')
    .digest('hex');
}
