// The console's only way to the server: /api/v1 on this origin, with the session cookie
// (HttpOnly, SameSite=Strict: this script never sees it).

/** An answer other than 2xx, with the API's `{error, message}`. */
export class ApiFailure extends Error {
  constructor(status, code, message, retryAfterSeconds) {
    super(message);
    this.name = 'ApiFailure';
    this.status = status;
    this.code = code;
    this.retryAfterSeconds = retryAfterSeconds;
  }
}

/** `api('GET', '/applications')` -> the parsed JSON (undefined for 204). */
export async function api(method, path, body) {
  const headers = { accept: 'application/json' };
  const init = { method, headers, credentials: 'same-origin', cache: 'no-store' };
  if (body !== undefined) {
    headers['content-type'] = 'application/json';
    init.body = JSON.stringify(body);
  }
  let response;
  try {
    response = await fetch(`/api/v1${path}`, init);
  } catch (error) {
    throw new ApiFailure(0, 'UNREACHABLE', `Galet could not be reached (${error.message})`);
  }
  const text = await response.text();
  let json;
  try {
    json = text === '' ? undefined : JSON.parse(text);
  } catch {
    json = undefined;
  }
  if (!response.ok) {
    const retryAfter = Number(response.headers.get('retry-after'));
    throw new ApiFailure(
      response.status,
      typeof json?.error === 'string' ? json.error : `HTTP_${response.status}`,
      typeof json?.message === 'string' ? json.message : `HTTP ${response.status}`,
      Number.isFinite(retryAfter) && retryAfter > 0 ? retryAfter : undefined,
    );
  }
  return json;
}

/** The path with its query (undefined values left out). */
export function withQuery(path, query) {
  const search = new URLSearchParams();
  for (const [name, value] of Object.entries(query)) {
    if (value !== undefined && value !== null) search.set(name, String(value));
  }
  const text = search.toString();
  return text === '' ? path : `${path}?${text}`;
}
