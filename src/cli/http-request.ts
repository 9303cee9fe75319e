import { request as httpRequest, type IncomingHttpHeaders } from 'node:http';
import { request as httpsRequest } from 'node:https';

/**
 * One HTTP exchange over node:http / node:https, for the CLI. Node's `fetch` loads undici, which
 * costs about 100 ms at every start of a `galet` command; this keeps what the API client used of
 * fetch: redirects followed (as fetch's `redirect: 'follow'`), the body decoded as UTF-8, an idle
 * limit like undici's headers and body timeouts, the system's TLS trust (`NODE_EXTRA_CA_CERTS`
 * and `NODE_TLS_REJECT_UNAUTHORIZED` apply to both).
 */
export interface HttpExchange {
  method: string;
  url: string;
  headers: Record<string, string>;
  body?: string;
  /** Without a byte in either direction for this long, the exchange fails (ETIMEDOUT). */
  idleTimeoutMs?: number;
}

export interface HttpAnswer {
  status: number;
  headers: IncomingHttpHeaders;
  text: string;
  /** The URL that answered, after redirects. */
  url: string;
}

/** A failure before a complete answer arrived; `code` is Node's (ECONNREFUSED, ENOTFOUND, ...). */
export class HttpTransportError extends Error {
  override readonly name = 'HttpTransportError';
  readonly code: string;

  constructor(code: string, message: string) {
    super(message);
    this.code = code;
  }
}

/** undici's default headersTimeout and bodyTimeout, so slow imports behave as before. */
const DEFAULT_IDLE_TIMEOUT_MS = 300_000;
/** The fetch standard's limit. */
const MAX_REDIRECTS = 20;
const REDIRECT_STATUSES = new Set([301, 302, 303, 307, 308]);

export async function exchange(request: HttpExchange): Promise<HttpAnswer> {
  let current = { ...request, headers: { ...request.headers } };
  for (let redirects = 0; ; redirects += 1) {
    const answer = await once(current);
    const location = answer.headers.location;
    if (!REDIRECT_STATUSES.has(answer.status) || location === undefined) return answer;
    if (redirects === MAX_REDIRECTS) {
      throw new HttpTransportError(
        'ERR_TOO_MANY_REDIRECTS',
        `more than ${MAX_REDIRECTS} redirects`,
      );
    }
    current = redirected(current, answer.status, location);
  }
}

/** The next request of a redirect, by the fetch standard's rules (HTTP-redirect fetch). */
function redirected(previous: HttpExchange, status: number, location: string): HttpExchange {
  let target: URL;
  try {
    target = new URL(location, previous.url);
  } catch {
    throw new HttpTransportError('ERR_INVALID_REDIRECT', `redirect to an invalid URL: ${location}`);
  }
  if (target.protocol !== 'http:' && target.protocol !== 'https:') {
    throw new HttpTransportError('ERR_INVALID_REDIRECT', `redirect to a non-HTTP URL: ${location}`);
  }
  const headers = { ...previous.headers };
  let { method, body } = previous;
  if (
    (status === 303 && method !== 'GET' && method !== 'HEAD') ||
    ((status === 301 || status === 302) && method === 'POST')
  ) {
    method = 'GET';
    body = undefined;
    delete headers['content-type'];
  }
  // A credential is never handed to another origin.
  if (target.origin !== new URL(previous.url).origin) delete headers['authorization'];
  return {
    ...previous,
    method,
    url: target.href,
    headers,
    ...(body === undefined ? { body: undefined } : { body }),
  };
}

function once(request: HttpExchange): Promise<HttpAnswer> {
  return new Promise((resolve, reject) => {
    const fail = (error: unknown) => reject(transportError(error));
    const url = new URL(request.url);
    const headers: Record<string, string | number> = { ...request.headers };
    const payload = request.body === undefined ? undefined : Buffer.from(request.body, 'utf8');
    if (payload !== undefined) headers['content-length'] = payload.length;
    const send = url.protocol === 'https:' ? httpsRequest : httpRequest;
    let outgoing: ReturnType<typeof httpRequest>;
    try {
      outgoing = send(url, { method: request.method, headers });
    } catch (error) {
      // Refused before any byte leaves: a header with a line break, an unknown method.
      fail(error);
      return;
    }
    const idleTimeoutMs = request.idleTimeoutMs ?? DEFAULT_IDLE_TIMEOUT_MS;
    outgoing.setTimeout(idleTimeoutMs, () => {
      outgoing.destroy(
        new HttpTransportError('ETIMEDOUT', `no answer for ${Math.round(idleTimeoutMs / 1000)} s`),
      );
    });
    outgoing.on('error', fail);
    outgoing.on('response', (incoming) => {
      const chunks: Buffer[] = [];
      incoming.on('data', (chunk: Buffer) => chunks.push(chunk));
      incoming.on('error', fail);
      incoming.on('aborted', () => fail(new HttpTransportError('ECONNRESET', 'answer cut short')));
      incoming.on('end', () => {
        if (!incoming.complete) {
          fail(new HttpTransportError('ECONNRESET', 'answer cut short'));
          return;
        }
        resolve({
          status: incoming.statusCode ?? 0,
          headers: incoming.headers,
          // TextDecoder drops a leading BOM, as fetch's text() did.
          text: new TextDecoder().decode(Buffer.concat(chunks)),
          url: request.url,
        });
      });
    });
    outgoing.end(payload);
  });
}

/** Node's code of a socket failure; with several addresses tried, the first one's. */
function transportError(error: unknown): HttpTransportError {
  if (error instanceof HttpTransportError) return error;
  const failure = error as {
    code?: unknown;
    message?: unknown;
    errors?: Array<{ code?: unknown }>;
  };
  const code =
    typeof failure.code === 'string'
      ? failure.code
      : typeof failure.errors?.[0]?.code === 'string'
        ? failure.errors[0].code
        : 'ERR_HTTP';
  const message =
    typeof failure.message === 'string' && failure.message !== '' ? failure.message : code;
  return new HttpTransportError(code, message);
}
