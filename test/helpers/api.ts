/** An API answer as the tests read it. */
// biome-ignore lint/suspicious/noExplicitAny: tests read response fields directly and assert on them
export type ApiAnswer = { status: number; json: any };

/** One JSON request to a Galet API with a bearer token (fetch over 127.0.0.1). */
export async function apiRequest(
  baseUrl: string,
  token: string,
  method: string,
  path: string,
  body?: unknown,
): Promise<ApiAnswer> {
  const response = await fetch(`${baseUrl}${path}`, {
    method,
    headers: {
      authorization: `Bearer ${token}`,
      ...(body === undefined ? {} : { 'content-type': 'application/json' }),
    },
    ...(body === undefined ? {} : { body: JSON.stringify(body) }),
  });
  const text = await response.text();
  return { status: response.status, json: text === '' ? undefined : JSON.parse(text) };
}
